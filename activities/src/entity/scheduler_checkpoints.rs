//! `scheduler_checkpoints`: the scheduler's cursor per backfill and generation.

use sea_orm::entity::prelude::*;

/// Where generation `generation` of a backfill's scheduler starts.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "scheduler_checkpoints")]
pub struct Model {
    /// The backfill.
    #[sea_orm(primary_key, auto_increment = false)]
    pub backfill_id: Uuid,
    /// Generation number, from 0.
    #[sea_orm(primary_key, auto_increment = false)]
    pub generation: i64,
    /// First block not yet planned.
    pub cursor_block: i64,
    /// Batches planned by the generations before this one.
    pub planned_batches: i64,
    /// When the checkpoint was written.
    pub created_at: DateTimeWithTimeZone,
    /// Last time the generation's job made progress (a liveness signal for the reconciler).
    pub updated_at: DateTimeWithTimeZone,
    /// The orchestrator that last ran the generation.
    pub holder: Option<String>,
}

/// No relations are navigated through sea-orm.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
