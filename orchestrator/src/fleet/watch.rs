//! The leader's fleet loop: every `--fleet-interval`, sizes every chain's fleet (which sets the
//! gauge `blockfill_fleet_desired_workers{chain}` whether or not anyone asks the API) and, with
//! `--supervise-workers`, hands each size to the local [`Supervisor`].

use std::sync::Arc;

use blockfill_activities::store::{
    chains,
    workers::{self, STALE_AFTER},
};

use super::{Supervisor, size};
use crate::context::AppContext;

/// Runs until the leader term ends (`ctx.shutdown`).
pub async fn run(ctx: AppContext, supervisor: Option<Arc<Supervisor>>) {
    let mut ticker = tokio::time::interval(ctx.settings.fleet.fleet_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if let Err(e) = pass(&ctx, supervisor.as_deref()).await {
            tracing::warn!(target: "blockfill::fleet", error = %e, "sizing the fleet failed; retrying next interval");
        }
    }
}

/// Sizes every chain once (and resizes its supervised workers).
async fn pass(ctx: &AppContext, supervisor: Option<&Supervisor>) -> anyhow::Result<()> {
    let fresh = workers::fresh(&ctx.pool, STALE_AFTER).await?;
    for chain in chains::all(&ctx.db).await? {
        let view = size::measure(
            &ctx.pool,
            &chain,
            &fresh,
            ctx.settings.fleet.fleet_target_drain,
            None,
        )
        .await?;
        if let Some(supervisor) = supervisor {
            supervisor.resize(&view, &fresh);
        }
    }
    Ok(())
}
