//! Reorg repair: when stored blocks and the node disagree, find the highest block on which they
//! still agree (the common ancestor), then in **one transaction** unwind everything stored above
//! it (blocks, transactions, logs, coverage), record the reorg, and plan the batches of a backfill
//! that re-indexes the unwound range: a crash at any point leaves either nothing done or planned
//! work, never a gap.
//!
//! A reorg deeper than the chain's `max_reorg_depth` (or one with no common ancestor within it)
//! is not unwound: live sync of the chain halts with the reason, for an operator to look at (a
//! misconfigured endpoint is far likelier than a deep reorg), and repairs are refused until the
//! operator resumes it.

use std::collections::HashMap;

use sea_orm::sqlx::{self, PgPool};
use serde_json::json;
use uuid::Uuid;

use crate::{
    fence::{self, FenceError, LeaderTerm},
    ranges::aligned_batches,
    source::{ChainSource, SourceError},
    store::{Lane, batches, blocks, chains, coverage, reorg_log, repair},
    types::{BlockRange, ChainName},
};

/// Blocks compared per request while looking for the common ancestor.
const SEARCH_WINDOW: u64 = 32;
/// Hashes kept in a reorg's record.
const RECORDED_HASHES: i64 = 64;
/// Most blocks a repair re-indexes beyond the unwound range (up to the safe head).
const MAX_REINDEX_EXTENSION: u64 = 10_000;

/// Why a reorg could not be repaired.
#[derive(Debug, thiserror::Error)]
pub enum ReorgError {
    /// The node could not be asked.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// PostgreSQL failed; nothing was unwound.
    #[error("unwinding a reorg failed, nothing was unwound: {0}")]
    Database(#[from] sqlx::Error),
    /// No common ancestor within the chain's reorg depth limit: live sync is halted.
    #[error(
        "chain {chain} disagrees with the node for more than max_reorg_depth {max_depth} blocks \
         below its stored tip {stored_top} (first disagreement at block {suspect}); nothing was \
         unwound and live sync is halted"
    )]
    TooDeep {
        /// The chain.
        chain: ChainName,
        /// Where the disagreement was seen.
        suspect: u64,
        /// The highest stored block.
        stored_top: u64,
        /// The chain's limit.
        max_depth: u64,
    },
    /// Live sync of the chain is halted: no repair until an operator resumes it.
    #[error("chain {chain}: live sync is halted ({reason}); no reorg is repaired until it resumes")]
    Halted {
        /// The chain.
        chain: ChainName,
        /// Why it halted.
        reason: String,
    },
    /// The chain is not registered.
    #[error("chain {0} is not registered")]
    UnknownChain(ChainName),
    /// A deposed leader's repair was refused.
    #[error(transparent)]
    Fenced(#[from] FenceError),
}

/// What to repair and how.
#[derive(Debug, Clone, Copy)]
pub struct RepairRequest<'a> {
    /// The chain.
    pub chain: &'a ChainName,
    /// A block where the stored and fetched chains disagree.
    pub suspect: u64,
    /// Who found it (`write`, `seam`), recorded with the reorg.
    pub detected_by: &'a str,
    /// Re-index at least up to this block (the seam check passes the safe head, so blocks the
    /// live lane could not write meanwhile are covered too); at most 10,000 above the unwound top.
    pub reindex_to: Option<u64>,
    /// The leader term the repair runs under, if any (fenced like every scheduler write).
    pub term: Option<&'a LeaderTerm>,
}

/// What a repair did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReorgRepair {
    /// Highest block on which the database and the node agree (`None`: none stored agrees).
    pub common_ancestor: Option<u64>,
    /// Blocks unwound above the ancestor (stored tip minus ancestor).
    pub depth: u64,
    /// The range planned for re-indexing: from above the ancestor to the old stored tip (or
    /// `reindex_to`).
    pub reindex: Option<BlockRange>,
    /// The backfill that re-indexes it (planned in the unwind's transaction).
    pub backfill_id: Option<Uuid>,
    /// Its batches that were new work (planned, not yet queued), lowest first.
    pub planned: Vec<BlockRange>,
}

/// The chain's repair settings.
struct ChainLimits {
    max_depth: u64,
    batch_size: u64,
}

async fn chain_limits(pool: &PgPool, chain: &ChainName) -> Result<ChainLimits, ReorgError> {
    let settings = chains::repair_settings(pool, chain.as_str())
        .await?
        .ok_or_else(|| ReorgError::UnknownChain(chain.clone()))?;
    if settings.live_halted {
        return Err(ReorgError::Halted {
            chain: chain.clone(),
            reason: settings.live_halted_reason.unwrap_or_default(),
        });
    }
    Ok(ChainLimits {
        max_depth: settings.max_reorg_depth.max(1) as u64,
        batch_size: settings.batch_size.max(1) as u64,
    })
}

/// Halts live sync of `chain` for an operator, with `reason`.
pub async fn halt_live_sync(
    pool: &PgPool,
    chain: &ChainName,
    reason: &str,
) -> Result<(), sqlx::Error> {
    chains::halt_live_sync(pool, chain.as_str(), reason).await?;
    tracing::error!(target: "blockfill::reorg", chain = %chain, reason, "live sync halted for an operator");
    metrics::gauge!("blockfill_live_halted", "chain" => chain.to_string()).set(1.0);
    Ok(())
}

/// Finds the common ancestor below `request.suspect` (a block where the stored and fetched
/// chains disagree); within the chain's depth limit, unwinds everything stored above it, records
/// the reorg and plans its re-index, in one transaction. Beyond the limit, halts live sync.
#[tracing::instrument(name = "repair_reorg", skip(pool, source, request), fields(chain = %request.chain, suspect = request.suspect))]
pub async fn repair_reorg(
    pool: &PgPool,
    source: &dyn ChainSource,
    request: RepairRequest<'_>,
) -> Result<ReorgRepair, ReorgError> {
    let RepairRequest { chain, suspect, .. } = request;
    let limits = chain_limits(pool, chain).await?;
    let (lowest, highest) = blocks::bounds(pool, chain.as_str()).await?;
    let floor = lowest.map_or(suspect, |l| l as u64);
    let stored_top = highest.map_or(suspect, |h| (h as u64).max(suspect));
    let too_deep = || ReorgError::TooDeep {
        chain: chain.clone(),
        suspect,
        stored_top,
        max_depth: limits.max_depth,
    };
    let mut ancestor: Option<u64> = None;
    let mut top = suspect.saturating_sub(1);
    while suspect > floor && top >= floor {
        if stored_top.saturating_sub(top) > limits.max_depth {
            break;
        }
        let low = top.saturating_sub(SEARCH_WINDOW - 1).max(floor);
        let window = BlockRange { from: low, to: top };
        let node: HashMap<u64, String> = source.block_hashes(window).await?.into_iter().collect();
        let stored: HashMap<u64, String> =
            blocks::hashes(pool, chain.as_str(), low as i64, top as i64)
                .await?
                .into_iter()
                .map(|(n, h)| (n as u64, h))
                .collect();
        ancestor = (low..=top)
            .rev()
            .find(|n| stored.get(n).is_some_and(|h| node.get(n) == Some(h)));
        if ancestor.is_some() || low == floor {
            break;
        }
        top = low - 1;
    }
    // Blocks that would be unwound: above the ancestor, or everything stored when none agrees.
    let unwound = match ancestor {
        Some(a) => stored_top.saturating_sub(a),
        None if highest.is_some() => stored_top + 1 - floor.min(stored_top),
        None => 0,
    };
    if unwound > limits.max_depth {
        let error = too_deep();
        halt_live_sync(pool, chain, &error.to_string()).await?;
        return Err(error);
    }
    unwind(pool, source, request, ancestor, floor, limits.batch_size).await
}

async fn unwind(
    pool: &PgPool,
    source: &dyn ChainSource,
    request: RepairRequest<'_>,
    ancestor: Option<u64>,
    floor: u64,
    batch_size: u64,
) -> Result<ReorgRepair, ReorgError> {
    let RepairRequest {
        chain, detected_by, ..
    } = request;
    let above = ancestor.map_or(floor as i64 - 1, |a| a as i64);
    let stored_top = blocks::tip(pool, chain.as_str()).await?;
    let Some(stored_top) = stored_top.filter(|t| *t > above) else {
        return Ok(ReorgRepair {
            common_ancestor: ancestor,
            depth: 0,
            reindex: None,
            backfill_id: None,
            planned: Vec::new(),
        });
    };
    // The reorg's depth: up to the highest stored block the node does not have (blocks of the new
    // branch that concurrent batches already wrote are unwound and re-indexed too, but they are
    // not part of the reorg).
    let node = node_hashes(source, (above + 1) as u64, stored_top as u64).await?;
    let stored = blocks::hashes_above(pool, chain.as_str(), above).await?;
    let last_replaced = stored
        .iter()
        .rev()
        .find(|(n, h)| node.get(&(*n as u64)) != Some(h))
        .map_or(above, |(n, _)| *n);
    let recorded_top = last_replaced.min(above + RECORDED_HASHES);
    let new_hashes: Vec<(u64, String)> = ((above + 1)..=recorded_top)
        .filter_map(|n| node.get(&(n as u64)).map(|h| (n as u64, h.clone())))
        .collect();
    let mut tx = pool.begin().await?;
    fence::confirm(request.term, &mut tx).await?;
    coverage::lock(&mut tx, chain.as_str()).await?;
    // Batches may have committed above the tip read before the lock; they are unwound too, so
    // the range to re-index ends at the tip under the lock.
    let locked_top = blocks::tip(&mut *tx, chain.as_str()).await?;
    let unwound_top = locked_top.unwrap_or(stored_top).max(stored_top);
    let old_hashes = blocks::hashes(&mut *tx, chain.as_str(), above + 1, recorded_top).await?;
    repair::unwind_above(&mut tx, chain.as_str(), above).await?;
    let depth = (last_replaced - above).max(0) as u64;
    let to_json = |hashes: &[(u64, String)]| {
        json!(
            hashes
                .iter()
                .map(|(n, h)| json!({"number": n, "hash": h}))
                .collect::<Vec<_>>()
        )
    };
    let old: Vec<(u64, String)> = old_hashes.into_iter().map(|(n, h)| (n as u64, h)).collect();
    reorg_log::record(
        &mut tx,
        reorg_log::NewReorg {
            chain: chain.as_str(),
            common_ancestor: above,
            depth: depth as i32,
            old_hashes: to_json(&old),
            new_hashes: to_json(&new_hashes),
            detected_by,
        },
    )
    .await?;
    let unwound_top = unwound_top as u64;
    let reindex = BlockRange {
        from: (above + 1) as u64,
        to: request.reindex_to.map_or(unwound_top, |to| {
            to.clamp(unwound_top, unwound_top + MAX_REINDEX_EXTENSION)
        }),
    };
    let (backfill_id, planned) = plan_reindex(&mut tx, chain, reindex, batch_size).await?;
    tx.commit().await?;
    tracing::warn!(target: "blockfill::reorg", chain = %chain, common_ancestor = above, depth, detected_by, %backfill_id, reindex = %reindex, "reorg: unwound blocks above the common ancestor and planned their re-index");
    metrics::counter!("blockfill_reorgs_total", "chain" => chain.to_string()).increment(1);
    Ok(ReorgRepair {
        common_ancestor: ancestor,
        depth,
        reindex: Some(reindex),
        backfill_id: Some(backfill_id),
        planned,
    })
}

/// Plans, in the unwind's transaction, a range backfill of `range` with all its batches: its
/// scheduler checkpoint is past the end (nothing left to plan) and dated in the past, so the
/// leader's reconciler resumes it at once; until then its batches wait as planned rows.
async fn plan_reindex(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    chain: &ChainName,
    range: BlockRange,
    batch_size: u64,
) -> Result<(Uuid, Vec<BlockRange>), sqlx::Error> {
    let id = Uuid::now_v7();
    repair::insert_reindex_backfill(tx, id, chain.as_str(), range.from as i64, range.to as i64)
        .await?;
    let batches: Vec<BlockRange> = aligned_batches(range, batch_size).collect();
    let planned = batches::plan(tx, chain, id, Lane::Backfill, &batches, false).await?;
    let blocks: u64 = planned.iter().map(|(r, _)| r.len()).sum();
    repair::set_planned_totals(tx, id, planned.len() as i64, blocks as i64).await?;
    Ok((id, planned.into_iter().map(|(r, _)| r).collect()))
}

/// The node's hashes of `[from, to]` (ascending chunks of 1,000); blocks the node does not have
/// (it rolled back) are left out.
async fn node_hashes(
    source: &dyn ChainSource,
    from: u64,
    to: u64,
) -> Result<HashMap<u64, String>, ReorgError> {
    let mut hashes = HashMap::new();
    if from > to {
        return Ok(hashes);
    }
    for chunk in aligned_batches(BlockRange { from, to }, 1_000) {
        match source.block_hashes(chunk).await {
            Ok(found) => hashes.extend(found),
            Err(SourceError::NotYetAvailable { .. }) => break,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(hashes)
}
