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

use super::{
    ApiContext,
    error::ApiError,
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
#[derive(Debug, Serialize)]
struct SupervisorView {
    enabled: bool,
    chains: BTreeMap<String, SupervisedChain>,
    events: Vec<FleetEvent>,
}

async fn supervisor(State(ctx): State<ApiContext>) -> Json<SupervisorView> {
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetQuery {
    /// When the backlog should be indexed by (RFC 3339).
    finish_by: Option<Text>,
}

async fn show(
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
    let chain = chains::find(&ctx.app.db, name.as_str())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("chain {} is not registered", name.as_str())))?;
    let fresh = workers::fresh(&ctx.app.pool, STALE_AFTER).await?;
    let view = size::measure(
        &ctx.app.pool,
        &chain,
        &fresh,
        ctx.app.settings.fleet.fleet_target_drain,
        finish_by,
    )
    .await?;
    Ok(Json(view))
}
