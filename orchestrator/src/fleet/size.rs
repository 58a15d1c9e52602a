//! One chain's fleet: workers serving it (fresh reports), its backlog, the measured per-worker
//! rate, and the size it wants ([`crate::sizing::desired_workers`]).

use std::time::Duration;

use blockfill_activities::{
    entity::chains,
    store::{
        status,
        workers::{self, WorkerRow},
    },
};
use chrono::{DateTime, Utc};
use sea_orm::sqlx::{self, PgPool};
use serde::{Deserialize, Serialize};

use crate::sizing::{self, FleetInputs};

/// A chain's fleet: its size, what it wants, and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
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
    #[schema(value_type = Option<u64>, required = false)]
    pub workers_to_finish_by: Option<Option<u64>>,
}

/// Whether `worker` serves `chain` (a worker without a chain list serves every chain).
pub fn serves(worker: &WorkerRow, chain: &str) -> bool {
    worker
        .report
        .chains
        .as_ref()
        .is_none_or(|served| served.iter().any(|c| c == chain))
}

/// Sizes `chain`'s fleet from `fresh` (the fresh worker reports), its backlog and recent work,
/// draining within `target_drain`; with `finish_by`, adds the capacity planner's answer.
pub async fn measure(
    pool: &PgPool,
    chain: &chains::Model,
    fresh: &[WorkerRow],
    target_drain: Duration,
    finish_by: Option<DateTime<Utc>>,
) -> Result<FleetView, sqlx::Error> {
    let running = fresh.iter().filter(|w| serves(w, &chain.name)).count() as u32;
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
        target_drain,
    });
    metrics::gauge!("blockfill_fleet_desired_workers", "chain" => chain.name.clone())
        .set(f64::from(desired));
    metrics::gauge!("blockfill_fleet_running_workers", "chain" => chain.name.clone())
        .set(f64::from(running));
    metrics::gauge!("blockfill_backlog_blocks", "chain" => chain.name.clone())
        .set(backlog_blocks as f64);
    let workers_to_finish_by = finish_by.map(|deadline| {
        let within = (deadline - Utc::now()).to_std().unwrap_or_default();
        sizing::workers_to_finish_within(backlog_blocks, within, per_worker)
    });
    Ok(FleetView {
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
    })
}
