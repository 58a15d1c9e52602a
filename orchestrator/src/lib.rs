//! The `blockfill` binary's library: the scheduler, the head tracker, the admin API and the
//! dashboard (the production path), plus `migrate`, `verify` and the tooling commands.
//!
//! # Layout
//! - [`settings`]: flags and environment variables of `serve`, with defaults.
//! - [`context`]: [`context::AppContext`], what the API, scheduler, head tracker and live lane share.
//! - [`app`]: wiring of `serve` ([`app::Orchestrator`]), database preparation, metrics.
//! - [`scheduler`]: the continue-as-new scheduler job that plans bounded windows of batches.
//! - [`head`]: the head tracker.
//! - [`new_heads`]: `eth_subscribe` new-head subscriptions that wake the head tracker early.
//! - [`seams`]: the seam check that finds reorgs no write noticed.
//! - [`live`]: the live lane planner (new heads to their own queue, ahead of backfill).
//! - [`leader`]: leader election (one scheduling orchestrator per database) and leader terms.
//! - [`reconciler`]: the leader's repair loop (stalled generations, batches lost from Redis,
//!   finished jobs, live batch compaction).
//! - [`compaction`]: deleting old done live batch rows, counted on their backfill.
//! - [`api`]: the admin REST API (one file per resource) and the embedded dashboard.
//! - [`fleet`]: starting and stopping local `blockfill-worker` processes.
//! - [`sizing`]: how many workers a chain wants (backlog, measured rate, min/max, hysteresis).
//! - [`migrate`]: `blockfill migrate`.
//! - [`keys`]: `blockfill keys create|list|revoke`.
//! - [`verify`]: `blockfill verify`, database-versus-node comparison.
//! - [`tools`]: `blockfill demo`, `bench` and `soak`: tooling over the devnet, kept apart from
//!   the production modules.
//!
//! The devnet, its JSON-RPC server (`blockfill devnet`) and the fault layer are in the
//! `blockfill-devnet` crate; only [`tools`] and the binary's `devnet` command use it.

pub mod api;
pub mod app;
pub mod compaction;
pub mod context;
pub mod fleet;
pub mod head;
pub mod keys;
pub mod leader;
pub mod live;
pub mod migrate;
pub mod new_heads;
pub mod reconciler;
pub mod scheduler;
pub mod seams;
pub mod settings;
pub mod sizing;
pub mod tools;
pub mod verify;

pub use app::Orchestrator;
