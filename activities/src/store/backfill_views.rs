//! What the admin API reads to show backfills: their rows, their batches' totals by status,
//! failure counts, the counters compacted live batches left behind (see
//! [`super::compaction`]), their latest errors and recent write rate. Reads only: backfill
//! transitions are elsewhere in the store.

use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sqlx::{self, PgPool},
};
use uuid::Uuid;

use super::{BatchStatus, status::RecentWork};
use crate::entity::backfills;

/// The backfill `id`, if it exists.
pub async fn find(db: &DatabaseConnection, id: Uuid) -> Result<Option<backfills::Model>, DbErr> {
    backfills::Entity::find_by_id(id).one(db).await
}

/// Whether backfill `id` exists (reads its primary key only).
pub async fn exists(pool: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    let found: Option<(Uuid,)> = sqlx::query_as("SELECT id FROM backfills WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(found.is_some())
}

/// The latest `limit` backfills (of `chain`, or of every chain), newest request first.
pub async fn latest(
    db: &DatabaseConnection,
    chain: Option<&str>,
    limit: u64,
) -> Result<Vec<backfills::Model>, DbErr> {
    let mut select = backfills::Entity::find()
        .order_by_desc(backfills::Column::RequestedAt)
        .limit(limit);
    if let Some(chain) = chain {
        select = select.filter(backfills::Column::Chain.eq(chain));
    }
    select.all(db).await
}

/// A backfill's batches of one status, added up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusTotals {
    /// Their status.
    pub status: BatchStatus,
    /// How many.
    pub batches: i64,
    /// Their blocks.
    pub blocks: i64,
    /// Their failed attempts.
    pub attempts: i64,
    /// Their deliveries beyond the first.
    pub redeliveries: i64,
}

/// The totals of backfill `id`'s batch rows, one per status present (index
/// `batches_backfill_status`).
pub async fn totals_by_status(pool: &PgPool, id: Uuid) -> Result<Vec<StatusTotals>, sqlx::Error> {
    let rows: Vec<(BatchStatus, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT status, count(*)::int8, COALESCE(SUM(to_block - from_block + 1), 0)::int8, \
                COALESCE(SUM(attempts), 0)::int8, COALESCE(SUM(GREATEST(deliveries - 1, 0)), 0)::int8 \
         FROM batches WHERE backfill_id = $1 GROUP BY status",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(status, batches, blocks, attempts, redeliveries)| StatusTotals {
                status,
                batches,
                blocks,
                attempts,
                redeliveries,
            },
        )
        .collect())
}

/// What went wrong in a backfill's batch rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailureCounts {
    /// Blocks quarantined and not yet released.
    pub quarantined_blocks: i64,
    /// Batches split in halves.
    pub split_batches: i64,
    /// Batches that needed more than one attempt (compacted ones not included).
    pub retried_batches: i64,
}

/// The failure counts of backfill `id`'s batch rows.
pub async fn failure_counts(pool: &PgPool, id: Uuid) -> Result<FailureCounts, sqlx::Error> {
    let (quarantined_blocks, split_batches, retried_batches): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM quarantined_blocks WHERE backfill_id = $1 AND released_at IS NULL), \
                (SELECT count(*) FROM batches WHERE backfill_id = $1 AND status = $2), \
                (SELECT count(*) FROM batches WHERE backfill_id = $1 AND attempts > 0)",
    )
    .bind(id)
    .bind(BatchStatus::Split)
    .fetch_one(pool)
    .await?;
    Ok(FailureCounts {
        quarantined_blocks,
        split_batches,
        retried_batches,
    })
}

/// What the done live batch rows compacted away from a backfill counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Compacted {
    /// Batches.
    pub batches: i64,
    /// Their blocks.
    pub blocks: i64,
    /// Of which needed more than one attempt.
    pub retried: i64,
    /// Their failed attempts.
    pub attempts: i64,
    /// Their deliveries beyond the first.
    pub redeliveries: i64,
}

/// The `compacted_*` counters of backfill `id` (zero when it is gone).
pub async fn compacted(pool: &PgPool, id: Uuid) -> Result<Compacted, sqlx::Error> {
    let row: Option<(i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT compacted_batches, compacted_blocks, compacted_retried, compacted_attempts, \
                compacted_redeliveries FROM backfills WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    let (batches, blocks, retried, attempts, redeliveries) = row.unwrap_or_default();
    Ok(Compacted {
        batches,
        blocks,
        retried,
        attempts,
        redeliveries,
    })
}

/// The latest distinct errors of backfill `id`'s batches, newest first (at most 5).
pub async fn last_errors(pool: &PgPool, id: Uuid) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT last_error FROM (SELECT DISTINCT ON (last_error) last_error, \
            COALESCE(finished_at, started_at, planned_at) AS at FROM batches \
          WHERE backfill_id = $1 AND last_error IS NOT NULL ORDER BY last_error, at DESC) e \
         ORDER BY at DESC LIMIT 5",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(e,)| e).collect())
}

/// The recent work of backfill `id`'s batches (done in the last 30 s).
pub async fn recent_work(pool: &PgPool, id: Uuid) -> Result<RecentWork, sqlx::Error> {
    let (blocks, seconds): (Option<i64>, Option<f64>) = sqlx::query_as(
        "SELECT SUM(to_block - from_block + 1)::int8, EXTRACT(EPOCH FROM now() - MIN(started_at))::float8 \
         FROM batches WHERE backfill_id = $1 AND status = $2 AND finished_at > now() - interval '30 seconds'",
    )
    .bind(id)
    .bind(BatchStatus::Done)
    .fetch_one(pool)
    .await?;
    Ok(RecentWork { blocks, seconds })
}
