//! `GET /v1/chains/{name}/fleet[?finish_by=RFC 3339]`: how many workers serve the chain, how
//! many it wants and why ([`crate::sizing`]), its backlog, the measured per-worker rate and the
//! ETA; `finish_by` adds how many workers would finish the backlog by then. Sets the gauge
//! `blockfill_fleet_desired_workers{chain}`.
//!
//! `GET /v1/fleet/supervisor`: this orchestrator's local supervisor (`--supervise-workers`): its
//! workers by chain and its recent starts, stops and exits.

use std::collections::BTreeMap;

use axum::{
    Json, Router,
    extract::{Query, State, rejection::QueryRejection},
    routing::get,
};
use blockfill_activities::store::{
    chains,
    workers::{self, STALE_AFTER},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    ApiContext, ErrorBody,
    error::ApiError,
    openapi::examples,
    params::{PathParam, Text},
};
use crate::fleet::{FleetEvent, FleetView, size, supervisor::SupervisedChain};

pub(super) fn router() -> Router<ApiContext> {
    Router::new()
        .route("/v1/chains/{name}/fleet", get(show))
        .route("/v1/fleet/supervisor", get(supervisor))
}

/// This orchestrator's local supervisor: whether it runs one, its workers by chain, and what it
/// did (oldest first).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct SupervisorView {
    /// Whether this orchestrator supervises workers (`--supervise-workers`).
    enabled: bool,
    /// Its workers, by chain.
    chains: BTreeMap<String, SupervisedChain>,
    /// Its recent starts, stops and exits, oldest first.
    events: Vec<FleetEvent>,
}

/// This orchestrator's local worker supervisor.
#[utoipa::path(
    get,
    path = "/v1/fleet/supervisor",
    tag = "fleet",
    responses((status = 200, description = "The supervisor", body = SupervisorView, example = json!(examples::supervisor()))),
)]
pub(super) async fn supervisor(State(ctx): State<ApiContext>) -> Json<SupervisorView> {
    Json(match &ctx.supervisor {
        Some(supervisor) => SupervisorView {
            enabled: true,
            chains: supervisor.chains(),
            events: supervisor.events(),
        },
        None => SupervisorView {
            enabled: false,
            chains: BTreeMap::new(),
            events: Vec::new(),
        },
    })
}

/// Query of `GET /v1/chains/{name}/fleet`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct FleetQuery {
    /// When the backlog should be indexed by (RFC 3339): adds `workers_to_finish_by`.
    #[param(value_type = Option<String>, example = "2026-12-31T00:00:00Z")]
    finish_by: Option<Text>,
}

/// How many workers serve a chain, how many it wants and why.
#[utoipa::path(
    get,
    path = "/v1/chains/{name}/fleet",
    tag = "fleet",
    params(("name" = String, Path, description = "Chain name", example = "devnet"), FleetQuery),
    responses(
        (status = 200, description = "The chain's fleet", body = FleetView, example = json!(examples::fleet())),
        (status = 400, description = "A parameter cannot be read", body = ErrorBody, example = json!(examples::error("bad_request", "Failed to deserialize query string: unknown field `x`"))),
        (status = 404, description = "No such chain", body = ErrorBody, example = json!(examples::error("not_found", "chain mainnet is not registered"))),
        (status = 422, description = "`finish_by` is not an RFC 3339 time", body = ErrorBody, example = json!(examples::error("unprocessable", "finish_by must be an RFC 3339 time (2026-12-31T00:00:00Z): input contains invalid characters"))),
    ),
)]
pub(super) async fn show(
    State(ctx): State<ApiContext>,
    PathParam(name): PathParam<Text>,
    query: Result<Query<FleetQuery>, QueryRejection>,
) -> Result<Json<FleetView>, ApiError> {
    let Query(query) = query?;
    let finish_by = query
        .finish_by
        .as_ref()
        .map(|raw| {
            DateTime::parse_from_rfc3339(raw.as_str())
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    ApiError::Unprocessable(format!(
                        "finish_by must be an RFC 3339 time (2026-12-31T00:00:00Z): {e}"
                    ))
                })
        })
        .transpose()?;
    // Cached like the status answer: a dashboard wall asking a thousand times a second costs
    // the database a few sizings a second.
    let key = format!("{}?finish_by={:?}", name.as_str(), finish_by);
    let view = ctx
        .status_cache
        .fleet
        .get_or_compute(&key, async || {
            let chain = chains::find(&ctx.app.db, name.as_str())
                .await?
                .ok_or_else(|| {
                    ApiError::NotFound(format!("chain {} is not registered", name.as_str()))
                })?;
            let fresh = workers::fresh(&ctx.app.pool, STALE_AFTER).await?;
            Ok::<_, ApiError>(
                size::measure(
                    &ctx.app.pool,
                    &chain,
                    &fresh,
                    ctx.app.settings.fleet.fleet_target_drain,
                    finish_by,
                )
                .await?,
            )
        })
        .await?;
    Ok(Json(FleetView::clone(&view)))
}
