//! `GET /healthz` (the process answers), `GET /readyz` (PostgreSQL and Redis answer) and
//! `GET /metrics` (Prometheus).

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use blockfill_activities::store::readiness;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiContext, ApiError};

pub(super) fn router() -> Router<ApiContext> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The answer of `GET /healthz`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(super) struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    pub(super) status: String,
}

/// The answer of `GET /readyz`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(super) struct Readiness {
    /// `ready` or `not ready`.
    #[schema(example = "ready")]
    pub(super) status: String,
    /// `ok`, or `error: ...` when PostgreSQL does not answer.
    #[schema(example = "ok")]
    pub(super) postgres: String,
    /// `ok`, or `error: ...` when Redis does not answer.
    #[schema(example = "ok")]
    pub(super) redis: String,
}

/// The process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses((status = 200, description = "The process is up", body = Health, example = json!({"status": "ok"}))),
)]
pub(super) async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
    })
}

/// PostgreSQL and Redis answer.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "Ready: both stores answer", body = Readiness,
         example = json!({"status": "ready", "postgres": "ok", "redis": "ok"})),
        (status = 503, description = "Not ready: a store does not answer", body = Readiness,
         example = json!({"status": "not ready", "postgres": "ok", "redis": "error: connection refused"})),
    ),
)]
pub(super) async fn readyz(State(ctx): State<ApiContext>) -> impl IntoResponse {
    let postgres = match readiness::ping(&ctx.app.db).await {
        Ok(()) => "ok".to_owned(),
        Err(e) => format!("error: {e}"),
    };
    let redis = match ctx.app.queues.ping().await {
        Ok(_) => "ok".to_owned(),
        Err(e) => format!("error: {e}"),
    };
    let ready = postgres == "ok" && redis == "ok";
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Readiness {
            status: if ready { "ready" } else { "not ready" }.to_owned(),
            postgres,
            redis,
        }),
    )
}

/// Prometheus metrics, in the text exposition format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses(
        (status = 200, description = "The metrics", body = String, content_type = "text/plain",
         example = json!("# TYPE blockfill_fleet_desired_workers gauge\nblockfill_fleet_desired_workers{chain=\"devnet\"} 1\n")),
        (status = 404, description = "Metrics are not enabled in this process", body = super::ErrorBody,
         example = json!({"error": "metrics are not enabled", "code": "not_found"})),
    ),
)]
pub(super) async fn metrics(State(ctx): State<ApiContext>) -> Response {
    match &ctx.metrics {
        Some(handle) => {
            blockfill_activities::telemetry::metrics::record_pool(&ctx.app.pool);
            handle.render().into_response()
        }
        None => ApiError::NotFound("metrics are not enabled".to_owned()).into_response(),
    }
}
