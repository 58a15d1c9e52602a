//! The leader's fleet loop: every `--fleet-interval`, sizes every chain's fleet (which sets the
//! gauges `blockfill_fleet_desired_workers{chain}`, `blockfill_fleet_running_workers{chain}` and
//! `blockfill_backlog_blocks{chain}` whether or not anyone asks the API) and, with
//! `--supervise-workers`, hands each size to the local [`Supervisor`]. The same pass publishes
//! each chain's live lag (`blockfill_live_lag_blocks{chain}`) and the depth of every queue
//! (`blockfill_queue_depth{queue, state}`).

use std::sync::Arc;

use blockfill_activities::{
    ChainName, Lane,
    queue::JobQueue,
    store::{
        chains, status,
        workers::{self, STALE_AFTER},
    },
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
        publish_lag(ctx, &chain).await?;
        if let Ok(name) = ChainName::parse(&chain.name) {
            for lane in Lane::ALL {
                publish_depth(&ctx.queues.get(lane, &name)).await;
            }
        }
    }
    publish_depth(&ctx.scheduler).await;
    Ok(())
}

/// `blockfill_live_lag_blocks{chain}`: blocks between the safe head and the highest block
/// indexed (absent until the head is known).
async fn publish_lag(
    ctx: &AppContext,
    chain: &blockfill_activities::entity::chains::Model,
) -> anyhow::Result<()> {
    let Some(head) = chain.head_block else {
        return Ok(());
    };
    let safe_head = (head - chain.confirmations).max(0);
    let last_indexed = status::last_indexed(&ctx.pool, &chain.name).await?;
    let lag = (safe_head - last_indexed.unwrap_or(chain.start_block - 1)).max(0);
    metrics::gauge!("blockfill_live_lag_blocks", "chain" => chain.name.clone()).set(lag as f64);
    Ok(())
}

/// `blockfill_queue_depth{queue, state}` of one queue; a Redis error leaves the last values.
async fn publish_depth<T>(queue: &JobQueue<T>)
where
    T: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + Unpin + 'static,
{
    match queue.depth().await {
        Ok(depth) => {
            for (state, jobs) in [
                ("active", depth.active),
                ("scheduled", depth.scheduled),
                ("inflight", depth.inflight),
                ("dead", depth.dead),
            ] {
                metrics::gauge!("blockfill_queue_depth", "queue" => queue.name().to_owned(), "state" => state)
                    .set(jobs as f64);
            }
        }
        Err(e) => {
            tracing::debug!(target: "blockfill::fleet", queue = queue.name(), error = %e, "queue depth unavailable");
        }
    }
}
