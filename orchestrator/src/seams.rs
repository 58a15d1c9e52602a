//! The seam check: reorgs that no write noticed (deeper than the confirmation depth, or between
//! two batches written at different times) are found by checking hash continuity of the recent
//! stored blocks and comparing the stored tip with the node; they are repaired like any reorg
//! (unwind to the common ancestor) and the unwound range is backfilled again.

use blockfill_activities::{
    BlockRange, ChainName, SourceRegistry, entity::chains, reorg::repair_reorg, source::SourceError,
};
use sea_orm::{EntityTrait, sqlx};

use crate::scheduler::{SchedulerContext, SchedulerError, create_backfill};

/// Stored blocks whose parent links are checked on every pass.
const CONTINUITY_WINDOW: i64 = 10_000;
/// Stored tip blocks compared with the node on every pass.
const TIP_WINDOW: u64 = 64;

/// One pass over every chain. Returns how many reorgs were repaired.
pub async fn check_seams(
    ctx: &SchedulerContext,
    sources: &SourceRegistry,
) -> Result<usize, SchedulerError> {
    let mut repaired = 0;
    for chain in chains::Entity::find().all(&ctx.db).await? {
        let Ok(name) = ChainName::parse(&chain.name) else {
            continue;
        };
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
    ctx: &SchedulerContext,
    sources: &SourceRegistry,
    chain: &chains::Model,
    name: &ChainName,
) -> anyhow::Result<bool> {
    let (top,): (Option<i64>,) = sqlx::query_as("SELECT MAX(number) FROM blocks WHERE chain = $1")
        .bind(name.as_str())
        .fetch_one(&ctx.pool)
        .await?;
    let Some(top) = top else { return Ok(false) };
    let broken_link: Option<(i64,)> = sqlx::query_as(
        "SELECT b.number FROM blocks b JOIN blocks p ON p.chain = b.chain AND p.number = b.number - 1 \
         WHERE b.chain = $1 AND b.number > $2 AND b.parent_hash <> p.hash ORDER BY b.number LIMIT 1",
    )
    .bind(name.as_str())
    .bind(top - CONTINUITY_WINDOW)
    .fetch_optional(&ctx.pool)
    .await?;
    let source = sources.get(name).await?;
    let suspect = match broken_link {
        Some((n,)) => Some(n as u64),
        None => {
            let top = top as u64;
            let window = BlockRange {
                from: top.saturating_sub(TIP_WINDOW - 1),
                to: top,
            };
            let stored: Vec<(i64, String)> = sqlx::query_as(
                "SELECT number, hash FROM blocks WHERE chain = $1 AND number BETWEEN $2 AND $3 ORDER BY number",
            )
            .bind(name.as_str())
            .bind(window.from as i64)
            .bind(window.to as i64)
            .fetch_all(&ctx.pool)
            .await?;
            match source.block_hashes(window).await {
                Ok(node) => stored
                    .iter()
                    .find(|(n, h)| node.iter().any(|(m, g)| *m == *n as u64 && g != h))
                    .map(|(n, _)| *n as u64),
                // The node no longer has our tip: it rolled back.
                Err(SourceError::NotYetAvailable { block, .. }) => Some(block),
                Err(e) => return Err(e.into()),
            }
        }
    };
    let Some(suspect) = suspect else {
        return Ok(false);
    };
    tracing::warn!(target: "blockfill::seams", chain = %name, suspect, "stored blocks disagree with the node");
    let repair = repair_reorg(&ctx.pool, source.as_ref(), name, suspect, "seam").await?;
    if let Some(range) = repair.reindex {
        let safe_head = chain
            .head_block
            .map(|h| (h - chain.confirmations).max(0) as u64);
        let to = safe_head.map_or(range.to, |s| s.max(range.to).min(range.to + 10_000));
        let id = create_backfill(ctx, name, "range", range.from, to).await?;
        tracing::info!(target: "blockfill::seams", chain = %name, %id, from = range.from, to, "re-indexing after a reorg");
    }
    Ok(true)
}
