//! What a chain's status answer reads: its live section's inputs (last indexed block, newest
//! live batch, recent block time), its historical section (gaps of the coverage ledger within a
//! range: count, size, largest, lowest, one page of them; covered intervals), the recent write
//! rate its ETA comes from, and its failure counts.
//!
//! Every read is bounded by what it counts, never by the chain's size: the gap queries read the
//! coverage ledger (one row per covered interval), and the batch counts read partial indexes
//! (migration 000007: retried, redelivered, with an error, the newest live batch; 000001: done
//! batches by finish time) or `(chain, status)` for failed and split batches. Compacted live
//! batches count through their backfill's `compacted_*` counters.

use sea_orm::sqlx::{self, PgPool};
use serde::{Deserialize, Serialize};

use super::{BatchStatus, Lane};

/// One covered or missing interval.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Interval {
    /// First block.
    pub start: i64,
    /// Last block.
    pub end: i64,
}

/// Aggregates of the gaps in a range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GapSummary {
    /// Covered blocks.
    pub indexed: i64,
    /// Missing blocks.
    pub missing: i64,
    /// Number of gaps.
    pub gap_count: i64,
    /// Largest gap (lowest on ties).
    pub largest: Option<(i64, i64)>,
    /// Lowest gap start.
    pub oldest_start: Option<i64>,
}

/// The gaps of `chain` in `[from, to]` as SQL: `gg(gs, ge, size)`; `$1` chain, `$2` from, `$3` to.
const GAPS_CTE: &str = "WITH c AS ( \
      SELECT GREATEST(start_block, $2) AS s, LEAST(end_block, $3) AS e FROM coverage \
      WHERE chain = $1 AND end_block >= $2 AND start_block <= $3), \
    g AS ( \
      SELECT COALESCE(LAG(e) OVER (ORDER BY s) + 1, $2) AS gs, s - 1 AS ge FROM c \
      UNION ALL SELECT COALESCE(MAX(e) + 1, $2), $3 FROM c), \
    gg AS (SELECT gs, ge, ge - gs + 1 AS size FROM g WHERE gs <= ge) ";

/// Summarises the gaps of `chain` in `[from, to]` (reads the coverage intervals overlapping it).
pub async fn gap_summary(
    pool: &PgPool,
    chain: &str,
    from: i64,
    to: i64,
) -> Result<GapSummary, sqlx::Error> {
    let sql = format!(
        "{GAPS_CTE} SELECT \
           (SELECT COALESCE(SUM(e - s + 1), 0) FROM c)::int8, \
           (SELECT COUNT(*) FROM gg)::int8, \
           (SELECT COALESCE(SUM(size), 0) FROM gg)::int8, \
           (SELECT gs FROM gg ORDER BY size DESC, gs LIMIT 1), \
           (SELECT ge FROM gg ORDER BY size DESC, gs LIMIT 1), \
           (SELECT MIN(gs) FROM gg)"
    );
    let row: (i64, i64, i64, Option<i64>, Option<i64>, Option<i64>) =
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(chain)
            .bind(from)
            .bind(to)
            .fetch_one(pool)
            .await?;
    Ok(GapSummary {
        indexed: row.0,
        gap_count: row.1,
        missing: row.2,
        largest: row.3.zip(row.4),
        oldest_start: row.5,
    })
}

/// Gaps of `chain` in `[from, to]` starting after `after`, lowest first, at most `limit`.
pub async fn gap_page(
    pool: &PgPool,
    chain: &str,
    from: i64,
    to: i64,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<Interval>, sqlx::Error> {
    let sql = format!("{GAPS_CTE} SELECT gs, ge FROM gg WHERE gs > $4 ORDER BY gs LIMIT $5");
    let rows: Vec<(i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(chain)
        .bind(from)
        .bind(to)
        .bind(after.unwrap_or(i64::MIN))
        .bind(limit)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(start, end)| Interval { start, end })
        .collect())
}

/// The covered intervals of `chain` within `[from, to]` (clipped to it), lowest first, at most
/// `limit`.
pub async fn coverage_within(
    pool: &PgPool,
    chain: &str,
    from: i64,
    to: i64,
    limit: i64,
) -> Result<Vec<Interval>, sqlx::Error> {
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT GREATEST(start_block, $2), LEAST(end_block, $3) FROM coverage \
         WHERE chain = $1 AND end_block >= $2 AND start_block <= $3 ORDER BY start_block LIMIT $4",
    )
    .bind(chain)
    .bind(from)
    .bind(to)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(start, end)| Interval { start, end })
        .collect())
}

/// The highest covered block of `chain`.
pub async fn last_indexed(pool: &PgPool, chain: &str) -> Result<Option<i64>, sqlx::Error> {
    let (last,): (Option<i64>,) =
        sqlx::query_as("SELECT MAX(end_block) FROM coverage WHERE chain = $1")
            .bind(chain)
            .fetch_one(pool)
            .await?;
    Ok(last)
}

/// The highest block of `chain` covered or asked for by a backfill (what its historical range
/// ends at before its head is known).
pub async fn highest_indexed_or_requested(
    pool: &PgPool,
    chain: &str,
) -> Result<Option<i64>, sqlx::Error> {
    let (highest,): (Option<i64>,) = sqlx::query_as(
        "SELECT GREATEST((SELECT MAX(end_block) FROM coverage WHERE chain = $1), \
                         (SELECT MAX(to_block) FROM backfills WHERE chain = $1))",
    )
    .bind(chain)
    .fetch_one(pool)
    .await?;
    Ok(highest)
}

/// The live section's inputs read from the database.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LiveProgress {
    /// Highest block of a done live batch (index `batches_live_done`).
    pub last_live_block: Option<i64>,
    /// Average seconds per block over the newest 100 stored blocks.
    pub block_time: Option<f64>,
}

/// The live section's inputs of `chain`.
pub async fn live_progress(pool: &PgPool, chain: &str) -> Result<LiveProgress, sqlx::Error> {
    let (last_live_block, block_time): (Option<i64>, Option<f64>) = sqlx::query_as(
        "SELECT (SELECT MAX(to_block) FROM batches WHERE chain = $1 AND lane = $2 AND status = $3), \
                (SELECT (MAX(timestamp) - MIN(timestamp))::float8 / NULLIF(MAX(number) - MIN(number), 0) \
                 FROM (SELECT number, timestamp FROM blocks WHERE chain = $1 ORDER BY number DESC LIMIT 100) recent)",
    )
    .bind(chain)
    .bind(Lane::Live)
    .bind(BatchStatus::Done)
    .fetch_one(pool)
    .await?;
    Ok(LiveProgress {
        last_live_block,
        block_time,
    })
}

/// Blocks written by batches done in the last 30 s, and the seconds since the earliest of them
/// started.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RecentWork {
    /// Blocks of those batches (`None`: no batch).
    pub blocks: Option<i64>,
    /// Seconds since the earliest of them started.
    pub seconds: Option<f64>,
}

impl RecentWork {
    /// Blocks per second over that time (taken as between 1 and 30 s).
    pub fn blocks_per_second(self) -> Option<f64> {
        self.blocks
            .zip(self.seconds)
            .map(|(b, s)| b as f64 / s.clamp(1.0, 30.0))
    }
}

/// The recent work of `chain`'s batches (index `batches_finished`).
pub async fn recent_chain_work(pool: &PgPool, chain: &str) -> Result<RecentWork, sqlx::Error> {
    let (blocks, seconds): (Option<i64>, Option<f64>) = sqlx::query_as(
        "SELECT SUM(to_block - from_block + 1)::int8, \
                EXTRACT(EPOCH FROM now() - MIN(started_at))::float8 \
         FROM batches WHERE chain = $1 AND status = $2 AND finished_at > now() - interval '30 seconds'",
    )
    .bind(chain)
    .bind(BatchStatus::Done)
    .fetch_one(pool)
    .await?;
    Ok(RecentWork { blocks, seconds })
}

/// How much of a chain's work needed retries, redeliveries, failed or was quarantined (as the
/// status answer shows it).
#[derive(
    Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct WorkCounts {
    /// Batches that needed more than one attempt (compacted ones included).
    pub retried_batches: i64,
    /// Batches delivered more than once (compacted ones included).
    pub redelivered_batches: i64,
    /// Batches failed for good.
    pub failed_batches: i64,
    /// Batches split in halves after running out of attempts.
    pub split_batches: i64,
    /// Blocks quarantined and not yet released.
    pub quarantined_blocks: i64,
    /// The latest distinct batch errors, newest first (at most 5).
    pub last_errors: Vec<String>,
    /// Backfills an operator paused (their batches are not queued until resumed).
    #[serde(default)]
    pub paused_backfills: i64,
    /// Batches ended `cancelled` with their backfill.
    #[serde(default)]
    pub cancelled_batches: i64,
}

/// The failure counts of `chain`'s batches.
pub async fn work_counts(pool: &PgPool, chain: &str) -> Result<WorkCounts, sqlx::Error> {
    let (
        retried_batches,
        redelivered_batches,
        failed_batches,
        split_batches,
        paused_backfills,
        cancelled_batches,
    ): (i64, i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM batches WHERE chain = $1 AND attempts > 0) \
                  + (SELECT COALESCE(SUM(compacted_retried), 0) FROM backfills WHERE chain = $1)::int8, \
                (SELECT count(*) FROM batches WHERE chain = $1 AND deliveries > 1) \
                  + (SELECT COALESCE(SUM(compacted_redelivered), 0) FROM backfills WHERE chain = $1)::int8, \
                (SELECT count(*) FROM batches WHERE chain = $1 AND status = $2), \
                (SELECT count(*) FROM batches WHERE chain = $1 AND status = $3), \
                (SELECT count(*) FROM backfills WHERE chain = $1 AND status = $4), \
                (SELECT count(*) FROM batches WHERE chain = $1 AND status = $5)",
    )
    .bind(chain)
    .bind(BatchStatus::Failed)
    .bind(BatchStatus::Split)
    .bind(super::BackfillStatus::Paused)
    .bind(BatchStatus::Cancelled)
    .fetch_one(pool)
    .await?;
    let (quarantined_blocks,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM quarantined_blocks WHERE chain = $1 AND released_at IS NULL",
    )
    .bind(chain)
    .fetch_one(pool)
    .await?;
    let last_errors: Vec<(String,)> = sqlx::query_as(
        "SELECT last_error FROM (SELECT DISTINCT ON (last_error) last_error, \
            COALESCE(finished_at, started_at, planned_at) AS at FROM batches \
          WHERE chain = $1 AND last_error IS NOT NULL ORDER BY last_error, at DESC) e \
         ORDER BY at DESC LIMIT 5",
    )
    .bind(chain)
    .fetch_all(pool)
    .await?;
    Ok(WorkCounts {
        retried_batches,
        redelivered_batches,
        failed_batches,
        split_batches,
        quarantined_blocks,
        last_errors: last_errors.into_iter().map(|(e,)| e).collect(),
        paused_backfills,
        cancelled_batches,
    })
}

#[cfg(test)]
mod tests {
    use super::RecentWork;

    #[test]
    fn the_recent_rate_counts_at_least_one_and_at_most_thirty_seconds() {
        let work = |blocks, seconds| RecentWork { blocks, seconds };
        assert_eq!(work(None, None).blocks_per_second(), None);
        assert_eq!(work(Some(60), None).blocks_per_second(), None);
        assert_eq!(work(Some(60), Some(0.2)).blocks_per_second(), Some(60.0));
        assert_eq!(work(Some(60), Some(12.0)).blocks_per_second(), Some(5.0));
        assert_eq!(work(Some(60), Some(45.0)).blocks_per_second(), Some(2.0));
    }
}
