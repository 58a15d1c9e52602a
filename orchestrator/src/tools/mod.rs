//! Tooling commands of the `blockfill` binary, apart from the production modules: they start a
//! devnet (from the `blockfill-devnet` crate), an orchestrator and worker processes on loopback.
//!
//! # Layout
//! - [`demo`]: `blockfill demo`, the README's demo (and the chain and backfill helpers the
//!   benchmarks share).
//! - [`bench`](mod@bench): `blockfill bench`, the end-to-end benchmark against the raw loop.
//! - [`api_bench`]: `blockfill bench-api`, status and gaps latency at a fixed request rate (oha),
//!   idle and during a full-speed backfill.
//! - [`density_bench`]: `blockfill bench --dense`, mainnet-like blocks in rows/s against a plain
//!   `COPY` of the same rows, with CPU seconds per 1,000 blocks and per million rows ([`cpu`]).
//! - [`node_bench`]: `blockfill bench --rpc-url`, a real node's raw serving rate for Blockfill's
//!   requests against the end-to-end rate.
//! - [`otlp_sink`]: an OTLP/gRPC trace receiver on loopback (the benchmark's collector, and the
//!   tests').
//! - [`progress`]: a run's blocks and rows over time, sampled from PostgreSQL, and its SVG plot.
//! - [`soak`]: `blockfill soak`, the long-running benchmark of live sync through a fleet outage.

pub mod api_bench;
pub mod bench;
pub(crate) mod cpu;
pub mod demo;
pub mod density_bench;
pub mod node_bench;
pub mod otlp_sink;
pub mod progress;
pub mod soak;
