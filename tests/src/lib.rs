//! Blockfill's test harness, shared by the integration and end-to-end tests in `it/`.
//!
//! # Layout
//! - [`app`]: fresh stores per test (database + Redis prefix), an in-process orchestrator
//!   ([`app::spawn_app`]), the real binaries as processes, HTTP helpers.
//! - [`anvil`]: installing, starting and driving a real Anvil node.

pub mod anvil;
pub mod app;
