//! `POST /v1/backfills`, `GET /v1/backfills`, `GET /v1/backfills/{id}` (the controls that
//! change a backfill are in `control`).

use axum::{
    Json, Router,
    extract::{
        Query, State,
        rejection::{JsonRejection, QueryRejection},
    },
    http::StatusCode,
    routing::get,
};
use std::time::Duration;

use blockfill_activities::{
    entity::{self, backfills},
    store::{
        BackfillMode, BackfillStatus, BatchStatus, backfill_views, chains, status::gap_summary,
    },
};
use chrono::{DateTime, Utc};
use sea_orm::sqlx::{self, PgPool};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    ApiContext, ApiError, ErrorBody,
    openapi::examples,
    params::{PathParam, Text},
};
use crate::scheduler::create_backfill;
use blockfill_activities::ChainName;

pub(super) fn router() -> Router<ApiContext> {
    Router::new()
        .route("/v1/backfills", get(list).post(create))
        .route("/v1/backfills/{id}", get(show))
}

/// What a requested backfill plans.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum Mode {
    /// Fetch every block of `[from, to]`, indexed or not.
    #[default]
    Range,
    /// Fetch only the missing blocks (of `[from, to]`, default the chain's whole range).
    Gaps,
}

/// Body of `POST /v1/backfills`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateBackfill {
    /// The chain's name.
    #[schema(value_type = String, example = "devnet")]
    chain: Text,
    /// `range` (default) or `gaps`.
    #[serde(default)]
    mode: Mode,
    /// First block (required for `range`; `gaps` defaults to the chain's start block).
    from: Option<u64>,
    /// Last block, at most the safe head (required for `range`; `gaps` defaults to the safe
    /// head).
    to: Option<u64>,
    /// Higher runs first among the chain's backfills (-100..=100). Default: 0.
    priority: Option<i64>,
}

/// The priorities a backfill can have.
pub(super) const PRIORITIES: std::ops::RangeInclusive<i64> = -100..=100;

/// A requested priority, or the 422 naming the field.
pub(super) fn priority(requested: i64) -> Result<i32, ApiError> {
    if PRIORITIES.contains(&requested) {
        Ok(requested as i32)
    } else {
        Err(ApiError::InvalidFields(super::FieldErrors::from([(
            "priority".to_owned(),
            format!(
                "must be between {} and {} (higher runs first), not {requested}",
                PRIORITIES.start(),
                PRIORITIES.end()
            ),
        )])))
    }
}

/// Answer of `POST /v1/backfills`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Created {
    /// The new backfill's id.
    pub id: Uuid,
    /// Always `planned`.
    pub status: String,
    /// First block.
    pub from: i64,
    /// Last block.
    pub to: i64,
}

/// How long a backfill request waits for the chain's head.
const HEAD_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads `chain`'s head from its endpoints and records it (raising the recorded one only), for a
/// request beyond the recorded head: that is only as fresh as the head tracker's last read.
/// `None` when the head cannot be read in time (the recorded one then decides).
async fn read_head(ctx: &ApiContext, chain: &entity::chains::Model) -> Option<i64> {
    let name = ChainName::parse(&chain.name).ok()?;
    let read = async {
        let source = ctx.sources.get(&name).await.map_err(|e| e.to_string())?;
        source.head().await.map_err(|e| e.to_string())
    };
    let head = match tokio::time::timeout(HEAD_READ_TIMEOUT, read).await {
        Ok(Ok(head)) => i64::try_from(head).ok()?,
        Ok(Err(e)) => {
            tracing::warn!(target: "blockfill::api", chain = %chain.name, error = %e, "cannot read the head for a backfill request; using the recorded one");
            return None;
        }
        Err(_) => {
            tracing::warn!(target: "blockfill::api", chain = %chain.name, timeout = ?HEAD_READ_TIMEOUT, "reading the head for a backfill request timed out; using the recorded one");
            return None;
        }
    };
    match chains::raise_head(&ctx.app.pool, &chain.name, head).await {
        Ok(recorded) => recorded.or(Some(head)),
        Err(e) => {
            tracing::warn!(target: "blockfill::api", chain = %chain.name, error = %e, "cannot record the head read");
            Some(head)
        }
    }
}

/// Requests a backfill of a chain's range (`range`) or of its missing blocks (`gaps`).
#[utoipa::path(
    post,
    path = "/v1/backfills",
    tag = "backfills",
    request_body(content = CreateBackfill, example = json!({"chain": "devnet", "mode": "range", "from": 0, "to": 999})),
    responses(
        (status = 202, description = "Planned; the scheduler plans its batches", body = Created, example = json!(examples::created())),
        (status = 400, description = "The body is not JSON", body = ErrorBody, example = json!(examples::error("bad_request", "Failed to parse the request body as JSON: expected value at line 1 column 1"))),
        (status = 404, description = "No such chain", body = ErrorBody, example = json!(examples::error("not_found", "no chain named mainnet; register it with POST /v1/chains"))),
        (status = 422, description = "A field is invalid, or `to` is above the safe head", body = ErrorBody, example = json!(examples::error("unprocessable", "`from` (10) must not be greater than `to` (5)"))),
    ),
)]
pub(super) async fn create(
    State(ctx): State<ApiContext>,
    body: Result<Json<CreateBackfill>, JsonRejection>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let Json(body) = body?;
    let priority = priority(body.priority.unwrap_or(0))?;
    let chain = chains::find(&ctx.app.db, body.chain.as_str())
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no chain named {}; register it with POST /v1/chains",
                body.chain
            ))
        })?;
    let mut chain = chain;
    if let Some(to) = body.to
        && chain
            .head_block
            .is_none_or(|head| to as i64 > head - chain.confirmations)
    {
        chain.head_block = read_head(&ctx, &chain).await.or(chain.head_block);
    }
    let safe_head = chain.head_block.map(|h| h - chain.confirmations);
    // What gaps mode fills by default: up to the live target, never a head not yet served.
    let indexable_tip = chain.head_block.map(|h| {
        crate::live::live_target(h.max(0) as u64, chain.confirmations.max(0) as u64) as i64
    });
    let (from, to) = match (body.mode, body.from, body.to) {
        (Mode::Range, Some(from), Some(to)) => (from, to),
        (Mode::Range, _, _) => {
            return Err(ApiError::Unprocessable(
                "a range backfill needs `from` and `to` (or use mode \"gaps\")".into(),
            ));
        }
        (Mode::Gaps, from, to) => {
            let to = match to.or(indexable_tip.and_then(|s| u64::try_from(s).ok())) {
                Some(to) => to,
                None => {
                    return Err(ApiError::Unprocessable(format!(
                        "the head of chain {} is not known yet; give `to` explicitly",
                        chain.name
                    )));
                }
            };
            (from.unwrap_or(chain.start_block as u64), to)
        }
    };
    if from > to {
        return Err(ApiError::Unprocessable(format!(
            "`from` ({from}) must not be greater than `to` ({to})"
        )));
    }
    if to > i64::MAX as u64 {
        return Err(ApiError::Unprocessable("`to` is too large".into()));
    }
    if let Some(safe) = safe_head
        && to as i64 > safe
    {
        return Err(ApiError::Unprocessable(format!(
            "`to` ({to}) is above the safe head of chain {} ({safe}: head {} minus {} \
             confirmations); blocks above it are live sync's",
            chain.name,
            chain.head_block.unwrap_or_default(),
            chain.confirmations
        )));
    }
    let chain_name = ChainName::parse(&chain.name)
        .map_err(|e| ApiError::Internal(format!("stored chain name: {e}")))?;
    let mode = match body.mode {
        Mode::Range => BackfillMode::Range,
        Mode::Gaps => BackfillMode::Gaps,
    };
    let id = create_backfill(&ctx.app, &chain_name, mode, (from, to), priority).await?;
    tracing::info!(target: "blockfill::api", %id, chain = %chain.name, from, to, mode = ?body.mode, priority, "backfill requested");
    Ok((
        StatusCode::ACCEPTED,
        Json(Created {
            id,
            status: BackfillStatus::Planned.as_str().to_owned(),
            from: from as i64,
            to: to as i64,
        }),
    ))
}

/// Batch counts by status.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct BatchCounts {
    /// Planned, not yet pushed.
    pub planned: i64,
    /// In the queue.
    pub queued: i64,
    /// Being worked on.
    pub running: i64,
    /// Written.
    pub done: i64,
    /// Out of attempts.
    pub failed: i64,
    /// Ended with their cancelled backfill (withdrawn from the queue, or never queued).
    #[serde(default)]
    pub cancelled: i64,
}

/// A backfill as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct BackfillView {
    /// Id.
    pub id: Uuid,
    /// Chain name.
    pub chain: String,
    /// `range` or `gaps` (`live` for a chain's live lane).
    pub mode: BackfillMode,
    /// First block.
    pub from: i64,
    /// Last block.
    pub to: i64,
    /// planned, running, paused, completed, failed or cancelled.
    pub status: BackfillStatus,
    /// Higher runs first among the active backfills of its chain (-100..=100, default 0).
    #[serde(default)]
    pub priority: i32,
    /// When an operator paused it (null unless paused).
    #[serde(default)]
    pub paused_at: Option<DateTime<Utc>>,
    /// When an operator cancelled it.
    #[serde(default)]
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Asked for at.
    pub requested_at: DateTime<Utc>,
    /// First planned at.
    pub started_at: Option<DateTime<Utc>>,
    /// Finished at.
    pub finished_at: Option<DateTime<Utc>>,
    /// Batches by status.
    pub batches: BatchCounts,
    /// Blocks written by this backfill.
    pub blocks_done: i64,
    /// Blocks this backfill is expected to write.
    pub blocks_total: i64,
    /// Blocks per second (last 30 s while running, overall once finished).
    pub blocks_per_second: Option<f64>,
    /// Seconds left at that rate.
    pub eta_seconds: Option<f64>,
    /// Blocks quarantined (poison blocks isolated by splitting), not yet retried.
    pub quarantined_blocks: i64,
    /// Batches split in halves after running out of attempts.
    pub split_batches: i64,
    /// Batches that needed more than one attempt.
    pub retried_batches: i64,
    /// Failed attempts over all batches.
    pub failed_attempts: i64,
    /// Deliveries beyond the first over all batches.
    pub redeliveries: i64,
    /// The last error seen.
    pub last_error: Option<String>,
    /// The latest distinct errors of its batches, newest first (at most 5).
    pub last_errors: Vec<String>,
}

pub(super) async fn view(
    pool: &PgPool,
    row: backfills::Model,
) -> Result<BackfillView, sqlx::Error> {
    let mut batches = BatchCounts::default();
    let (mut blocks_done, mut failed_attempts, mut redeliveries) = (0, 0, 0);
    for totals in backfill_views::totals_by_status(pool, row.id).await? {
        failed_attempts += totals.attempts;
        redeliveries += totals.redeliveries;
        match totals.status {
            BatchStatus::Planned => batches.planned = totals.batches,
            BatchStatus::Queued => batches.queued = totals.batches,
            BatchStatus::Running => batches.running = totals.batches,
            BatchStatus::Done => {
                batches.done = totals.batches;
                blocks_done = totals.blocks;
            }
            BatchStatus::Failed => batches.failed = totals.batches,
            BatchStatus::Cancelled => batches.cancelled = totals.batches,
            BatchStatus::Split | BatchStatus::Quarantined => {}
        }
    }
    let failures = backfill_views::failure_counts(pool, row.id).await?;
    let mut retried_batches = failures.retried_batches;
    // Done live batches compacted away still count (see `crate::compaction`).
    let compacted = backfill_views::compacted(pool, row.id).await?;
    batches.done += compacted.batches;
    blocks_done += compacted.blocks;
    retried_batches += compacted.retried;
    failed_attempts += compacted.attempts;
    redeliveries += compacted.redeliveries;
    let last_errors = backfill_views::last_errors(pool, row.id).await?;
    // A paused backfill is not finished: its counts stay live and its blocks still to do count.
    let finished = !row.status.is_active() && row.status != BackfillStatus::Paused;
    if finished && let Some(frozen) = &row.final_counts {
        let get = |k: &str| {
            frozen
                .get(k)
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(0)
        };
        batches = BatchCounts {
            planned: 0,
            queued: 0,
            running: 0,
            done: get("done"),
            failed: get("failed"),
            cancelled: get("cancelled"),
        };
        blocks_done = get("blocks_done");
    }
    let blocks_total = if row.mode == BackfillMode::Gaps {
        let missing = gap_summary(pool, &row.chain, row.from_block, row.to_block)
            .await?
            .missing;
        if finished {
            blocks_done
        } else {
            blocks_done + missing
        }
    } else {
        row.to_block - row.from_block + 1
    };
    let started = row.started_at.map(|t| t.with_timezone(&Utc));
    let end = row
        .finished_at
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(Utc::now);
    let rate = if finished {
        started.map(|s| blocks_done as f64 / ((end - s).num_milliseconds().max(1) as f64 / 1000.0))
    } else {
        backfill_views::recent_work(pool, row.id)
            .await?
            .blocks_per_second()
    };
    let remaining = (blocks_total - blocks_done).max(0);
    Ok(BackfillView {
        id: row.id,
        chain: row.chain,
        mode: row.mode,
        from: row.from_block,
        to: row.to_block,
        requested_at: row.requested_at.with_timezone(&Utc),
        started_at: started,
        finished_at: row.finished_at.map(|t| t.with_timezone(&Utc)),
        eta_seconds: if finished || remaining == 0 {
            Some(0.0)
        } else {
            rate.filter(|r| *r > 0.0).map(|r| remaining as f64 / r)
        },
        status: row.status,
        priority: row.priority,
        paused_at: row.paused_at.map(|t| t.with_timezone(&Utc)),
        cancelled_at: row.cancelled_at.map(|t| t.with_timezone(&Utc)),
        batches,
        blocks_done,
        blocks_total,
        blocks_per_second: rate,
        quarantined_blocks: failures.quarantined_blocks,
        split_batches: failures.split_batches,
        retried_batches,
        failed_attempts,
        redeliveries,
        last_error: row.last_error,
        last_errors,
    })
}

/// One backfill with its progress.
#[utoipa::path(
    get,
    path = "/v1/backfills/{id}",
    tag = "backfills",
    params(("id" = Uuid, Path, description = "Backfill id")),
    responses(
        (status = 200, description = "The backfill", body = BackfillView, example = json!(examples::backfill())),
        (status = 400, description = "The id is not a UUID", body = ErrorBody, example = json!(examples::error("bad_request", "\"x\" is not a backfill id (a UUID)"))),
        (status = 404, description = "No such backfill", body = ErrorBody, example = json!(examples::error("not_found", "no backfill 0193c1d2-7a4e-7c3b-9a1e-3f2b8c4d5e6f"))),
    ),
)]
pub(super) async fn show(
    State(ctx): State<ApiContext>,
    PathParam(id): PathParam<String>,
) -> Result<Json<BackfillView>, ApiError> {
    let id = backfill_id(&id)?;
    Ok(Json(load(&ctx, id).await?))
}

/// Parses a backfill id of a path (400 when it is not a UUID).
pub(super) fn backfill_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id)
        .map_err(|_| ApiError::BadRequest(format!("{id:?} is not a backfill id (a UUID)")))
}

/// The view of backfill `id` (404 when there is none).
pub(super) async fn load(ctx: &ApiContext, id: Uuid) -> Result<BackfillView, ApiError> {
    let row = backfill_views::find(&ctx.app.db, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no backfill {id}")))?;
    Ok(view(&ctx.app.pool, row).await?)
}

/// Query of `GET /v1/backfills`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ListQuery {
    /// Only this chain's backfills.
    #[param(value_type = Option<String>)]
    chain: Option<Text>,
    /// Most backfills, 1..=200 (default 20).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u64>,
}

/// The latest backfills, newest first.
#[utoipa::path(
    get,
    path = "/v1/backfills",
    tag = "backfills",
    params(ListQuery),
    responses(
        (status = 200, description = "The backfills, newest first", body = Vec<BackfillView>, example = json!([examples::backfill()])),
        (status = 400, description = "A query parameter is invalid", body = ErrorBody, example = json!(examples::error("bad_request", "limit must be between 1 and 200"))),
    ),
)]
pub(super) async fn list(
    State(ctx): State<ApiContext>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Vec<BackfillView>>, ApiError> {
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(20);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::BadRequest(
            "limit must be between 1 and 200".into(),
        ));
    }
    let chain = query.chain.map(Text::into_string);
    let mut views = Vec::new();
    for row in backfill_views::latest(&ctx.app.db, chain.as_deref(), limit).await? {
        views.push(view(&ctx.app.pool, row).await?);
    }
    Ok(Json(views))
}
