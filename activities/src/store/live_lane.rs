//! The live lane's own rows: each chain's `live` backfill (created on first use) and the live
//! cursor (the highest block handed to the live lane). Both writes run in the caller's fenced
//! transaction, next to the planning of the live batches they account for.

use sea_orm::sqlx::{self, PgConnection};
use uuid::Uuid;

use super::{BackfillMode, BackfillStatus, chains};

/// Inserts the chain's `live` backfill `id` (mode `live`, running from now, covering `[from,
/// from]` until the cursor moves) and links the chain to it. Runs in the caller's fenced
/// transaction.
pub async fn create_live_backfill(
    conn: &mut PgConnection,
    chain: &str,
    id: Uuid,
    from: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO backfills (id, chain, mode, from_block, to_block, status, started_at) \
         VALUES ($1, $2, $4, $3, $3, $5, now())",
    )
    .bind(id)
    .bind(chain)
    .bind(from)
    .bind(BackfillMode::Live)
    .bind(BackfillStatus::Running)
    .execute(&mut *conn)
    .await?;
    chains::set_live_backfill(conn, chain, id).await
}

/// Moves the chain's live cursor to `target` and extends its live backfill up to it (never
/// down). Runs in the caller's fenced transaction, the one that plans the live batches up to
/// `target`.
pub async fn advance_cursor(
    conn: &mut PgConnection,
    chain: &str,
    backfill_id: Uuid,
    target: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE chains SET live_cursor = $2 WHERE name = $1")
        .bind(chain)
        .bind(target)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE backfills SET to_block = GREATEST(to_block, $2) WHERE id = $1")
        .bind(backfill_id)
        .bind(target)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
