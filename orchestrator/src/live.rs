//! The live lane: on every head the tracker reads, the leader hands the new blocks up to the live
//! target (`head - max(confirmations, 1)`: a head may be announced before its block is served) to
//! their own queue, which workers serve with reserved capacity, so a full backfill never delays
//! them. Live batches belong to a per-chain `live` backfill. A live lane far behind (after
//! downtime) jumps to the tip and leaves the skipped blocks as a historical gap for backfill.
//!
//! The live queue is bounded like the backfill queue: live batches are planned as rows first and
//! pushed through the gate; when the head runs further ahead than the bound (a fleet outage), the
//! surplus waits planned in PostgreSQL and [`feed_live`] pushes it as room frees. A chain whose
//! live sync is halted (a reorg deeper than its limit) is left alone until an operator resumes it.

use blockfill_activities::{
    BlockRange, ChainName,
    entity::chains,
    plan::{Lane, feed_planned},
    ranges::aligned_batches,
    store::batches,
    store::live_lane,
};
use uuid::Uuid;

use crate::{context::AppContext, scheduler::SchedulerError};

/// Most blocks the live lane catches up at once; further behind, it jumps to the tip.
pub const LIVE_MAX_CATCH_UP: u64 = 1_000;

/// The highest block live sync indexes for a chain whose node reports `head`.
pub fn live_target(head: u64, confirmations: u64) -> u64 {
    head.saturating_sub(confirmations.max(1))
}

/// Plans the live batches from the chain's live cursor up to its live target, as rows; the head
/// tracker pushes them with [`feed_live`] after every poll of all chains.
/// Returns how many blocks were handed to the live lane.
pub async fn advance_live(
    ctx: &AppContext,
    chain: &chains::Model,
    head: u64,
) -> Result<u64, SchedulerError> {
    let Ok(name) = ChainName::parse(&chain.name) else {
        return Ok(0);
    };
    if !chain.live_sync || chain.live_halted {
        return Ok(0);
    }
    let target = live_target(head, chain.confirmations.max(0) as u64);
    if target < chain.start_block.max(0) as u64 {
        return Ok(0);
    }
    let cursor = chain.live_cursor.map(|c| c.max(-1));
    let from = match cursor {
        // Live sync starts at the tip; history is backfill's job.
        None => target,
        Some(c) if (c + 1) as u64 > target => return Ok(0),
        Some(c) => ((c + 1) as u64).max(target.saturating_sub(LIVE_MAX_CATCH_UP - 1)),
    };
    let range = BlockRange { from, to: target };
    let backfill_id = live_backfill(ctx, chain, from).await?;
    let candidates: Vec<BlockRange> =
        aligned_batches(range, chain.batch_size.max(1) as u64).collect();
    let mut tx = ctx.fenced_tx().await?;
    let planned = batches::plan(&mut tx, &name, backfill_id, Lane::Live, &candidates, true).await?;
    live_lane::advance_cursor(&mut tx, name.as_str(), backfill_id, target as i64).await?;
    tx.commit().await?;
    tracing::debug!(target: "blockfill::live", chain = %name, planned = planned.len(), "live batches planned");
    metrics::gauge!("blockfill_live_cursor", "chain" => name.to_string()).set(target as f64);
    Ok(range.len())
}

/// Pushes planned live batches of every chain through the gate, lowest first, as the live
/// queue's bound allows. Returns how many it pushed.
pub async fn feed_live(ctx: &AppContext) -> Result<usize, SchedulerError> {
    Ok(feed_planned(&ctx.pool, &ctx.queues, Lane::Live, None).await?)
}

/// The chain's `live` backfill, created on first use.
async fn live_backfill(
    ctx: &AppContext,
    chain: &chains::Model,
    from: u64,
) -> Result<Uuid, SchedulerError> {
    if let Some(id) = chain.live_backfill_id {
        return Ok(id);
    }
    let id = Uuid::now_v7();
    let mut tx = ctx.fenced_tx().await?;
    live_lane::create_live_backfill(&mut tx, &chain.name, id, from as i64).await?;
    tx.commit().await?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::live_target;

    #[test]
    fn live_target_keeps_the_confirmation_depth_and_never_the_unserved_head() {
        assert_eq!(
            live_target(100, 0),
            99,
            "the head may be announced before it is served"
        );
        assert_eq!(live_target(100, 1), 99);
        assert_eq!(live_target(100, 12), 88);
        assert_eq!(live_target(5, 12), 0);
    }
}
