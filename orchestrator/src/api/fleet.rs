//! `GET /v1/chains/{name}/fleet[?finish_by=RFC 3339]`: how many workers serve the chain, how
//! many it wants and why ([`crate::sizing`]), its backlog, the measured per-worker rate and the
//! ETA; `finish_by` adds how many workers would finish the backlog by then. Sets the gauge
//! `blockfill_fleet_desired_workers{chain}`.

use axum::{
    Json, Router,
    extract::{Query, State, rejection::QueryRejection},
    routing::get,
};
use blockfill_activities::store::{
    chains, status,
    workers::{self, STALE_AFTER},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    ApiContext,
    error::ApiError,
    params::{PathParam, Text},
};
use crate::sizing::{self, FleetInputs};

pub(super) fn router() -> Router<ApiContext> {
    Router::new().route("/v1/chains/{name}/fleet", get(show))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetQuery {
    /// When the backlog should be indexed by (RFC 3339).
    finish_by: Option<Text>,
}

/// A chain's fleet: its size, what it wants, and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FleetView {
    /// Chain name.
    pub chain: String,
    /// Workers serving the chain (fresh reports).
    pub running: u32,
    /// Workers the chain wants.
    pub desired: u32,
    /// The chain's lower bound.
    pub min_workers: u32,
    /// The chain's upper bound.
    pub max_workers: u32,
    /// Why `desired` is what it is (`no_backlog`, `measuring`, `backlog`, `hysteresis`,
    /// `at_maximum`, `at_minimum`).
    pub reason: String,
    /// Blocks still to index.
    pub backlog_blocks: u64,
    /// Blocks per second one worker indexes, over the last 30 s (`null`: not measured).
    pub per_worker_blocks_per_second: Option<f64>,
    /// Seconds until the backlog is indexed by the running workers (`null`: unknown).
    pub eta_seconds: Option<f64>,
    /// With `finish_by`: workers that would index the backlog by then at the measured rate
    /// (`null`: no rate measured yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers_to_finish_by: Option<Option<u64>>,
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
    let pool = &ctx.app.pool;
    let running = workers::fresh(pool, STALE_AFTER)
        .await?
        .iter()
        .filter(|w| {
            w.report
                .chains
                .as_ref()
                .is_none_or(|served| served.contains(&chain.name))
        })
        .count() as u32;
    let backlog_blocks = workers::backlog_blocks(pool, &chain.name).await?;
    let chain_rate = status::recent_chain_work(pool, &chain.name)
        .await?
        .blocks_per_second();
    let per_worker = chain_rate
        .filter(|_| running > 0)
        .map(|rate| rate / f64::from(running));
    let min_workers = chain.min_workers.max(0) as u32;
    let max_workers = (chain.max_workers.max(0) as u32).max(min_workers);
    let (desired, reason) = sizing::desired_workers(FleetInputs {
        min_workers,
        max_workers,
        running,
        backlog_blocks,
        per_worker_blocks_per_second: per_worker,
    });
    metrics::gauge!("blockfill_fleet_desired_workers", "chain" => chain.name.clone())
        .set(f64::from(desired));
    let workers_to_finish_by = finish_by.map(|deadline| {
        let within = (deadline - Utc::now()).to_std().unwrap_or_default();
        sizing::workers_to_finish_within(backlog_blocks, within, per_worker)
    });
    Ok(Json(FleetView {
        chain: chain.name.clone(),
        running,
        desired,
        min_workers,
        max_workers,
        reason: reason.to_string(),
        backlog_blocks,
        per_worker_blocks_per_second: per_worker,
        eta_seconds: sizing::eta_seconds(backlog_blocks, running, per_worker),
        workers_to_finish_by,
    }))
}
