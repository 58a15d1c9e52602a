//! `GET /v1/chains/{name}/status` (live section apart from historical gaps) and
//! `GET /v1/chains/{name}/gaps?limit=&after=`. Everything is computed from the coverage ledger,
//! whose size is the number of gaps, never the number of blocks.

use axum::{
    Json, Router,
    extract::{Query, State, rejection::QueryRejection},
    routing::get,
};
use blockfill_activities::entity::chains;
use chrono::{DateTime, Utc};
use sea_orm::{
    EntityTrait,
    sqlx::{self, PgPool},
};
use serde::{Deserialize, Serialize};

use super::{
    ApiContext, ApiError,
    params::{PathParam, Text},
};

/// A chain whose last indexed block is at most this far below the safe head reads as live-synced.
pub const LIVE_SYNC_TOLERANCE: i64 = 2;
/// Most coverage intervals returned with a status answer.
const MAX_COVERAGE_INTERVALS: i64 = 500;

pub(super) fn router() -> Router<ApiContext> {
    Router::new()
        .route("/v1/chains/{name}/status", get(status))
        .route("/v1/chains/{name}/gaps", get(gaps))
}

/// The chain head and how close indexing is to it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LiveStatus {
    /// Newest block the node reported.
    pub head: Option<i64>,
    /// Head minus the confirmation depth.
    pub safe_head: Option<i64>,
    /// Highest indexed block.
    pub last_indexed: Option<i64>,
    /// `safe_head - last_indexed`, never negative.
    pub lag_blocks: Option<i64>,
    /// `lag_blocks` in chain time: times the average block time of the last 100 indexed blocks.
    pub lag_seconds: Option<f64>,
    /// Whether the live lane follows this chain's head.
    pub live_sync_enabled: bool,
    /// Highest block written by the live lane.
    pub last_live_block: Option<i64>,
    /// True when `last_indexed` is within a couple of blocks of the safe head.
    pub is_live_sync: bool,
    /// When the head was last read.
    pub head_updated_at: Option<DateTime<Utc>>,
    /// Reorgs detected and repaired on this chain.
    pub reorgs_seen: i64,
    /// The latest of them.
    pub last_reorg: Option<super::ReorgView>,
    /// Whether live sync is halted for an operator (a reorg deeper than the chain's
    /// `max_reorg_depth`: nothing was unwound); `POST /v1/chains/{name}/live/resume` resumes it.
    pub halted: bool,
    /// Why it halted.
    pub halted_reason: Option<String>,
    /// When it halted.
    pub halted_at: Option<DateTime<Utc>>,
}

/// Historical completeness between the chain's start block and its safe head.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HistoricalStatus {
    /// First block the chain should cover.
    pub from: i64,
    /// Last block the chain should cover (the safe head), if known.
    pub to: Option<i64>,
    /// Blocks of `[from, to]` indexed.
    pub indexed_blocks: i64,
    /// Blocks of `[from, to]` missing.
    pub missing_blocks_count: i64,
    /// Number of maximal missing ranges.
    pub gap_ranges_count: i64,
    /// Start of the largest gap (the lowest one on ties).
    pub largest_gap_start: Option<i64>,
    /// End of the largest gap.
    pub largest_gap_end: Option<i64>,
    /// Start of the lowest gap.
    pub oldest_gap_start: Option<i64>,
    /// `indexed_blocks` as a percentage of `[from, to]`.
    pub percent_complete: f64,
    /// Blocks indexed per second over the last 30 s.
    pub blocks_per_second: Option<f64>,
    /// Seconds until no block is missing at that rate.
    pub eta_seconds: Option<f64>,
}

/// One covered or missing interval.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Interval {
    /// First block.
    pub start: i64,
    /// Last block.
    pub end: i64,
}

/// The answer of `GET /v1/chains/{name}/status`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChainStatus {
    /// Chain name.
    pub chain: String,
    /// Live section.
    pub live: LiveStatus,
    /// Historical section.
    pub historical: HistoricalStatus,
    /// Covered intervals within the historical range (at most 500, lowest first).
    pub coverage: Vec<Interval>,
    /// Failure counts of the chain's batches.
    pub work: WorkStatus,
}

/// How much of a chain's work needed retries, redeliveries, failed or was quarantined.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct WorkStatus {
    /// Batches that needed more than one attempt.
    pub retried_batches: i64,
    /// Batches delivered more than once (worker deaths, lost queues).
    pub redelivered_batches: i64,
    /// Batches failed for good (retry them with the API).
    pub failed_batches: i64,
    /// Batches split in halves after running out of attempts.
    pub split_batches: i64,
    /// Blocks quarantined and not yet retried.
    pub quarantined_blocks: i64,
    /// The latest distinct batch errors, newest first (at most 5).
    pub last_errors: Vec<String>,
}

/// The chain's failure counts. Each count reads only the rows it counts (partial indexes of
/// migration 000007, and `(chain, status)` for failed and split), never all of a chain's batches;
/// compacted live batches count through their backfill's counters (see `crate::compaction`).
async fn work_status(pool: &PgPool, chain: &str) -> Result<WorkStatus, sqlx::Error> {
    let (retried_batches, redelivered_batches, failed_batches, split_batches): (
        i64,
        i64,
        i64,
        i64,
    ) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM batches WHERE chain = $1 AND attempts > 0) \
                  + (SELECT COALESCE(SUM(compacted_retried), 0) FROM backfills WHERE chain = $1)::int8, \
                (SELECT count(*) FROM batches WHERE chain = $1 AND deliveries > 1) \
                  + (SELECT COALESCE(SUM(compacted_redelivered), 0) FROM backfills WHERE chain = $1)::int8, \
                (SELECT count(*) FROM batches WHERE chain = $1 AND status = 'failed'), \
                (SELECT count(*) FROM batches WHERE chain = $1 AND status = 'split')",
    )
    .bind(chain)
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
    Ok(WorkStatus {
        retried_batches,
        redelivered_batches,
        failed_batches,
        split_batches,
        quarantined_blocks,
        last_errors: last_errors.into_iter().map(|(e,)| e).collect(),
    })
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

/// Summarises the gaps of `chain` in `[from, to]`.
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

/// The historical range `[from, to]` a chain should cover: its start block up to the indexable
/// tip (the safe head, and never the head itself, which may be announced before it is served),
/// or, before the head is known, up to the highest block indexed or asked for.
async fn covered_range(
    pool: &PgPool,
    chain: &chains::Model,
) -> Result<Option<(i64, i64)>, sqlx::Error> {
    let from = chain.start_block;
    if let Some(head) = chain.head_block {
        let tip =
            crate::live::live_target(head.max(0) as u64, chain.confirmations.max(0) as u64) as i64;
        return Ok((tip >= from).then_some((from, tip)));
    }
    let (highest,): (Option<i64>,) = sqlx::query_as(
        "SELECT GREATEST((SELECT MAX(end_block) FROM coverage WHERE chain = $1), \
                         (SELECT MAX(to_block) FROM backfills WHERE chain = $1))",
    )
    .bind(&chain.name)
    .fetch_one(pool)
    .await?;
    Ok(highest.filter(|h| *h >= from).map(|h| (from, h)))
}

/// Blocks per second written for `chain` over the last 30 s.
async fn recent_rate(pool: &PgPool, chain: &str) -> Result<Option<f64>, sqlx::Error> {
    let (blocks, seconds): (Option<i64>, Option<f64>) = sqlx::query_as(
        "SELECT SUM(to_block - from_block + 1)::int8, \
                EXTRACT(EPOCH FROM now() - MIN(started_at))::float8 \
         FROM batches WHERE chain = $1 AND status = 'done' AND finished_at > now() - interval '30 seconds'",
    )
    .bind(chain)
    .fetch_one(pool)
    .await?;
    Ok(blocks
        .zip(seconds)
        .map(|(b, s)| b as f64 / s.clamp(1.0, 30.0)))
}

/// Computes the status answer of `chain`.
pub async fn chain_status(
    pool: &PgPool,
    chain: &chains::Model,
) -> Result<ChainStatus, sqlx::Error> {
    let (last_indexed,): (Option<i64>,) =
        sqlx::query_as("SELECT MAX(end_block) FROM coverage WHERE chain = $1")
            .bind(&chain.name)
            .fetch_one(pool)
            .await?;
    let safe_head = chain.head_block.map(|h| (h - chain.confirmations).max(0));
    let lag_blocks =
        safe_head.map(|safe| (safe - last_indexed.unwrap_or(chain.start_block - 1)).max(0));
    let (reorgs_seen,): (i64,) = sqlx::query_as("SELECT count(*) FROM reorgs WHERE chain = $1")
        .bind(&chain.name)
        .fetch_one(pool)
        .await?;
    let last_reorg = super::reorgs::recent_reorgs(pool, &chain.name, 1)
        .await?
        .pop();
    let (last_live_block, block_time): (Option<i64>, Option<f64>) = sqlx::query_as(
        "SELECT (SELECT MAX(to_block) FROM batches WHERE chain = $1 AND lane = 'live' AND status = 'done'), \
                (SELECT (MAX(timestamp) - MIN(timestamp))::float8 / NULLIF(MAX(number) - MIN(number), 0) \
                 FROM (SELECT number, timestamp FROM blocks WHERE chain = $1 ORDER BY number DESC LIMIT 100) recent)",
    )
    .bind(&chain.name)
    .fetch_one(pool)
    .await?;
    let live = LiveStatus {
        lag_seconds: lag_blocks.zip(block_time).map(|(lag, t)| lag as f64 * t),
        live_sync_enabled: chain.live_sync,
        last_live_block,
        reorgs_seen,
        last_reorg,
        head: chain.head_block,
        safe_head,
        last_indexed,
        lag_blocks,
        is_live_sync: last_indexed.is_some()
            && lag_blocks.is_some_and(|lag| lag <= LIVE_SYNC_TOLERANCE),
        head_updated_at: chain.head_updated_at.map(|t| t.with_timezone(&Utc)),
        halted: chain.live_halted,
        halted_reason: chain.live_halted_reason.clone(),
        halted_at: chain.live_halted_at.map(|t| t.with_timezone(&Utc)),
    };
    let rate = recent_rate(pool, &chain.name).await?;
    let work = work_status(pool, &chain.name).await?;
    let Some((from, to)) = covered_range(pool, chain).await? else {
        return Ok(ChainStatus {
            chain: chain.name.clone(),
            live,
            historical: HistoricalStatus {
                from: chain.start_block,
                to: None,
                indexed_blocks: 0,
                missing_blocks_count: 0,
                gap_ranges_count: 0,
                largest_gap_start: None,
                largest_gap_end: None,
                oldest_gap_start: None,
                percent_complete: 0.0,
                blocks_per_second: rate,
                eta_seconds: None,
            },
            coverage: Vec::new(),
            work,
        });
    };
    let summary = gap_summary(pool, &chain.name, from, to).await?;
    let coverage: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT GREATEST(start_block, $2), LEAST(end_block, $3) FROM coverage \
         WHERE chain = $1 AND end_block >= $2 AND start_block <= $3 ORDER BY start_block LIMIT $4",
    )
    .bind(&chain.name)
    .bind(from)
    .bind(to)
    .bind(MAX_COVERAGE_INTERVALS)
    .fetch_all(pool)
    .await?;
    let total = (to - from + 1) as f64;
    Ok(ChainStatus {
        chain: chain.name.clone(),
        live,
        historical: HistoricalStatus {
            from,
            to: Some(to),
            indexed_blocks: summary.indexed,
            missing_blocks_count: summary.missing,
            gap_ranges_count: summary.gap_count,
            largest_gap_start: summary.largest.map(|g| g.0),
            largest_gap_end: summary.largest.map(|g| g.1),
            oldest_gap_start: summary.oldest_start,
            percent_complete: (summary.indexed as f64 / total * 100.0 * 1000.0).round() / 1000.0,
            blocks_per_second: rate,
            eta_seconds: match rate {
                _ if summary.missing == 0 => Some(0.0),
                Some(r) if r > 0.0 => Some(summary.missing as f64 / r),
                _ => None,
            },
        },
        coverage: coverage
            .into_iter()
            .map(|(start, end)| Interval { start, end })
            .collect(),
        work,
    })
}

async fn find_chain(ctx: &ApiContext, name: &str) -> Result<chains::Model, ApiError> {
    chains::Entity::find_by_id(name.to_owned())
        .one(&ctx.app.db)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no chain named {name}")))
}

async fn status(
    State(ctx): State<ApiContext>,
    PathParam(name): PathParam<Text>,
) -> Result<Json<ChainStatus>, ApiError> {
    let chain = find_chain(&ctx, name.as_str()).await?;
    Ok(Json(chain_status(&ctx.app.pool, &chain).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GapQuery {
    limit: Option<i64>,
    after: Option<i64>,
}

/// A gap in the answer of `GET /v1/chains/{name}/gaps`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GapView {
    /// First missing block.
    pub start: i64,
    /// Last missing block.
    pub end: i64,
    /// Missing blocks.
    pub size: i64,
}

/// The answer of `GET /v1/chains/{name}/gaps`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GapPage {
    /// Gaps, lowest first.
    pub gaps: Vec<GapView>,
    /// Pass as `after` for the next page; null on the last page.
    pub next_after: Option<i64>,
}

async fn gaps(
    State(ctx): State<ApiContext>,
    PathParam(name): PathParam<Text>,
    query: Result<Query<GapQuery>, QueryRejection>,
) -> Result<Json<GapPage>, ApiError> {
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1_000).contains(&limit) {
        return Err(ApiError::BadRequest(
            "limit must be between 1 and 1000".into(),
        ));
    }
    let chain = find_chain(&ctx, name.as_str()).await?;
    let Some((from, to)) = covered_range(&ctx.app.pool, &chain).await? else {
        return Ok(Json(GapPage {
            gaps: Vec::new(),
            next_after: None,
        }));
    };
    let mut page = gap_page(&ctx.app.pool, &chain.name, from, to, query.after, limit + 1).await?;
    let more = page.len() as i64 > limit;
    page.truncate(limit as usize);
    Ok(Json(GapPage {
        next_after: if more {
            page.last().map(|g| g.start)
        } else {
            None
        },
        gaps: page
            .into_iter()
            .map(|g| GapView {
                start: g.start,
                end: g.end,
                size: g.end - g.start + 1,
            })
            .collect(),
    }))
}
