//! `batches`: one row per planned batch, id `{chain}:{from}-{to}`.

use sea_orm::entity::prelude::*;

use crate::store::{BatchStatus, FailureKind, Lane};

/// A batch and its execution record.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "batches")]
pub struct Model {
    /// Deterministic id `{chain}:{from}-{to}`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Chain name.
    pub chain: String,
    /// First block.
    pub from_block: i64,
    /// Last block.
    pub to_block: i64,
    /// The backfill that owns the batch now.
    pub backfill_id: Uuid,
    /// planned, queued, running, done, failed, split or quarantined.
    pub status: BatchStatus,
    /// Failed attempts.
    pub attempts: i32,
    /// Times a worker started the batch.
    pub deliveries: i32,
    /// The last error.
    pub last_error: Option<String>,
    /// The kind of the last failure.
    pub last_failure_kind: Option<FailureKind>,
    /// The worker that last started it.
    pub worker: Option<String>,
    /// When it was planned.
    pub planned_at: DateTimeWithTimeZone,
    /// When it was pushed to the queue.
    pub queued_at: Option<DateTimeWithTimeZone>,
    /// When a worker last started it.
    pub started_at: Option<DateTimeWithTimeZone>,
    /// When it was written.
    pub finished_at: Option<DateTimeWithTimeZone>,
    /// The batch this one was split from.
    pub parent_id: Option<String>,
    /// How many times it was queued again (part of its queue task id).
    pub queue_round: i32,
    /// `backfill` or `live`.
    pub lane: Lane,
}

/// No relations are navigated through sea-orm.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
