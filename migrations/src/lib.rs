//! Blockfill's PostgreSQL schema, one sea-orm migration per change. Never edit a shipped migration;
//! add a new one.
//!
//! # Layout
//! - `m20261122_000001_create_schema`: chains, backfills, batches, scheduler checkpoints, the
//!   coverage ledger and the index tables (`blocks`, `transactions`, `logs`).
//! - `m20261122_000002_failure_handling`: split and quarantined batches, quarantined blocks,
//!   queue rounds, scheduler leadership.
//! - `m20261122_000003_reorgs`: the record of detected reorgs.
//! - `m20261122_000004_live_lane`: live cursor per chain, batch lanes.
//! - `m20261201_000005_endpoint_health`: each process's view of every RPC endpoint.
//! - `m20261202_000006_safety`: chain identity and reorg depth limit, live-sync halt, leader
//!   term, queue bounds, backfill rescans.
//! - `m20261202_000007_bounded_status`: partial indexes for the status answer, counters of
//!   compacted live batches on backfills.
//! - `m20261202_000008_failure_kinds`: the kind of each batch's last failure.
//! - `m20261202_000009_workers`: each worker process's report (what it serves, its heartbeat).
//! - `m20261203_000010_backfill_control`: paused and cancelled backfills, cancelled batches,
//!   backfill priority.
//! - `m20261203_000011_access`: API keys, the audit log, stored `Idempotency-Key` answers.
//! - `m20261203_000012_backfill_trace`: the trace context a backfill was created in.
//! - `m20261203_000013_partitioned_index`: the index tables partitioned by block number (spans of
//!   1,000,000 blocks, BRIN on the block number), partitions made on demand.

pub use sea_orm_migration::prelude::*;

/// Declares this module's `Migration`: it runs the SQL script `$up` to apply and `$down` to revert
/// (each script is one string of statements).
macro_rules! sql_migration {
    ($up:expr, $down:expr) => {
        #[derive(DeriveMigrationName)]
        pub(crate) struct Migration;

        #[async_trait::async_trait]
        impl MigrationTrait for Migration {
            async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
                manager.get_connection().execute_unprepared($up).await?;
                Ok(())
            }

            async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
                manager.get_connection().execute_unprepared($down).await?;
                Ok(())
            }
        }
    };
}

mod m20261122_000001_create_schema;
mod m20261122_000002_failure_handling;
mod m20261122_000003_reorgs;
mod m20261122_000004_live_lane;
mod m20261201_000005_endpoint_health;
mod m20261202_000006_safety;
mod m20261202_000007_bounded_status;
mod m20261202_000008_failure_kinds;
mod m20261202_000009_workers;
mod m20261203_000010_backfill_control;
mod m20261203_000011_access;
mod m20261203_000012_backfill_trace;
mod m20261203_000013_partitioned_index;

/// Runs Blockfill's migrations.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_schema::Migration),
            Box::new(m20261122_000002_failure_handling::Migration),
            Box::new(m20261122_000003_reorgs::Migration),
            Box::new(m20261122_000004_live_lane::Migration),
            Box::new(m20261201_000005_endpoint_health::Migration),
            Box::new(m20261202_000006_safety::Migration),
            Box::new(m20261202_000007_bounded_status::Migration),
            Box::new(m20261202_000008_failure_kinds::Migration),
            Box::new(m20261202_000009_workers::Migration),
            Box::new(m20261203_000010_backfill_control::Migration),
            Box::new(m20261203_000011_access::Migration),
            Box::new(m20261203_000012_backfill_trace::Migration),
            Box::new(m20261203_000013_partitioned_index::Migration),
        ]
    }
}
