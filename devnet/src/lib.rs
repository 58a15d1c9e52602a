//! Blockfill's test tooling: a deterministic EVM-shaped chain, its JSON-RPC server and a fault
//! layer for JSON-RPC endpoints. Used by `blockfill devnet|demo|bench|soak` and by the tests;
//! nothing on the production path (the scheduler, the admin API, the head tracker, the live
//! lane, the workers) depends on this crate.
//!
//! # Layout
//! - `chain`: [`DevnetChain`] and [`DevnetConfig`], the deterministic chain (no state, any
//!   height); a [`ChainSource`](blockfill_activities::ChainSource) in-process and a JSON-RPC
//!   answerer ([`DevnetChain::handle_rpc`]).
//! - [`server`]: the devnet over JSON-RPC on loopback, on one or several endpoints, optionally
//!   behind the fault layer; [`DevnetArgs`] and [`server::run`] are `blockfill devnet`.
//! - [`faults`]: fault injection in front of any axum router or tower service (latency, HTTP
//!   503s and 429s, hangs, refused batches, corrupted answers), changeable at runtime.

mod chain;
pub mod faults;
pub mod server;

pub use chain::{DevnetChain, DevnetConfig};
pub use faults::{FaultInjector, FaultLayer, FaultProfile};
pub use server::{DevnetArgs, spawn_devnet, spawn_devnet_endpoints, spawn_devnet_with_faults};
