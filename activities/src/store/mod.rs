//! The store: every read and write of the control tables (backfills, batches, scheduler
//! checkpoints, the coverage ledger, queue bounds), with typed statuses, lanes and modes.
//!
//! - [`kinds`]: [`BatchStatus`], [`BackfillStatus`], [`BackfillMode`], [`Lane`] and
//!   [`FailureKind`], each spelled once (its PostgreSQL, JSON and log spelling).
//!
//! SQL lives here and in the bulk write path ([`crate::write`]) only; callers pass and get typed
//! values, and bind the kinds rather than spelling them.

pub mod kinds;

pub use kinds::{BackfillMode, BackfillStatus, BatchStatus, FailureKind, Lane};
