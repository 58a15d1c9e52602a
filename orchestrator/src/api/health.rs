//! `GET /healthz` (the process answers), `GET /readyz` (PostgreSQL and Redis answer) and
//! `GET /metrics` (Prometheus).

use axum::{Json, Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use blockfill_activities::store::readiness;
use serde_json::json;

use super::ApiContext;

pub(super) fn router() -> Router<ApiContext> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(ctx): State<ApiContext>) -> impl IntoResponse {
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
        Json(json!({
            "status": if ready { "ready" } else { "not ready" },
            "postgres": postgres,
            "redis": redis,
        })),
    )
}

async fn metrics(State(ctx): State<ApiContext>) -> impl IntoResponse {
    match &ctx.metrics {
        Some(handle) => (StatusCode::OK, handle.render()),
        None => (
            StatusCode::NOT_FOUND,
            "metrics are not enabled\n".to_owned(),
        ),
    }
}
