//! `blockfill migrate`: creates the database if needed and applies pending migrations.

use blockfill_activities::{db, settings::StoreArgs};

use crate::app::prepare_database;

/// `blockfill migrate`: prepares the database of `stores` and prints where it applied the
/// migrations (the URL without credentials).
pub async fn run(stores: &StoreArgs) -> anyhow::Result<()> {
    prepare_database(stores, 1).await?;
    println!(
        "migrations applied to {}",
        db::redact_url(&stores.database_url)
    );
    Ok(())
}
