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
use uuid::Uuid;

use super::{
    ApiContext, ApiError,
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
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    chain: Option<Text>,
    backfill: Option<Uuid>,
    status: Option<String>,
    limit: Option<u64>,
}

async fn list(
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

async fn show(
    State(ctx): State<ApiContext>,
    PathParam(id): PathParam<Text>,
) -> Result<Json<BatchView>, ApiError> {
    Ok(Json(find(&ctx, id.as_str()).await?.into()))
}

/// Answer of the retry endpoints.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RetryView {
    /// Batches put back to work.
    pub retried: u64,
}

async fn retry_one(
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

async fn retry_failed(
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuarantineQuery {
    chain: Option<Text>,
    limit: Option<i64>,
}

async fn quarantine(
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
