//! `blockfill keys create|list|revoke`: API keys from the orchestrator's host, on the same
//! database flags as `blockfill migrate` (migrations are applied first if needed).
//!
//! `create` prints the key's token once: it is not stored (only its SHA-256 is) and cannot be
//! shown again. A revocation takes effect within a second on every orchestrator (they cache
//! verified keys for at most a second).

use anyhow::Context as _;
use blockfill_activities::{
    settings::StoreArgs,
    store::api_keys::{self, AccessRole},
};
use chrono::{DateTime, SecondsFormat, Utc};
use clap::Subcommand;

use crate::app::prepare_database;

/// What `blockfill keys` does.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print its token (once: it cannot be shown again).
    Create {
        /// PostgreSQL (and Redis, unused here).
        #[command(flatten)]
        stores: StoreArgs,
        /// Who or what the key is for.
        #[arg(long)]
        name: String,
        /// What it may do: viewer (read), operator (also steer work), admin (everything).
        #[arg(long)]
        role: AccessRole,
    },
    /// List keys: id, name, role, created, last used, revoked (never a secret).
    List {
        /// PostgreSQL (and Redis, unused here).
        #[command(flatten)]
        stores: StoreArgs,
    },
    /// Revoke a key by id (`bfk_…`); requests with it are refused within a second.
    Revoke {
        /// PostgreSQL (and Redis, unused here).
        #[command(flatten)]
        stores: StoreArgs,
        /// The key's id.
        id: String,
    },
}

fn time(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(
        || "-".to_owned(),
        |at| at.to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}

/// Runs `command`.
pub async fn run(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create { stores, name, role } => {
            anyhow::ensure!(!name.trim().is_empty(), "--name must not be empty");
            let conn = prepare_database(&stores, 1).await?;
            let created = api_keys::create(conn.get_postgres_connection_pool(), name.trim(), role)
                .await
                .context("creating the key")?;
            println!("key id: {}", created.key.id);
            println!("name:   {}", created.key.name);
            println!("role:   {}", created.key.role);
            println!("token:  {}", created.token);
            println!();
            println!(
                "Store the token now: it is shown once and cannot be shown again. Send it as `Authorization: Bearer <token>`."
            );
        }
        KeysCommand::List { stores } => {
            let conn = prepare_database(&stores, 1).await?;
            let keys = api_keys::list(conn.get_postgres_connection_pool())
                .await
                .context("listing keys")?;
            println!(
                "{:<17} {:<24} {:<8} {:<20} {:<20} REVOKED",
                "ID", "NAME", "ROLE", "CREATED", "LAST USED"
            );
            for key in keys {
                println!(
                    "{:<17} {:<24} {:<8} {:<20} {:<20} {}",
                    key.id,
                    key.name,
                    key.role,
                    time(Some(key.created_at)),
                    time(key.last_used_at),
                    time(key.revoked_at)
                );
            }
        }
        KeysCommand::Revoke { stores, id } => {
            let conn = prepare_database(&stores, 1).await?;
            let key = api_keys::revoke(conn.get_postgres_connection_pool(), &id)
                .await
                .context("revoking the key")?
                .with_context(|| format!("no API key {id}; `blockfill keys list` shows them"))?;
            println!(
                "revoked key {} ({}), effective within a second",
                key.id, key.name
            );
        }
    }
    Ok(())
}
