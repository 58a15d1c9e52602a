//! `GET /v1/chains/{name}/reorgs?limit=`: detected reorgs, newest first.

use axum::{
    Json, Router,
    extract::{Query, State, rejection::QueryRejection},
    routing::get,
};
use blockfill_activities::store::{chains, reorg_log};
use serde::Deserialize;

use super::{
    ApiContext, ApiError,
    params::{PathParam, Text},
};

pub(super) fn router() -> Router<ApiContext> {
    Router::new().route("/v1/chains/{name}/reorgs", get(list))
}

/// A detected reorg.
pub use blockfill_activities::store::reorg_log::ReorgRecord as ReorgView;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<i64>,
}

async fn list(
    State(ctx): State<ApiContext>,
    PathParam(name): PathParam<Text>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Vec<ReorgView>>, ApiError> {
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=1_000).contains(&limit) {
        return Err(ApiError::BadRequest(
            "limit must be between 1 and 1000".into(),
        ));
    }
    if !chains::exists(&ctx.app.pool, name.as_str()).await? {
        return Err(ApiError::NotFound(format!("no chain named {name}")));
    }
    let reorgs = reorg_log::recent(&ctx.app.pool, name.as_str(), limit).await?;
    Ok(Json(reorgs))
}
