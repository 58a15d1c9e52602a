//! `GET /v1/workers`: the worker processes that reported within the stale window, with what they
//! serve, their concurrency, batches in flight, blocks per second and heartbeat age.

use axum::{Json, Router, extract::State, routing::get};
use blockfill_activities::store::workers::{self, STALE_AFTER};

use super::{ApiContext, error::ApiError, openapi::examples};

/// A worker process as the API lists it.
pub use blockfill_activities::store::workers::WorkerRow as WorkerView;

pub(super) fn router() -> Router<ApiContext> {
    Router::new().route("/v1/workers", get(list))
}

/// The worker processes that reported within the stale window.
#[utoipa::path(
    get,
    path = "/v1/workers",
    tag = "fleet",
    responses((status = 200, description = "The workers", body = Vec<WorkerView>, example = json!([examples::worker()]))),
)]
pub(super) async fn list(State(ctx): State<ApiContext>) -> Result<Json<Vec<WorkerView>>, ApiError> {
    Ok(Json(workers::fresh(&ctx.app.pool, STALE_AFTER).await?))
}
