//! `GET /v1/chains/{name}/reorgs?limit=`: detected reorgs, newest first.

use axum::{
    Json, Router,
    extract::{Query, State, rejection::QueryRejection},
    routing::get,
};
use blockfill_activities::store::{chains, reorg_log};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{
    ApiContext, ApiError, ErrorBody,
    openapi::examples,
    params::{PathParam, Text},
};

pub(super) fn router() -> Router<ApiContext> {
    Router::new().route("/v1/chains/{name}/reorgs", get(list))
}

/// A detected reorg.
pub use blockfill_activities::store::reorg_log::ReorgRecord as ReorgView;

/// Query of `GET /v1/chains/{name}/reorgs`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ListQuery {
    /// Most reorgs, 1..=1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// A chain's detected reorgs, newest first.
#[utoipa::path(
    get,
    path = "/v1/chains/{name}/reorgs",
    tag = "chains",
    params(("name" = String, Path, description = "Chain name", example = "devnet"), ListQuery),
    responses(
        (status = 200, description = "The reorgs, newest first", body = Vec<ReorgView>, example = json!([examples::reorg()])),
        (status = 400, description = "A parameter is invalid", body = ErrorBody, example = json!(examples::error("bad_request", "limit must be between 1 and 1000"))),
        (status = 404, description = "No such chain", body = ErrorBody, example = json!(examples::error("not_found", "no chain named mainnet"))),
    ),
)]
pub(super) async fn list(
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
