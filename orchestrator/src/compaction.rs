//! Compaction of live batch rows: the live lane writes one batch row per head, for ever. Once a
//! live batch is done and old, its row tells nothing the coverage ledger and its backfill's
//! counters do not, so the leader's reconciler deletes such rows, a bounded number at a time,
//! once every [`COMPACTION_INTERVAL`] (the first time one interval after it takes the lead).

use std::time::Duration;

use blockfill_activities::store;
use sea_orm::sqlx::{self, PgPool};

/// How often the leader compacts.
pub const COMPACTION_INTERVAL: Duration = Duration::from_secs(60);
/// Done live batches finished within this long are kept.
pub const KEEP_RECENT: Duration = Duration::from_secs(3600);
/// Done live batches kept per chain however old they are: its newest ones.
pub const KEEP_NEWEST_PER_CHAIN: i64 = 100;
/// Most rows one call deletes.
pub const MAX_ROWS_PER_CALL: i64 = 10_000;

/// Deletes done live batch rows that finished more than `older_than` ago, keeping each chain's
/// [`KEEP_NEWEST_PER_CHAIN`] newest (by block), at most [`MAX_ROWS_PER_CALL`] of them, oldest
/// blocks first; returns how many. In the same statement, the owning backfill's `compacted_*`
/// counters take over what the rows counted (batches, blocks, retried and redelivered batches,
/// attempts, redeliveries), so its view and the chain status count the same before and after
/// (see [`store::compaction::compact_live_batches`]).
pub async fn compact_live_batches(pool: &PgPool, older_than: Duration) -> Result<u64, sqlx::Error> {
    store::compaction::compact_live_batches(
        pool,
        older_than,
        MAX_ROWS_PER_CALL,
        KEEP_NEWEST_PER_CHAIN,
    )
    .await
}
