//! sea-orm entities for the control tables (the index tables are written in bulk by
//! [`crate::write`] and read with plain SQL).

pub mod backfills;
pub mod batches;
pub mod chains;
pub mod scheduler_checkpoints;
