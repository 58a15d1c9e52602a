//! `GET /v1/chains/{name}/status` (live section apart from historical gaps) and
//! `GET /v1/chains/{name}/gaps?limit=&after=&from=&to=` (`from`/`to`: only the gaps within that
//! block window, clipped to it). Everything is computed from the coverage ledger,
//! whose size is the number of gaps, never the number of blocks; the reads are
//! [`blockfill_activities::store::status`]'s, this file shapes their answers.

use axum::{
    Json, Router,
    extract::{Query, State, rejection::QueryRejection},
    routing::get,
};
use blockfill_activities::{
    entity::chains,
    store::{
        chains as chain_rows, reorg_log,
        status::{self as status_reads},
    },
};
use chrono::{DateTime, Utc};
use sea_orm::sqlx::{self, PgPool};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub use blockfill_activities::store::status::{GapSummary, Interval, gap_page, gap_summary};

use super::{
    ApiContext, ApiError, ErrorBody,
    openapi::examples,
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
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
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
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
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

/// The answer of `GET /v1/chains/{name}/status`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
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
pub use blockfill_activities::store::status::WorkCounts as WorkStatus;

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
    let highest = status_reads::highest_indexed_or_requested(pool, &chain.name).await?;
    Ok(highest.filter(|h| *h >= from).map(|h| (from, h)))
}

/// Computes the status answer of `chain`.
pub async fn chain_status(
    pool: &PgPool,
    chain: &chains::Model,
) -> Result<ChainStatus, sqlx::Error> {
    let last_indexed = status_reads::last_indexed(pool, &chain.name).await?;
    let safe_head = chain.head_block.map(|h| (h - chain.confirmations).max(0));
    let lag_blocks =
        safe_head.map(|safe| (safe - last_indexed.unwrap_or(chain.start_block - 1)).max(0));
    let reorgs_seen = reorg_log::count(pool, &chain.name).await?;
    let last_reorg = reorg_log::recent(pool, &chain.name, 1).await?.pop();
    let progress = status_reads::live_progress(pool, &chain.name).await?;
    let live = LiveStatus {
        lag_seconds: lag_blocks
            .zip(progress.block_time)
            .map(|(lag, t)| lag as f64 * t),
        live_sync_enabled: chain.live_sync,
        last_live_block: progress.last_live_block,
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
    let rate = status_reads::recent_chain_work(pool, &chain.name)
        .await?
        .blocks_per_second();
    let work = status_reads::work_counts(pool, &chain.name).await?;
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
    let coverage =
        status_reads::coverage_within(pool, &chain.name, from, to, MAX_COVERAGE_INTERVALS).await?;
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
        coverage,
        work,
    })
}

async fn find_chain(ctx: &ApiContext, name: &str) -> Result<chains::Model, ApiError> {
    chain_rows::find(&ctx.app.db, name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no chain named {name}")))
}

/// A chain's live section (head, lag, reorgs) apart from its historical completeness (gaps).
#[utoipa::path(
    get,
    path = "/v1/chains/{name}/status",
    tag = "chains",
    params(("name" = String, Path, description = "Chain name", example = "devnet")),
    responses(
        (status = 200, description = "The chain's status", body = ChainStatus, example = json!(examples::status())),
        (status = 400, description = "The name cannot be read", body = ErrorBody, example = json!(examples::error("bad_request", "\"a\\0\" contains a NUL character"))),
        (status = 404, description = "No such chain", body = ErrorBody, example = json!(examples::error("not_found", "no chain named mainnet"))),
    ),
)]
pub(super) async fn status(
    State(ctx): State<ApiContext>,
    PathParam(name): PathParam<Text>,
) -> Result<Json<ChainStatus>, ApiError> {
    // The chain row is read inside the computation: a cached answer costs no query.
    let answer = ctx
        .status_cache
        .status
        .get_or_compute(name.as_str(), async || {
            let chain = find_chain(&ctx, name.as_str()).await?;
            Ok::<_, ApiError>(chain_status(&ctx.app.pool, &chain).await?)
        })
        .await?;
    Ok(Json(ChainStatus::clone(&answer)))
}

/// Query of `GET /v1/chains/{name}/gaps`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct GapQuery {
    /// Most gaps, 1..=1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// Only gaps starting above this block (`next_after` of the previous page).
    after: Option<i64>,
    /// First block of the window (default: the chain's start block).
    from: Option<i64>,
    /// Last block of the window (default: the safe head).
    to: Option<i64>,
}

/// A gap in the answer of `GET /v1/chains/{name}/gaps`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct GapView {
    /// First missing block.
    pub start: i64,
    /// Last missing block.
    pub end: i64,
    /// Missing blocks.
    pub size: i64,
}

/// The answer of `GET /v1/chains/{name}/gaps`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct GapPage {
    /// Gaps, lowest first.
    pub gaps: Vec<GapView>,
    /// Pass as `after` for the next page; null on the last page.
    pub next_after: Option<i64>,
}

/// A chain's missing ranges between its start block and its safe head, lowest first, a page
/// at a time.
#[utoipa::path(
    get,
    path = "/v1/chains/{name}/gaps",
    tag = "chains",
    params(("name" = String, Path, description = "Chain name", example = "devnet"), GapQuery),
    responses(
        (status = 200, description = "A page of gaps", body = GapPage, example = json!({"gaps": [{"start": 100, "end": 199, "size": 100}], "next_after": null})),
        (status = 400, description = "A parameter is invalid", body = ErrorBody, example = json!(examples::error("bad_request", "limit must be between 1 and 1000"))),
        (status = 404, description = "No such chain", body = ErrorBody, example = json!(examples::error("not_found", "no chain named mainnet"))),
    ),
)]
pub(super) async fn gaps(
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
    if let (Some(from), Some(to)) = (query.from, query.to)
        && from > to
    {
        return Err(ApiError::BadRequest(format!(
            "from ({from}) must not be greater than to ({to})"
        )));
    }
    let key = format!(
        "{}?limit={limit}&after={:?}&from={:?}&to={:?}",
        name.as_str(),
        query.after,
        query.from,
        query.to
    );
    let page = ctx
        .status_cache
        .gaps
        .get_or_compute(&key, async || {
            let chain = find_chain(&ctx, name.as_str()).await?;
            gap_answer(&ctx, &chain, &query, limit).await
        })
        .await?;
    Ok(Json(GapPage::clone(&page)))
}

/// The gaps answer for `query` (its limit checked).
async fn gap_answer(
    ctx: &ApiContext,
    chain: &chains::Model,
    query: &GapQuery,
    limit: i64,
) -> Result<GapPage, ApiError> {
    let window = covered_range(&ctx.app.pool, chain)
        .await?
        .map(|(from, to)| {
            (
                query.from.map_or(from, |f| f.max(from)),
                query.to.map_or(to, |t| t.min(to)),
            )
        })
        .filter(|(from, to)| from <= to);
    let Some((from, to)) = window else {
        return Ok(GapPage {
            gaps: Vec::new(),
            next_after: None,
        });
    };
    let mut page = gap_page(&ctx.app.pool, &chain.name, from, to, query.after, limit + 1).await?;
    let more = page.len() as i64 > limit;
    page.truncate(limit as usize);
    Ok(GapPage {
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
    })
}
