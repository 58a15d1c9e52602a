//! Blockfill's test harness, shared by the integration and end-to-end tests in `it/`.
//!
//! # Layout
//! - [`app`]: an in-process orchestrator on fresh stores ([`app::spawn_app`], [`app::TestApp`])
//!   and the API calls tests make; re-exports the stores and process helpers below.
//! - [`stores`]: a fresh database and Redis prefix per test, and the guard that drops them even
//!   when the test panics ([`stores::TestStores`], `BLOCKFILL_TEST_KEEP=1` keeps them).
//! - [`process`]: the real binaries as child processes ([`process::Process`]).
//! - [`wait`]: waiting on a signal the system exposes, with a deadline ([`wait::wait_until`]).
//! - [`devnet`]: a devnet served on loopback for one test ([`devnet::ServedDevnet`]).
//! - [`anvil`]: installing, starting and driving a real Anvil node.
//! - [`proxy`]: a fault-injecting proxy in front of a JSON-RPC node, and a dead endpoint.
//! - [`tcp_proxy`]: a TCP proxy that can freeze (a partition that closes nothing).

pub mod anvil;
pub mod app;
pub mod devnet;
pub mod process;
pub mod proxy;
pub mod stores;
pub mod tcp_proxy;
pub mod wait;
