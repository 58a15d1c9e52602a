//! Blockfill's test harness, shared by the integration and end-to-end tests in `it/`.
//!
//! # Layout
//! - [`app`]: fresh stores per test (database + Redis prefix), an in-process orchestrator
//!   ([`app::spawn_app`]), the real binaries as processes, HTTP helpers.
//! - [`anvil`]: installing, starting and driving a real Anvil node.
//! - [`proxy`]: a fault-injecting proxy in front of a JSON-RPC node, and a dead endpoint.
//! - [`tcp_proxy`]: a TCP proxy that can freeze (a partition that closes nothing).

pub mod anvil;
pub mod app;
pub mod proxy;
pub mod tcp_proxy;
