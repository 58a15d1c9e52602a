//! `GET /v1/audit` (admin): the audit log of every mutation request, refused ones included,
//! newest first, in pages (`limit`, default 100, at most 1000; `before`, the last id seen) and
//! optionally of one key (`key_id`).

use axum::{
    Json, Router,
    extract::{Query, State, rejection::QueryRejection},
    routing::get,
};
use blockfill_activities::store::audit::{self, AuditEntry};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{ApiContext, ApiError, ErrorBody, params::Text};

pub(super) fn router() -> Router<ApiContext> {
    Router::new().route("/v1/audit", get(list))
}

/// An audit row as the API shows it.
pub type AuditView = AuditEntry;

/// Query of `GET /v1/audit`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct AuditQuery {
    /// Most rows, 1..=1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// Only rows older than this id (the last id of the previous page).
    before: Option<i64>,
    /// Only this key's requests.
    #[param(value_type = Option<String>)]
    key_id: Option<Text>,
}

#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "access",
    params(AuditQuery),
    responses(
        (status = 200, description = "Mutation requests, refused ones included, newest first", body = Vec<AuditView>, example = json!([{"id": 7, "at": "2026-12-03T10:00:00Z", "key_id": "bfk_3f2a9c1d4e5b", "auth": "key", "role": "operator", "method": "POST", "route": "/v1/backfills/{id}/pause", "path": "/v1/backfills/0193c1d2-7a4e-7c3b-9a1e-3f2b8c4d5e6f/pause", "summary": "", "status": 200, "result": "ok", "client_address": "10.0.0.5"}])),
        (status = 400, description = "A query parameter is invalid", body = ErrorBody, example = json!(super::openapi::examples::error("bad_request", "limit must be between 1 and 1000"))),
    ),
)]
pub(super) async fn list(
    State(ctx): State<ApiContext>,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<Vec<AuditView>>, ApiError> {
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1_000).contains(&limit) {
        return Err(ApiError::BadRequest(
            "limit must be between 1 and 1000".into(),
        ));
    }
    let key_id = query.key_id.map(Text::into_string);
    Ok(Json(
        audit::page(&ctx.app.pool, limit, query.before, key_id.as_deref()).await?,
    ))
}
