//! The store: every read and write of the control tables (backfills, batches, scheduler
//! checkpoints, the coverage ledger, queue bounds), with typed statuses, lanes and modes.
//!
//! - [`kinds`]: [`BatchStatus`], [`BackfillStatus`], [`BackfillMode`], [`Lane`] and
//!   [`FailureKind`], each spelled once (its PostgreSQL, JSON and log spelling).
//! - [`batches`]: batch rows and their transitions (plan, queue, start, fail, split, quarantine,
//!   finish, reopen) and counts.
//! - [`backfills`]: backfill rows and their transitions (create, plan, rescan, finish, reopen).
//! - [`checkpoints`]: the scheduler's cursor per backfill and generation (continue as new).
//! - [`coverage`]: the coverage ledger as the scheduler reads it.
//! - [`queue_bounds`]: the bound of each lane's queue, recorded by the leader.
//!
//! SQL lives here and in the bulk write path ([`crate::write`]) only; callers pass and get typed
//! values, and bind the kinds rather than spelling them.

pub mod backfills;
pub mod batches;
pub mod checkpoints;
pub mod coverage;
pub mod kinds;
pub mod queue_bounds;

pub use kinds::{BackfillMode, BackfillStatus, BatchStatus, FailureKind, Lane};
