//! Reorg repair: when stored blocks and the node disagree, find the highest block on which they
//! still agree (the common ancestor), unwind everything stored above it (blocks, transactions,
//! logs, coverage) in one transaction, and record the reorg. The caller re-indexes the range.

use std::collections::HashMap;

use sea_orm::sqlx::{self, PgPool};
use serde_json::json;

use crate::{
    source::{ChainSource, SourceError},
    types::{BlockRange, ChainName},
};

/// Deepest reorg repaired automatically.
pub const MAX_REORG_DEPTH: u64 = 10_000;
/// Blocks compared per request while looking for the common ancestor.
const SEARCH_WINDOW: u64 = 32;
/// Hashes kept in a reorg's record.
const RECORDED_HASHES: i64 = 64;

/// Why a reorg could not be repaired.
#[derive(Debug, thiserror::Error)]
pub enum ReorgError {
    /// The node could not be asked.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// PostgreSQL failed; nothing was unwound.
    #[error("unwinding a reorg failed, nothing was unwound: {0}")]
    Database(#[from] sqlx::Error),
    /// No common ancestor within reach.
    #[error(
        "chain {chain} disagrees with the node for more than {MAX_REORG_DEPTH} blocks below \
         block {suspect}; run `blockfill verify` and a range backfill"
    )]
    TooDeep {
        /// The chain.
        chain: ChainName,
        /// Where the disagreement was seen.
        suspect: u64,
    },
}

/// What a repair did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReorgRepair {
    /// Highest block on which the database and the node agree (`None`: none stored agrees).
    pub common_ancestor: Option<u64>,
    /// Blocks unwound above the ancestor (stored tip minus ancestor).
    pub depth: u64,
    /// The range to re-index: from above the ancestor to the old stored tip.
    pub reindex: Option<BlockRange>,
}

/// Finds the common ancestor below `suspect` (a block where the stored and fetched chains
/// disagree), unwinds everything stored above it and records the reorg.
#[tracing::instrument(name = "repair_reorg", skip(pool, source), fields(chain = %chain))]
pub async fn repair_reorg(
    pool: &PgPool,
    source: &dyn ChainSource,
    chain: &ChainName,
    suspect: u64,
    detected_by: &str,
) -> Result<ReorgRepair, ReorgError> {
    let (lowest,): (Option<i64>,) =
        sqlx::query_as("SELECT MIN(number) FROM blocks WHERE chain = $1")
            .bind(chain.as_str())
            .fetch_one(pool)
            .await?;
    let floor = lowest.map_or(suspect, |l| l as u64);
    let mut ancestor: Option<u64> = None;
    let mut top = suspect.saturating_sub(1);
    while suspect > floor && top >= floor {
        if suspect - top > MAX_REORG_DEPTH {
            return Err(ReorgError::TooDeep {
                chain: chain.clone(),
                suspect,
            });
        }
        let low = top.saturating_sub(SEARCH_WINDOW - 1).max(floor);
        let window = BlockRange { from: low, to: top };
        let node: HashMap<u64, String> = source.block_hashes(window).await?.into_iter().collect();
        let stored: HashMap<u64, String> = sqlx::query_as::<_, (i64, String)>(
            "SELECT number, hash FROM blocks WHERE chain = $1 AND number BETWEEN $2 AND $3",
        )
        .bind(chain.as_str())
        .bind(low as i64)
        .bind(top as i64)
        .fetch_all(pool)
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
    unwind(pool, source, chain, ancestor, detected_by).await
}

async fn unwind(
    pool: &PgPool,
    source: &dyn ChainSource,
    chain: &ChainName,
    ancestor: Option<u64>,
    detected_by: &str,
) -> Result<ReorgRepair, ReorgError> {
    let above = ancestor.map_or(-1, |a| a as i64);
    let (stored_top,): (Option<i64>,) =
        sqlx::query_as("SELECT MAX(number) FROM blocks WHERE chain = $1")
            .bind(chain.as_str())
            .fetch_one(pool)
            .await?;
    let Some(stored_top) = stored_top.filter(|t| *t > above) else {
        return Ok(ReorgRepair {
            common_ancestor: ancestor,
            depth: 0,
            reindex: None,
        });
    };
    // The reorg's depth: up to the highest stored block the node does not have (blocks of the new
    // branch that concurrent batches already wrote are unwound and re-indexed too, but they are
    // not part of the reorg).
    let node = node_hashes(source, (above + 1) as u64, stored_top as u64).await?;
    let stored: Vec<(i64, String)> = sqlx::query_as(
        "SELECT number, hash FROM blocks WHERE chain = $1 AND number > $2 ORDER BY number",
    )
    .bind(chain.as_str())
    .bind(above)
    .fetch_all(pool)
    .await?;
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
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('blockfill.coverage'), hashtext($1))")
        .bind(chain.as_str())
        .execute(&mut *tx)
        .await?;
    // Batches may have committed above the tip read before the lock; they are unwound too, so
    // the range to re-index ends at the tip under the lock.
    let (locked_top,): (Option<i64>,) =
        sqlx::query_as("SELECT MAX(number) FROM blocks WHERE chain = $1")
            .bind(chain.as_str())
            .fetch_one(&mut *tx)
            .await?;
    let unwound_top = locked_top.unwrap_or(stored_top).max(stored_top);
    let old_hashes: Vec<(i64, String)> = sqlx::query_as(
        "SELECT number, hash FROM blocks WHERE chain = $1 AND number > $2 AND number <= $3 \
         ORDER BY number",
    )
    .bind(chain.as_str())
    .bind(above)
    .bind(recorded_top)
    .fetch_all(&mut *tx)
    .await?;
    for table in ["logs", "transactions"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE chain = $1 AND block_number > $2"
        )))
        .bind(chain.as_str())
        .bind(above)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("DELETE FROM blocks WHERE chain = $1 AND number > $2")
        .bind(chain.as_str())
        .bind(above)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM coverage WHERE chain = $1 AND start_block > $2")
        .bind(chain.as_str())
        .bind(above)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE coverage SET end_block = $2 WHERE chain = $1 AND end_block > $2")
        .bind(chain.as_str())
        .bind(above)
        .execute(&mut *tx)
        .await?;
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
    sqlx::query(
        "INSERT INTO reorgs (chain, common_ancestor, depth, old_hashes, new_hashes, detected_by) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(chain.as_str())
    .bind(above)
    .bind(depth as i32)
    .bind(to_json(&old))
    .bind(to_json(&new_hashes))
    .bind(detected_by)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::warn!(target: "blockfill::reorg", chain = %chain, common_ancestor = above, depth, detected_by, "reorg: unwound blocks above the common ancestor");
    metrics::counter!("blockfill_reorgs_total", "chain" => chain.to_string()).increment(1);
    Ok(ReorgRepair {
        common_ancestor: ancestor,
        depth,
        reindex: Some(BlockRange {
            from: (above + 1) as u64,
            to: unwound_top as u64,
        }),
    })
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
    for chunk in crate::ranges::aligned_batches(BlockRange { from, to }, 1_000) {
        match source.block_hashes(chunk).await {
            Ok(found) => hashes.extend(found),
            Err(SourceError::NotYetAvailable { .. }) => break,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(hashes)
}
