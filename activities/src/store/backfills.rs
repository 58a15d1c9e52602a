//! Backfill rows and their transitions: create, plan (running), rescan, finish, reopen.

use sea_orm::{
    DatabaseConnection, EntityTrait,
    sqlx::{self, PgConnection, PgPool},
};
use serde_json::Value;
use uuid::Uuid;

use super::{BackfillMode, BackfillStatus, BatchStatus};
use crate::{entity::backfills, types::ChainName};

/// Records a new planned backfill of `[from, to]`, in the trace of the current span (when traces
/// are exported); returns its id.
pub async fn create(
    pool: &PgPool,
    chain: &ChainName,
    mode: BackfillMode,
    from: u64,
    to: u64,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    let trace = crate::telemetry::traces::current().map(sqlx::types::Json);
    sqlx::query(
        "INSERT INTO backfills (id, chain, mode, from_block, to_block, status, trace_context) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(chain.as_str())
    .bind(mode)
    .bind(from as i64)
    .bind(to as i64)
    .bind(BackfillStatus::Planned)
    .bind(trace)
    .execute(pool)
    .await?;
    Ok(id)
}

/// The trace context backfill `id` was created in, if any.
pub async fn trace_context(
    pool: &PgPool,
    id: Uuid,
) -> Result<Option<crate::telemetry::TraceContext>, sqlx::Error> {
    let row: Option<(Option<sqlx::types::Json<crate::telemetry::TraceContext>>,)> =
        sqlx::query_as("SELECT trace_context FROM backfills WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    Ok(row
        .and_then(|(trace,)| trace)
        .map(|sqlx::types::Json(trace)| trace))
}

/// The backfill `id`, if it exists.
pub async fn find(
    db: &DatabaseConnection,
    id: Uuid,
) -> Result<Option<backfills::Model>, sea_orm::DbErr> {
    backfills::Entity::find_by_id(id).one(db).await
}

/// Counts a planning step's batches and blocks on an active backfill and marks it running.
pub async fn record_planned(
    conn: &mut PgConnection,
    id: Uuid,
    batches: u64,
    blocks: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE backfills SET planned_batches = planned_batches + $2, \
           planned_blocks = planned_blocks + $3, status = $4, \
           started_at = COALESCE(started_at, now()) \
         WHERE id = $1 AND status = ANY($5)",
    )
    .bind(id)
    .bind(batches as i64)
    .bind(blocks as i64)
    .bind(BackfillStatus::Running)
    .bind(&BackfillStatus::ACTIVE[..])
    .execute(conn)
    .await?;
    Ok(())
}

/// Records the last error seen on a backfill's batches.
pub async fn record_error(pool: &PgPool, id: Uuid, message: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE backfills SET last_error = $2 WHERE id = $1")
        .bind(id)
        .bind(message)
        .execute(pool)
        .await?;
    Ok(())
}

/// Times the backfill planned its uncovered blocks again.
pub async fn rescans(pool: &PgPool, id: Uuid) -> Result<i32, sqlx::Error> {
    let (rescans,): (i32,) = sqlx::query_as("SELECT rescans FROM backfills WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await?;
    Ok(rescans)
}

/// Counts one more rescan.
pub async fn add_rescan(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE backfills SET rescans = rescans + 1 WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Blocks of the backfill's done batches, counting the ones compacted away, and its compacted
/// batch count.
pub async fn blocks_done(pool: &PgPool, id: Uuid) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT COALESCE((SELECT sum(to_block - from_block + 1) FROM batches \
                          WHERE backfill_id = $1 AND status = $2), 0)::int8 \
                  + COALESCE((SELECT compacted_blocks FROM backfills WHERE id = $1), 0), \
                COALESCE((SELECT compacted_batches FROM backfills WHERE id = $1), 0)",
    )
    .bind(id)
    .bind(BatchStatus::Done)
    .fetch_one(pool)
    .await
}

/// Ends an active backfill as `status` (completed or failed) with its frozen counts.
pub async fn finish(
    conn: &mut PgConnection,
    id: Uuid,
    status: BackfillStatus,
    final_counts: Value,
    last_error: Option<String>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE backfills SET status = $2, finished_at = now(), final_counts = $3, \
           last_error = COALESCE($4, last_error) \
         WHERE id = $1 AND status = ANY($5)",
    )
    .bind(id)
    .bind(status)
    .bind(final_counts)
    .bind(last_error)
    .bind(&BackfillStatus::ACTIVE[..])
    .execute(conn)
    .await?;
    Ok(())
}

/// Reopens a backfill (its batches are to run again): running, counts unfrozen. A paused one
/// stays paused (its reopened batches run once it is resumed); a cancelled one is never reopened.
pub async fn reopen(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE backfills SET status = $2, finished_at = NULL, final_counts = NULL \
         WHERE id = $1 AND status <> ALL($3)",
    )
    .bind(id)
    .bind(BackfillStatus::Running)
    .bind([BackfillStatus::Paused, BackfillStatus::Cancelled].as_slice())
    .execute(conn)
    .await?;
    Ok(())
}
