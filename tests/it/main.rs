//! Blockfill's integration and end-to-end tests: one binary, one module per capability. Every
//! test gets a fresh database and Redis prefix (see `blockfill_tests::app`).

// Tests unwrap: a failure is a panic with the error, which is what a test should do.
#![allow(clippy::unwrap_used)]

mod anvil_fixtures;
mod api;
mod auth;
mod backfill_anvil;
mod bad_input;
mod chain_identity;
mod chain_settings;
mod chains_served;
mod chaos;
mod control;
mod coverage_sql;
mod crash_loop;
mod dashboard;
mod database_outage;
mod endpoints;
mod failures;
mod fault_proxy;
mod fencing;
mod fleet;
mod leadership;
mod live;
mod observe;
mod partitions;
mod poison;
mod progress;
mod queue_bounds;
mod reorg_safety;
mod reorgs;
mod resolution;
mod scheduler;
mod secrets;
mod stale_head;
mod status_cost;
mod status_gaps;
mod supervisor;
mod teardown;
mod workers;
mod writes;
