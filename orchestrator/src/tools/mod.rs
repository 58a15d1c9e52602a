//! Tooling commands of the `blockfill` binary, apart from the production modules: they start a
//! devnet (from the `blockfill-devnet` crate), an orchestrator and worker processes on loopback.
//!
//! # Layout
//! - [`demo`]: `blockfill demo`, the README's demo (and the chain and backfill helpers the
//!   benchmarks share).
//! - [`bench`](mod@bench): `blockfill bench`, the end-to-end benchmark against the raw loop.
//! - [`api_bench`]: `blockfill bench-api`, status and gaps latency at a fixed request rate (oha),
//!   idle and during a full-speed backfill.
//! - [`node_bench`]: `blockfill bench --rpc-url`, a real node's raw serving rate for Blockfill's
//!   requests against the end-to-end rate.
//! - [`otlp_sink`]: an OTLP/gRPC trace receiver on loopback (the benchmark's collector, and the
//!   tests').
//! - [`soak`]: `blockfill soak`, the long-running benchmark of live sync through a fleet outage.

pub mod api_bench;
pub mod bench;
pub mod demo;
pub mod node_bench;
pub mod otlp_sink;
pub mod soak;
