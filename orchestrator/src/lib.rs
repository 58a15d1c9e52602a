//! The `blockfill` binary's library: the scheduler, the head tracker, the admin API and the
//! dashboard, plus the devnet server, `verify`, `demo` and `bench`.
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
//! - [`devnet_server`]: the devnet over JSON-RPC on loopback (`blockfill devnet`), with faults.
//! - [`faults`]: fault injection for JSON-RPC endpoints (latency, 503s, 429s, hangs, batches).
//! - [`verify`]: database-versus-node comparison.
//! - [`fleet`]: starting and stopping local `blockfill-worker` processes.
//! - [`demo`], [`bench`]: the README's demo and the end-to-end benchmark.
//! - [`soak`]: the long-running benchmark of live sync through a fleet outage.

pub mod api;
pub mod app;
pub mod bench;
pub mod compaction;
pub mod context;
pub mod demo;
pub mod devnet_server;
pub mod faults;
pub mod fleet;
pub mod head;
pub mod leader;
pub mod live;
pub mod new_heads;
pub mod reconciler;
pub mod scheduler;
pub mod seams;
pub mod settings;
pub mod soak;
pub mod verify;

pub use app::Orchestrator;
