//! The seam check: reorgs that no write noticed (deeper than the confirmation depth, or between
//! two batches written at different times) are found by checking hash continuity of the recent
//! stored blocks and comparing the stored tip with the node; they are repaired like any reorg
//! (unwind to the common ancestor, in the same transaction as the backfill that re-indexes the
//! unwound range up to the safe head). Blocks the node does not have (yet) are compared later,
//! never taken for a reorg. Chains whose live sync is halted are skipped.

use blockfill_activities::{
    BlockRange, ChainName, ChainSource, SchedulerJob, SourceRegistry,
    entity::chains,
    plan::{Lane, feed_planned},
    reorg::{RepairRequest, repair_reorg},
    source::SourceError,
    store::{blocks, chains as chain_rows},
};

use crate::{context::AppContext, scheduler::SchedulerError};

/// Stored blocks whose parent links are checked on every pass.
const CONTINUITY_WINDOW: i64 = 10_000;
/// Stored tip blocks compared with the node on every pass.
const TIP_WINDOW: u64 = 64;

/// One pass over every chain. Returns how many reorgs were repaired.
pub async fn check_seams(
    ctx: &AppContext,
    sources: &SourceRegistry,
) -> Result<usize, SchedulerError> {
    let mut repaired = 0;
    for chain in chain_rows::all(&ctx.db).await? {
        let Ok(name) = ChainName::parse(&chain.name) else {
            continue;
        };
        if chain.live_halted {
            continue;
        }
        match check_chain(ctx, sources, &chain, &name).await {
            Ok(true) => repaired += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(target: "blockfill::seams", chain = %name, error = %e, "seam check failed")
            }
        }
    }
    Ok(repaired)
}

async fn check_chain(
    ctx: &AppContext,
    sources: &SourceRegistry,
    chain: &chains::Model,
    name: &ChainName,
) -> anyhow::Result<bool> {
    let Some(top) = blocks::tip(&ctx.pool, name.as_str()).await? else {
        return Ok(false);
    };
    let broken_link =
        blocks::first_broken_link(&ctx.pool, name.as_str(), top - CONTINUITY_WINDOW).await?;
    let source = sources.get(name).await?;
    let suspect = match broken_link {
        Some(n) => Some(n as u64),
        None => {
            let top = top as u64;
            let window = BlockRange {
                from: top.saturating_sub(TIP_WINDOW - 1),
                to: top,
            };
            let stored = blocks::hashes(
                &ctx.pool,
                name.as_str(),
                window.from as i64,
                window.to as i64,
            )
            .await?;
            let node = node_hashes_up_to_its_head(source.as_ref(), window).await?;
            stored
                .iter()
                .find(|(n, h)| node.iter().any(|(m, g)| *m == *n as u64 && g != h))
                .map(|(n, _)| *n as u64)
        }
    };
    let Some(suspect) = suspect else {
        return Ok(false);
    };
    tracing::warn!(target: "blockfill::seams", chain = %name, suspect, "stored blocks disagree with the node");
    let safe_head = chain
        .head_block
        .map(|h| (h - chain.confirmations).max(0) as u64);
    let repair = repair_reorg(
        &ctx.pool,
        source.as_ref(),
        RepairRequest {
            chain: name,
            suspect,
            detected_by: "seam",
            reindex_to: safe_head,
            term: ctx.term.as_ref(),
        },
    )
    .await?;
    if let (Some(range), Some(backfill_id)) = (repair.reindex, repair.backfill_id) {
        // The re-index is planned and durable; start it now rather than at the reconciler's
        // next pass.
        feed_planned(&ctx.pool, &ctx.queues, Lane::Backfill, Some(backfill_id)).await?;
        let job = SchedulerJob {
            backfill_id,
            generation: 0,
            trace_context: None,
        };
        ctx.scheduler.push(&job.task_id(), job, None).await?;
        tracing::info!(target: "blockfill::seams", chain = %name, %backfill_id, %range, "re-indexing after a reorg");
    }
    Ok(true)
}

/// The node's hashes of `window`, up to the highest block it has: a node that does not have the
/// newest stored blocks (yet) is compared on the blocks it has.
async fn node_hashes_up_to_its_head(
    source: &dyn ChainSource,
    window: BlockRange,
) -> Result<Vec<(u64, String)>, SourceError> {
    let mut to = window.to;
    loop {
        match source
            .block_hashes(BlockRange {
                from: window.from,
                to,
            })
            .await
        {
            Err(SourceError::NotYetAvailable { block, .. })
                if block > window.from && block <= to =>
            {
                to = block - 1;
            }
            Err(SourceError::NotYetAvailable { .. }) => return Ok(Vec::new()),
            other => return other,
        }
    }
}
