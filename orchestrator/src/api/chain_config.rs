//! `GET /v1/chains/{name}/config`: a chain's configuration as stored, RPC URLs raw (with any
//! API key they carry). Every other answer shows URLs redacted; this one route is for admins
//! (the access table requires `admin`), for copying or rotating a provider's key.

use axum::{Json, Router, extract::State, routing::get};
use blockfill_activities::store::chains;
use serde::{Deserialize, Serialize};

use super::{
    ApiContext, ApiError,
    params::{PathParam, Text},
};

pub(super) fn router() -> Router<ApiContext> {
    Router::new().route("/v1/chains/{name}/config", get(show))
}

/// A chain's stored configuration, secrets included.
#[derive(Debug, Serialize, Deserialize)]
pub struct ChainConfigView {
    /// The chain.
    pub chain: String,
    /// `rpc_urls` exactly as registered or last changed: each entry a URL or
    /// `{url, rps?, max_concurrency?}`, unredacted.
    pub rpc_urls: serde_json::Value,
}

async fn show(
    State(ctx): State<ApiContext>,
    PathParam(name): PathParam<Text>,
) -> Result<Json<ChainConfigView>, ApiError> {
    let chain = chains::find(&ctx.app.db, name.as_str())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no chain named {name}")))?;
    tracing::info!(target: "blockfill::api", chain = %chain.name, "raw chain configuration read");
    Ok(Json(ChainConfigView {
        chain: chain.name,
        rpc_urls: chain.rpc_urls,
    }))
}
