//! Blockfill's activities: the domain types, the chain sources and the fetch and write work that
//! workers run. No HTTP server and no scheduling policy live here.
//!
//! # Layout
//! - [`types`]: chain names, block ranges, batch ids, job payloads, the scheduler's queue name.
//! - [`ranges`]: aligned batch splitting, interval merging and gap arithmetic (property-tested).
//! - [`source`]: the [`source::ChainSource`] trait, the EVM JSON-RPC source and the endpoint
//!   pool (the devnet chain is in the `blockfill-devnet` crate).
//! - [`write`](mod@write): one batch into PostgreSQL in one transaction (rows, coverage, batch status),
//!   refused when it does not link to the stored neighbours (a reorg).
//! - [`reorg`]: finding the common ancestor, unwinding above it, recording the reorg.
//! - [`activity`]: a batch job end to end (delivery count, fetch, write, attempt budget).
//! - [`plan`]: planning batch rows, and the gate that keeps every queue under its bound.
//! - [`fence`]: leader terms, and refusing a deposed leader's writes.
//! - [`queue`]: the apalis + apalis-redis job queue and worker runner shared by both binaries.
//! - [`store`]: the control tables' reads and writes, with typed statuses, lanes and modes.
//! - [`backoff`]: the one exponential backoff policy (on `backon`) every retry loop uses.
//! - [`redact`]: [`redact_url`], how every URL appears in messages, logs and metrics.
//! - [`entity`]: sea-orm entities of the control tables.
//! - [`settings`]: where PostgreSQL and Redis are (flags and environment variables).
//! - [`telemetry`]: logging set-up and signal handling for both binaries.
//! - [`db`]: connecting to PostgreSQL, creating the database, errors an operator can act on.
//!
//! # Life of a batch
//!
//! 1. **Plan.** `POST /v1/backfills` records a backfill ([`store::backfills::create`]) and its
//!    generation-0 checkpoint ([`store::checkpoints::start`]). The orchestrator's scheduler job
//!    plans a bounded window from its cursor in one fenced transaction: batch rows first
//!    ([`store::batches::plan`], unique per range, status [`BatchStatus::Planned`](store::BatchStatus::Planned)), then the
//!    cursor ([`store::checkpoints::advance`]); it continues as new after a bounded number of
//!    batches ([`store::checkpoints::continue_as_new`]).
//! 2. **Queue.** Every push goes through the gate, [`plan::enqueue_batches`]: under an advisory
//!    lock per lane and chain it counts what is queued or running ([`store::batches::count_in`])
//!    in the chain's queue of the lane ([`BatchQueues`], `{prefix}:{lane}:{chain}`) against
//!    the lane's bound ([`store::queue_bounds::get`]), pushes what fits
//!    ([`queue::JobQueue::push_many`], task id `{batch id}@{backfill id}#{queue round}`) and marks it
//!    [`BatchStatus::Queued`](store::BatchStatus::Queued) ([`store::batches::mark_queued`]); the rest stays planned and is
//!    fed later ([`plan::feed_planned`]).
//! 3. **Start.** A `blockfill-worker` runs [`queue::run_worker`] on its lanes' queues of the
//!    chains it serves (`--chains`, default every registered chain); for each
//!    delivered job [`run_batch`] marks the batch [`BatchStatus::Running`](store::BatchStatus::Running) and counts the delivery
//!    ([`store::batches::start`]); a batch found out of budget, or crash-looping, is resolved at
//!    once ([`activity::exhausted_on_start`]).
//! 4. **Fetch.** [`SourceRegistry::get_for`] gives the chain's endpoint pool
//!    ([`source::EndpointPool`]: identity-checked endpoints, breakers, rate limits, failover);
//!    [`ChainSource::fetch_range`] returns the range's blocks, transactions and logs, validated
//!    (numbers, hashes, parent links) before anything is written.
//! 5. **Write.** [`write::write_batch`] writes in one transaction: the rows (`COPY`, a stored range skipped),
//!    a continuity check against the stored neighbours (a broken link is a reorg, repaired by
//!    [`reorg::repair_reorg`], which plans the re-index in the same transaction that unwinds),
//!    the coverage ledger ([`write::add_coverage`]) and [`BatchStatus::Done`](store::BatchStatus::Done)
//!    ([`store::batches::mark_done`]).
//! 6. **Report.** A failure is recorded with its [`FailureKind`](store::FailureKind)
//!    ([`store::batches::record_failure`]) and retried; once the budget is spent,
//!    [`activity::Verdict::for_exhausted`] splits the batch ([`store::batches::split`], the halves
//!    go back through the gate), quarantines its single block ([`store::batches::quarantine`]) or
//!    fails it ([`store::batches::fail`]). The scheduler finishes the backfill once its range is
//!    covered ([`store::backfills::finish`]), and the status answer reads the ledger's gaps
//!    ([`store::status`]).

pub mod activity;
pub mod backoff;
pub mod batch_queues;
pub mod db;
pub mod entity;
pub mod fence;
pub mod plan;
pub mod queue;
pub mod ranges;
pub mod redact;
pub mod reorg;
pub mod settings;
pub mod source;
pub mod store;
pub mod telemetry;
pub mod types;
pub mod write;

pub use activity::{BatchFailure, BatchOutcome, BatchPolicy, Resolution, run_batch};
pub use batch_queues::BatchQueues;
pub use plan::{EnqueueError, enqueue_batches};
pub use redact::redact_url;
pub use source::{BlockBundle, ChainSource, EvmRpcSource, SourceRegistry};
pub use store::Lane;
pub use types::{BatchId, BatchJob, BlockRange, ChainName, SchedulerJob};
