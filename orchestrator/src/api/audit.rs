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

use super::{ApiContext, ApiError, params::Text};

pub(super) fn router() -> Router<ApiContext> {
    Router::new().route("/v1/audit", get(list))
}

/// An audit row as the API shows it.
pub type AuditView = AuditEntry;

#[derive(Debug, Deserialize)]
struct AuditQuery {
    limit: Option<i64>,
    before: Option<i64>,
    key_id: Option<Text>,
}

async fn list(
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
