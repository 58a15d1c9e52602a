//! The store: every read and write of the control tables (backfills, batches, scheduler
//! checkpoints, the coverage ledger, queue bounds), with typed statuses, lanes and modes.
//!
//! - [`kinds`]: [`BatchStatus`], [`BackfillStatus`], [`BackfillMode`], [`Lane`] and
//!   [`FailureKind`], each spelled once (its PostgreSQL, JSON and log spelling).
//! - [`batches`]: batch rows and their transitions (plan, queue, start, fail, split, quarantine,
//!   finish, reopen) and counts.
//! - [`backfills`]: backfill rows and their transitions (create, plan, rescan, finish, reopen).
//! - [`control`]: an operator's pause, resume, cancel and priority, and what the gate and the
//!   scheduler read to honour them.
//! - [`checkpoints`]: the scheduler's cursor per backfill and generation (continue as new).
//! - [`coverage`]: the coverage ledger as the scheduler reads it.
//! - [`queue_bounds`]: the bound of each lane's queue, recorded by the leader.
//! - [`chains`]: registered chains: find, list, register, the recorded head, halting and
//!   resuming live sync, the settings a reorg repair reads.
//! - [`live_lane`]: each chain's `live` backfill and its live cursor (in the planner's fenced
//!   transaction).
//! - [`status`]: what a chain's status answer reads: gaps of the coverage ledger (summary and
//!   pages), covered intervals, the live section's inputs, the recent write rate, failure counts.
//! - [`backfill_views`]: what the admin API reads to show backfills (totals by batch status,
//!   failure counts, compacted counters, latest errors, recent rate).
//! - [`batch_views`]: what the admin API reads to show batches, retryable ids and quarantined
//!   blocks.
//! - [`progress`]: a backfill's done blocks per time bucket (its blocks/s over time).
//! - [`compaction`]: deleting old done live batch rows, counted on their backfill.
//! - [`reconcile`]: stalled scheduler generations, unfinished batches to check against Redis,
//!   renewing the batches Redis lost.
//! - [`blocks`]: reads of the stored chain for reorg detection (tip, bounds, hashes, broken
//!   parent links).
//! - [`repair`]: a reorg repair's writes in its one fenced transaction (coverage lock, unwind,
//!   the re-index backfill).
//! - [`reorg_log`]: the `reorgs` table: recording repaired reorgs and reading them back.
//! - [`leadership`]: the scheduler's advisory lock, leader terms, heartbeats and the term
//!   confirmation every fenced write makes.
//! - [`endpoint_health`]: each process's endpoint reports: publishing, pruning, reading the
//!   fresh ones.
//! - [`indexed`]: reads of the index tables for `verify`, and control rows per indexed block.
//! - [`workers`]: each worker process's report (what it serves, in flight, rate, heartbeat).
//! - [`readiness`]: whether PostgreSQL answers.
//! - [`api_keys`]: API keys (public id, role, hashed secret), creating, verifying, revoking.
//! - [`audit`]: the audit log of the admin API's mutations.
//! - [`idempotency`]: stored answers of `Idempotency-Key` requests.
//!
//! SQL lives here and in the bulk write path ([`crate::write`]) only; callers pass and get typed
//! values, and bind the kinds rather than spelling them.

pub mod api_keys;
pub mod audit;
pub mod backfill_views;
pub mod backfills;
pub mod batch_views;
pub mod batches;
pub mod blocks;
pub mod chains;
pub mod checkpoints;
pub mod compaction;
pub mod control;
pub mod coverage;
pub mod endpoint_health;
pub mod idempotency;
pub mod indexed;
pub mod kinds;
pub mod leadership;
pub mod live_lane;
pub mod progress;
pub mod queue_bounds;
pub mod readiness;
pub mod reconcile;
pub mod reorg_log;
pub mod repair;
pub mod status;
pub mod workers;

pub use kinds::{BackfillMode, BackfillStatus, BatchStatus, FailureKind, Lane};
