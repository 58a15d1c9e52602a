//! `backfills`: one row per requested backfill.

use sea_orm::entity::prelude::*;

use crate::store::{BackfillMode, BackfillStatus};

/// A backfill request and its lifecycle.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "backfills")]
pub struct Model {
    /// Backfill id (uuid v7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Chain name.
    pub chain: String,
    /// `range` or `gaps`.
    pub mode: BackfillMode,
    /// First block.
    pub from_block: i64,
    /// Last block.
    pub to_block: i64,
    /// planned, running, paused, completed, failed or cancelled.
    pub status: BackfillStatus,
    /// When it was asked for.
    pub requested_at: DateTimeWithTimeZone,
    /// When the scheduler first planned it.
    pub started_at: Option<DateTimeWithTimeZone>,
    /// When it finished.
    pub finished_at: Option<DateTimeWithTimeZone>,
    /// Batches planned so far.
    pub planned_batches: i64,
    /// Blocks in the planned batches.
    pub planned_blocks: i64,
    /// Batch counts frozen when the backfill finished.
    pub final_counts: Option<Json>,
    /// The last error seen.
    pub last_error: Option<String>,
    /// Times the scheduler planned the still uncovered blocks of the range again (after other
    /// backfills' work over them failed).
    pub rescans: i32,
    /// Higher runs first among the active backfills of a chain and lane (-100..=100).
    pub priority: i32,
    /// When an operator paused it (null unless paused).
    pub paused_at: Option<DateTimeWithTimeZone>,
    /// When an operator cancelled it.
    pub cancelled_at: Option<DateTimeWithTimeZone>,
}

/// No relations are navigated through sea-orm.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
