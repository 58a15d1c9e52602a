//! What a backfill's progress answer reads: the blocks its done batches wrote, per time bucket of
//! their `finished_at`, and in total. Reads the backfill's batch rows (index
//! `batches_backfill_status`); the buckets are bounded by the caller's window, not by the number
//! of batches. Compacted live batches are gone from `batches` and are not counted here.

use sea_orm::sqlx::{self, PgPool};
use uuid::Uuid;

use super::BatchStatus;

/// The done batches of a backfill, added up.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DoneTotals {
    /// Done batches.
    pub batches: i64,
    /// Their blocks.
    pub blocks: i64,
    /// Earliest `finished_at`, in seconds since the Unix epoch.
    pub first_finished: Option<f64>,
    /// Latest `finished_at`, in seconds since the Unix epoch.
    pub last_finished: Option<f64>,
}

/// The totals of backfill `id`'s done batches.
pub async fn done_totals(pool: &PgPool, id: Uuid) -> Result<DoneTotals, sqlx::Error> {
    let (batches, blocks, first_finished, last_finished): (i64, i64, Option<f64>, Option<f64>) =
        sqlx::query_as(
            "SELECT count(*)::int8, COALESCE(SUM(to_block - from_block + 1), 0)::int8, \
                    EXTRACT(EPOCH FROM MIN(finished_at))::float8, \
                    EXTRACT(EPOCH FROM MAX(finished_at))::float8 \
             FROM batches WHERE backfill_id = $1 AND status = $2",
        )
        .bind(id)
        .bind(BatchStatus::Done)
        .fetch_one(pool)
        .await?;
    Ok(DoneTotals {
        batches,
        blocks,
        first_finished,
        last_finished,
    })
}

/// The done batches that finished in one time bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoneBucket {
    /// The bucket: `floor(finished_at epoch seconds / bucket_seconds)`.
    pub index: i64,
    /// Done batches that finished in it.
    pub batches: i64,
    /// Their blocks.
    pub blocks: i64,
}

/// Backfill `id`'s done batches per bucket of `bucket_seconds` (by `finished_at`), for the
/// buckets `first..=last` that have any, lowest first: at most `last - first + 1` rows.
pub async fn done_per_bucket(
    pool: &PgPool,
    id: Uuid,
    bucket_seconds: i64,
    first: i64,
    last: i64,
) -> Result<Vec<DoneBucket>, sqlx::Error> {
    let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT b, count(*)::int8, SUM(to_block - from_block + 1)::int8 FROM ( \
           SELECT floor(EXTRACT(EPOCH FROM finished_at) / $3)::int8 AS b, from_block, to_block \
           FROM batches WHERE backfill_id = $1 AND status = $2 AND finished_at IS NOT NULL) d \
         WHERE b BETWEEN $4 AND $5 GROUP BY b ORDER BY b",
    )
    .bind(id)
    .bind(BatchStatus::Done)
    .bind(bucket_seconds as f64)
    .bind(first)
    .bind(last)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(index, batches, blocks)| DoneBucket {
            index,
            batches,
            blocks,
        })
        .collect())
}
