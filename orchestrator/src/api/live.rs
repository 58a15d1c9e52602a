//! `POST /v1/chains/{name}/live/resume`: an operator resumes live sync halted by a reorg deeper
//! than the chain's limit, optionally raising the limit first (when the node is right and the
//! reorg real). The next seam check then repairs the reorg within the new limit; with the old
//! limit it halts again.

use axum::{Json, Router, body::Bytes, extract::State, routing::post};
use blockfill_activities::store::chains;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{
    ApiContext, ApiError, ErrorBody,
    chains::ChainView,
    openapi::examples,
    params::{PathParam, Text},
};
use crate::api::chains::MAX_REORG_DEPTH_LIMIT;

pub(super) fn router() -> Router<ApiContext> {
    Router::new().route("/v1/chains/{name}/live/resume", post(resume))
}

/// Body of `POST /v1/chains/{name}/live/resume` (may be empty).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ResumeLive {
    /// A new reorg depth limit for the chain.
    #[schema(minimum = 1, maximum = 100_000)]
    max_reorg_depth: Option<u64>,
}

/// Resumes live sync halted by a reorg deeper than the chain's limit, optionally raising the
/// limit first.
#[utoipa::path(
    post,
    path = "/v1/chains/{name}/live/resume",
    tag = "chains",
    params(("name" = String, Path, description = "Chain name", example = "devnet")),
    request_body(content = Option<ResumeLive>, description = "Optional; an empty body keeps the limit", example = json!({"max_reorg_depth": 256})),
    responses(
        (status = 200, description = "Resumed; the updated chain", body = ChainView, example = json!(examples::chain())),
        (status = 400, description = "The name cannot be read", body = ErrorBody, example = json!(examples::error("bad_request", "\"a\\0\" contains a NUL character"))),
        (status = 404, description = "No such chain", body = ErrorBody, example = json!(examples::error("not_found", "no chain named mainnet"))),
        (status = 422, description = "The body is invalid", body = ErrorBody, example = json!(examples::error("unprocessable", "max_reorg_depth must be between 1 and 100000"))),
    ),
)]
pub(super) async fn resume(
    State(ctx): State<ApiContext>,
    PathParam(name): PathParam<Text>,
    body: Bytes,
) -> Result<Json<ChainView>, ApiError> {
    let name = name.into_string();
    let body: ResumeLive = if body.iter().all(u8::is_ascii_whitespace) {
        ResumeLive::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::Unprocessable(format!("invalid body: {e}")))?
    };
    if body
        .max_reorg_depth
        .is_some_and(|d| !(1..=MAX_REORG_DEPTH_LIMIT).contains(&d))
    {
        return Err(ApiError::Unprocessable(format!(
            "max_reorg_depth must be between 1 and {MAX_REORG_DEPTH_LIMIT}"
        )));
    }
    let resumed =
        chains::resume_live_sync(&ctx.app.pool, &name, body.max_reorg_depth.map(|d| d as i64))
            .await?;
    if !resumed {
        return Err(ApiError::NotFound(format!("no chain named {name}")));
    }
    metrics::gauge!("blockfill_live_halted", "chain" => name.clone()).set(0.0);
    tracing::warn!(target: "blockfill::api", chain = %name, max_reorg_depth = ?body.max_reorg_depth, "live sync resumed by an operator");
    let row = chains::find(&ctx.app.db, &name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no chain named {name}")))?;
    Ok(Json(row.into()))
}
