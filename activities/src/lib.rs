//! Blockfill's activities: the domain types, the chain sources and the fetch and write work that
//! workers run. No HTTP server and no scheduling policy live here.
//!
//! # Layout
//! - [`types`]: chain names, block ranges, batch ids, job payloads, queue lane names.
//! - [`ranges`]: aligned batch splitting, interval merging and gap arithmetic (property-tested).
//! - [`source`]: the [`source::ChainSource`] trait, the EVM JSON-RPC source and the endpoint
//!   pool (the devnet chain is in the `blockfill-devnet` crate).
//! - [`write`]: one batch into PostgreSQL in one transaction (rows, coverage, batch status),
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

pub mod activity;
pub mod backoff;
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
pub use plan::{EnqueueError, enqueue_batches};
pub use redact::redact_url;
pub use source::{BlockBundle, ChainSource, EvmRpcSource, SourceRegistry};
pub use store::Lane;
pub use types::{BatchId, BatchJob, BlockRange, ChainName, SchedulerJob};
