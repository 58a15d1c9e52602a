//! `GET /v1/chains/{name}/config`: a chain's configuration as stored, RPC URLs raw (with any
//! API key they carry). Every other answer shows URLs redacted; this one route is for admins
//! (the access table requires `admin`), for copying or rotating a provider's key.

use axum::{Json, Router, extract::State, routing::get};
use blockfill_activities::store::chains;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    ApiContext, ApiError, ErrorBody,
    params::{PathParam, Text},
};

pub(super) fn router() -> Router<ApiContext> {
    Router::new().route("/v1/chains/{name}/config", get(show))
}

/// A chain's stored configuration, secrets included.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChainConfigView {
    /// The chain.
    pub chain: String,
    /// `rpc_urls` exactly as registered or last changed: each entry a URL or
    /// `{url, rps?, max_concurrency?}`, unredacted.
    #[schema(value_type = Vec<super::chains::EndpointEntry>)]
    pub rpc_urls: serde_json::Value,
}

#[utoipa::path(
    get,
    path = "/v1/chains/{name}/config",
    tag = "chains",
    params(("name" = String, Path, description = "Chain name", example = "devnet")),
    responses(
        (status = 200, description = "The chain's stored configuration, RPC URLs unredacted (admins only)", body = ChainConfigView, example = json!({"chain": "mainnet", "rpc_urls": ["https://eth-mainnet.example/v2/KEY", {"url": "https://rpc.example/?apikey=KEY", "rps": 50}]})),
        (status = 404, description = "No such chain", body = ErrorBody, example = json!(super::openapi::examples::error("not_found", "no chain named mainnet"))),
    ),
)]
pub(super) async fn show(
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
