//! Fault injection for JSON-RPC endpoints, to test how clients cope with bad nodes: endpoint
//! pools, 429 handling, circuit breakers, timeouts.
//!
//! A [`FaultProfile`] says what goes wrong (latency, jitter, HTTP 503s, HTTP 429s with
//! `Retry-After`, requests that never get an answer, refused JSON-RPC batches, corrupted
//! answers). A [`FaultInjector`] holds the current profile (changeable at runtime) and counts
//! what it injected; a [`FaultLayer`] applies it in front of any axum [`Router`](axum::Router)
//! or tower service:
//!
//! ```no_run
//! # use blockfill_devnet::faults::{FaultInjector, FaultProfile, fault_layer};
//! # let node = axum::Router::new();
//! let injector = FaultInjector::new(FaultProfile {
//!     rate_limit_rate: 0.2,
//!     ..FaultProfile::default()
//! })?;
//! let flaky_node: axum::Router = node.layer(fault_layer(injector.clone()));
//! // Later: every request fails.
//! injector.set(FaultProfile { error_rate: 1.0, ..FaultProfile::default() })?;
//! # Ok::<(), blockfill_devnet::faults::FaultProfileError>(())
//! ```
//!
//! Per request, in this order: `hang` (never answer) → sleep `latency` plus up to `jitter` →
//! one uniform draw `u` in `[0, 1)`: `u < error_rate` answers 503, `u < error_rate +
//! rate_limit_rate` answers 429 → with `reject_batches`, a body that is a JSON array gets
//! [`BATCH_REJECTION`] → otherwise the inner service answers → if a second, independent
//! uniform draw is below `malform_rate` and that answer is an HTTP 200, its body is corrupted
//! (see [`FaultProfile::malform_rate`]).
//!
//! # Layout
//! - `profile`: what goes wrong ([`FaultProfile`]), why a profile is refused
//!   ([`FaultProfileError`]) and what was injected ([`FaultCounts`]).
//! - `injector`: the shared, runtime-changeable profile and its counters ([`FaultInjector`]).
//! - `layer`: [`fault_layer`], the tower layer and service ([`FaultLayer`], [`FaultService`])
//!   and the per-request decision.
//! - `malform`: corrupting an answer's body (wrong number, missing hash, broken parent,
//!   truncated JSON).
//! - `tests`: the layer end to end over an echo router, and the corruption helpers.

use std::time::Duration;

mod injector;
mod layer;
mod malform;
mod profile;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

pub use injector::FaultInjector;
pub use layer::{FaultLayer, FaultService, fault_layer};
pub use profile::{FaultCounts, FaultProfile, FaultProfileError};

/// The body of the HTTP 200 answer to a JSON-RPC batch when [`FaultProfile::reject_batches`] is
/// set: one JSON-RPC error object (code -32600, invalid request), as some providers answer.
pub const BATCH_REJECTION: &str = r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"batch requests are not supported"}}"#;

/// The body of a corrupted answer of the `unparsable` kind (see [`FaultProfile::malform_rate`]):
/// JSON cut short.
pub const TRUNCATED_ANSWER: &str = r#"{"jsonrpc":"2.0","result":"#;

/// Body of the injected HTTP 503 answers.
const ERROR_BODY: &str = "service unavailable (injected fault)";
/// Body of the injected HTTP 429 answers.
const RATE_LIMIT_BODY: &str = "too many requests (injected fault)";
/// Body of the HTTP 503 a hung request gets when it is released (server shutting down).
const RELEASED_BODY: &str = "hung request released: server shutting down (injected fault)";
/// Largest request body buffered to look for a batch; larger ones get HTTP 413.
const BODY_LIMIT: usize = 256 * 1024 * 1024;
/// How long a hung request waits at most when nothing releases it.
const HANG_LIMIT: Duration = Duration::from_secs(24 * 60 * 60);
