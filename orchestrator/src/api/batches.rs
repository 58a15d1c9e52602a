//! `GET /v1/batches`, `GET /v1/batches/{id}`, `POST /v1/batches/{id}/retry`,
//! `POST /v1/backfills/{id}/retry-failed` and `GET /v1/quarantine`: failed work, and putting it
//! back to work once its cause is fixed.

use axum::{
    Json, Router,
    extract::{Query, State, rejection::QueryRejection},
    routing::{get, post},
};
use blockfill_activities::{
    entity::batches,
    store::{
        BatchStatus, backfill_views,
        batch_views::{self, BatchFilter},
    },
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    ApiContext, ApiError, ErrorBody,
    openapi::examples,
    params::{PathParam, Text},
};
use crate::scheduler::retry_batches;

pub(super) fn router() -> Router<ApiContext> {
    Router::new()
        .route("/v1/batches", get(list))
        .route("/v1/batches/{id}", get(show))
        .route("/v1/batches/{id}/retry", post(retry_one))
        .route("/v1/backfills/{id}/retry-failed", post(retry_failed))
        .route("/v1/quarantine", get(quarantine))
}

/// A batch as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct BatchView {
    /// `{chain}:{from}-{to}`.
    pub id: String,
    /// Chain name.
    pub chain: String,
    /// First block.
    pub from: i64,
    /// Last block.
    pub to: i64,
    /// Owning backfill.
    pub backfill_id: Uuid,
    /// planned, queued, running, done, failed, split or quarantined.
    pub status: BatchStatus,
    /// Failed attempts.
    pub attempts: i32,
    /// Times a worker started it.
    pub deliveries: i32,
    /// Last error.
    pub last_error: Option<String>,
    /// Worker that last started it.
    pub worker: Option<String>,
    /// The batch it was split from.
    pub parent_id: Option<String>,
    /// Last start.
    pub started_at: Option<DateTime<Utc>>,
    /// Finish.
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<batches::Model> for BatchView {
    fn from(row: batches::Model) -> Self {
        Self {
            id: row.id,
            chain: row.chain,
            from: row.from_block,
            to: row.to_block,
            backfill_id: row.backfill_id,
            status: row.status,
            attempts: row.attempts,
            deliveries: row.deliveries,
            last_error: row.last_error,
            worker: row.worker,
            parent_id: row.parent_id,
            started_at: row.started_at.map(|t| t.with_timezone(&Utc)),
            finished_at: row.finished_at.map(|t| t.with_timezone(&Utc)),
        }
    }
}

/// Query of `GET /v1/batches`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ListQuery {
    /// Only this chain's batches.
    #[param(value_type = Option<String>)]
    chain: Option<Text>,
    /// Only this backfill's batches.
    backfill: Option<Uuid>,
    /// Only batches in this state.
    #[param(value_type = Option<BatchStatus>)]
    status: Option<String>,
    /// Most batches, 1..=1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u64>,
}

/// Batches, filtered by chain, backfill and state.
#[utoipa::path(
    get,
    path = "/v1/batches",
    tag = "batches",
    params(ListQuery),
    responses(
        (status = 200, description = "The batches", body = Vec<BatchView>, example = json!([examples::batch()])),
        (status = 400, description = "A query parameter is invalid", body = ErrorBody, example = json!(examples::error("bad_request", "limit must be between 1 and 1000"))),
    ),
)]
pub(super) async fn list(
    State(ctx): State<ApiContext>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Vec<BatchView>>, ApiError> {
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1_000).contains(&limit) {
        return Err(ApiError::BadRequest(
            "limit must be between 1 and 1000".into(),
        ));
    }
    let status = query
        .status
        .map(|status| {
            status.parse::<BatchStatus>().map_err(|_| {
                ApiError::BadRequest(format!(
                    "status must be one of {}",
                    batch_views::STATUS_NAMES.join(", ")
                ))
            })
        })
        .transpose()?;
    let chain = query.chain.map(Text::into_string);
    let filter = BatchFilter {
        chain: chain.as_deref(),
        backfill: query.backfill,
        status,
    };
    let rows = batch_views::list(&ctx.app.db, filter, limit).await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

async fn find(ctx: &ApiContext, id: &str) -> Result<batches::Model, ApiError> {
    batch_views::find(&ctx.app.db, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no batch {id}")))
}

/// One batch.
#[utoipa::path(
    get,
    path = "/v1/batches/{id}",
    tag = "batches",
    params(("id" = String, Path, description = "Batch id, `{chain}:{from}-{to}`", example = "devnet:0-99")),
    responses(
        (status = 200, description = "The batch", body = BatchView, example = json!(examples::batch())),
        (status = 400, description = "The id cannot be read", body = ErrorBody, example = json!(examples::error("bad_request", "\"a\\0\" contains a NUL character"))),
        (status = 404, description = "No such batch", body = ErrorBody, example = json!(examples::error("not_found", "no batch devnet:0-99"))),
    ),
)]
pub(super) async fn show(
    State(ctx): State<ApiContext>,
    PathParam(id): PathParam<Text>,
) -> Result<Json<BatchView>, ApiError> {
    Ok(Json(find(&ctx, id.as_str()).await?.into()))
}

/// Answer of the retry endpoints.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct RetryView {
    /// Batches put back to work.
    pub retried: u64,
}

/// Puts a failed or quarantined batch back to work.
#[utoipa::path(
    post,
    path = "/v1/batches/{id}/retry",
    tag = "batches",
    params(("id" = String, Path, description = "Batch id, `{chain}:{from}-{to}`", example = "devnet:0-99")),
    responses(
        (status = 200, description = "Retried", body = RetryView, example = json!({"retried": 1})),
        (status = 400, description = "The id cannot be read", body = ErrorBody, example = json!(examples::error("bad_request", "\"a\\0\" contains a NUL character"))),
        (status = 404, description = "No such batch", body = ErrorBody, example = json!(examples::error("not_found", "no batch devnet:0-99"))),
        (status = 409, description = "The batch is neither failed nor quarantined", body = ErrorBody, example = json!(examples::error("conflict", "batch devnet:0-99 is done; only failed or quarantined batches can be retried"))),
    ),
)]
pub(super) async fn retry_one(
    State(ctx): State<ApiContext>,
    PathParam(id): PathParam<Text>,
) -> Result<Json<RetryView>, ApiError> {
    let batch = find(&ctx, id.as_str()).await?;
    if !batch_views::RETRYABLE.contains(&batch.status) {
        return Err(ApiError::Conflict(format!(
            "batch {id} is {}; only failed or quarantined batches can be retried",
            batch.status
        )));
    }
    let retried = retry_batches(&ctx.app, batch.backfill_id, &[id.into_string()]).await?;
    Ok(Json(RetryView { retried }))
}

/// Puts every failed or quarantined batch of a backfill back to work.
#[utoipa::path(
    post,
    path = "/v1/backfills/{id}/retry-failed",
    tag = "backfills",
    params(("id" = Uuid, Path, description = "Backfill id")),
    responses(
        (status = 200, description = "Retried (0 when nothing had failed)", body = RetryView, example = json!({"retried": 3})),
        (status = 400, description = "The id is not a UUID", body = ErrorBody, example = json!(examples::error("bad_request", "\"x\" is not a backfill id (a UUID)"))),
        (status = 404, description = "No such backfill", body = ErrorBody, example = json!(examples::error("not_found", "no backfill 0193c1d2-7a4e-7c3b-9a1e-3f2b8c4d5e6f"))),
    ),
)]
pub(super) async fn retry_failed(
    State(ctx): State<ApiContext>,
    PathParam(id): PathParam<String>,
) -> Result<Json<RetryView>, ApiError> {
    let backfill_id = Uuid::parse_str(&id)
        .map_err(|_| ApiError::BadRequest(format!("{id:?} is not a backfill id (a UUID)")))?;
    let ids = batch_views::retryable_ids(&ctx.app.pool, backfill_id).await?;
    if ids.is_empty() {
        if !backfill_views::exists(&ctx.app.pool, backfill_id).await? {
            return Err(ApiError::NotFound(format!("no backfill {backfill_id}")));
        }
        return Ok(Json(RetryView { retried: 0 }));
    }
    let retried = retry_batches(&ctx.app, backfill_id, &ids).await?;
    Ok(Json(RetryView { retried }))
}

/// A quarantined block.
pub use blockfill_activities::store::batch_views::Quarantined as QuarantinedBlock;

/// Query of `GET /v1/quarantine`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct QuarantineQuery {
    /// Only this chain's blocks.
    #[param(value_type = Option<String>)]
    chain: Option<Text>,
    /// Most blocks, 1..=1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// Blocks held in quarantine (not yet released), by chain and number.
#[utoipa::path(
    get,
    path = "/v1/quarantine",
    tag = "batches",
    params(QuarantineQuery),
    responses(
        (status = 200, description = "The quarantined blocks", body = Vec<QuarantinedBlock>, example = json!([examples::quarantined()])),
        (status = 400, description = "A query parameter is invalid", body = ErrorBody, example = json!(examples::error("bad_request", "limit must be between 1 and 1000"))),
    ),
)]
pub(super) async fn quarantine(
    State(ctx): State<ApiContext>,
    query: Result<Query<QuarantineQuery>, QueryRejection>,
) -> Result<Json<Vec<QuarantinedBlock>>, ApiError> {
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1_000).contains(&limit) {
        return Err(ApiError::BadRequest(
            "limit must be between 1 and 1000".into(),
        ));
    }
    let chain = query.chain.map(Text::into_string);
    let rows = batch_views::quarantined(&ctx.app.pool, chain.as_deref(), limit).await?;
    Ok(Json(rows))
}
