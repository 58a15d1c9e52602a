//! The writes of a reorg repair, all in the one fenced transaction that unwinds the reorg:
//! taking the chain's coverage lock, deleting everything stored above the common ancestor
//! (logs, transactions, blocks, coverage), and the range backfill that re-indexes the unwound
//! range (its row, a finished scheduler checkpoint, its planned totals). The reorg's own record
//! is [`super::reorg_log::record`]; its batches are planned with [`super::batches::plan`].

use sea_orm::sqlx::{self, PgConnection};
use uuid::Uuid;

use super::{BackfillMode, BackfillStatus};

/// Deletes the logs, transactions and blocks of `chain` above `above`, and the coverage above it
/// (intervals starting above it go, intervals reaching above it end at it). Runs in the caller's
/// fenced transaction, after [`super::coverage::lock`].
pub async fn unwind_above(
    conn: &mut PgConnection,
    chain: &str,
    above: i64,
) -> Result<(), sqlx::Error> {
    for sql in [
        "DELETE FROM logs WHERE chain = $1 AND block_number > $2",
        "DELETE FROM transactions WHERE chain = $1 AND block_number > $2",
        "DELETE FROM blocks WHERE chain = $1 AND number > $2",
        "DELETE FROM coverage WHERE chain = $1 AND start_block > $2",
        "UPDATE coverage SET end_block = $2 WHERE chain = $1 AND end_block > $2",
    ] {
        sqlx::query(sql)
            .bind(chain)
            .bind(above)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Inserts the range backfill `id` of `[from, to]` that re-indexes an unwound range, running
/// from now, with a scheduler checkpoint past its end (nothing left to plan: the repair plans
/// all its batches) dated an hour back, so the leader's reconciler resumes it at once. Runs in
/// the caller's fenced transaction, the unwind's.
pub async fn insert_reindex_backfill(
    conn: &mut PgConnection,
    id: Uuid,
    chain: &str,
    from: i64,
    to: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO backfills (id, chain, mode, from_block, to_block, status, started_at) \
         VALUES ($1, $2, $5, $3, $4, $6, now())",
    )
    .bind(id)
    .bind(chain)
    .bind(from)
    .bind(to)
    .bind(BackfillMode::Range)
    .bind(BackfillStatus::Running)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO scheduler_checkpoints (backfill_id, generation, cursor_block, updated_at) \
         VALUES ($1, 0, $2, now() - interval '1 hour')",
    )
    .bind(id)
    .bind(to + 1)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records how many batches and blocks backfill `id` planned. Runs in the caller's transaction.
pub async fn set_planned_totals(
    conn: &mut PgConnection,
    id: Uuid,
    batches: i64,
    blocks: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE backfills SET planned_batches = $2, planned_blocks = $3 WHERE id = $1")
        .bind(id)
        .bind(batches)
        .bind(blocks)
        .execute(conn)
        .await?;
    Ok(())
}
