//! An operator's control of a backfill (issue 12), as rows: pausing, resuming and cancelling it,
//! changing its priority, and what the gate and the scheduler read to honour those (which of a
//! pass's backfills are active and with which priority, how many planned batches of higher
//! priority wait, whether a higher-priority backfill still wants room).
//!
//! The withdrawing of waiting jobs from Redis is [`crate::plan::withdraw_backfill`]: it runs these
//! in the gate's transaction.

use sea_orm::sqlx::{self, PgConnection};
use uuid::Uuid;

use super::{BackfillMode, BackfillStatus, BatchStatus, Lane};

/// What a control transition found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The backfill changed to the asked state.
    Changed,
    /// It was in the asked state already (nothing changed).
    Already,
    /// Its state forbids it (finished, or cancelled and asked to pause or resume, or the live
    /// lane's).
    Refused(BackfillStatus),
    /// No such backfill.
    Unknown,
}

/// A backfill's row as control reads it, locked until the caller's transaction ends.
#[derive(Debug, Clone, ::sqlx::FromRow)]
pub struct Controlled {
    /// Chain name.
    pub chain: String,
    /// Its mode (`live` cannot be controlled).
    pub mode: BackfillMode,
    /// Its status.
    pub status: BackfillStatus,
}

/// Locks backfill `id`'s row and reads what control needs (`None`: no such backfill).
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<Option<Controlled>, sqlx::Error> {
    sqlx::query_as("SELECT chain, mode, status FROM backfills WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Marks an active backfill paused (now); false when it was not active.
pub async fn mark_paused(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    let changed = sqlx::query(
        "UPDATE backfills SET status = $2, paused_at = now() WHERE id = $1 AND status = ANY($3)",
    )
    .bind(id)
    .bind(BackfillStatus::Paused)
    .bind(&BackfillStatus::ACTIVE[..])
    .execute(conn)
    .await?
    .rows_affected();
    Ok(changed > 0)
}

/// Marks a paused backfill running again; false when it was not paused.
pub async fn mark_resumed(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    let changed = sqlx::query(
        "UPDATE backfills SET status = $2, paused_at = NULL WHERE id = $1 AND status = $3",
    )
    .bind(id)
    .bind(BackfillStatus::Running)
    .bind(BackfillStatus::Paused)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(changed > 0)
}

/// Marks a planned, running or paused backfill cancelled (now; it is finished); false when it
/// was none of those.
pub async fn mark_cancelled(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    let changed = sqlx::query(
        "UPDATE backfills SET status = $2, cancelled_at = now(), finished_at = now(), \
           paused_at = NULL WHERE id = $1 AND status = ANY($3)",
    )
    .bind(id)
    .bind(BackfillStatus::Cancelled)
    .bind(&BackfillStatus::CONTROLLABLE[..])
    .execute(conn)
    .await?
    .rows_affected();
    Ok(changed > 0)
}

/// Sets backfill `id`'s priority.
pub async fn set_priority(
    conn: &mut PgConnection,
    id: Uuid,
    priority: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE backfills SET priority = $2 WHERE id = $1")
        .bind(id)
        .bind(priority)
        .execute(conn)
        .await?;
    Ok(())
}

/// The queued batches of backfill `id` in the backfill lane, as `(id, task id)`: the jobs that
/// may still wait in Redis (bounded by the lane's queue bound).
pub async fn queued_tasks(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let rows: Vec<(String, i32)> = sqlx::query_as(
        "SELECT id, queue_round FROM batches WHERE backfill_id = $1 AND status = $2 AND lane = $3",
    )
    .bind(id)
    .bind(BatchStatus::Queued)
    .bind(Lane::Backfill)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(batch, round)| {
            let task = crate::types::task_id_of(&batch, id, round);
            (batch, task)
        })
        .collect())
}

/// Sets the queued batches among `ids` to `status` (planned: withdrawn; cancelled), and, for
/// `cancelled`, every planned batch of backfill `id` too. Returns how many changed.
pub async fn settle_withdrawn(
    conn: &mut PgConnection,
    id: Uuid,
    ids: &[String],
    status: BatchStatus,
) -> Result<u64, sqlx::Error> {
    let cancelling = status == BatchStatus::Cancelled;
    let changed = sqlx::query(
        "UPDATE batches SET status = $3, queued_at = NULL, \
           finished_at = CASE WHEN $4 THEN now() ELSE finished_at END \
         WHERE backfill_id = $1 AND ((id = ANY($2) AND status = $5) OR ($4 AND status = $6))",
    )
    .bind(id)
    .bind(ids)
    .bind(status)
    .bind(cancelling)
    .bind(BatchStatus::Queued)
    .bind(BatchStatus::Planned)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(changed)
}

/// The status and priority of each of `ids` (backfills of one gate pass).
pub async fn states(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, BackfillStatus, i32)>, sqlx::Error> {
    sqlx::query_as("SELECT id, status, priority FROM backfills WHERE id = ANY($1)")
        .bind(ids)
        .fetch_all(conn)
        .await
}

/// Marks the planned batches among `ids` cancelled (their backfill was cancelled: they reached
/// the gate after it, e.g. the halves of a batch split while it ran).
pub async fn cancel_planned(conn: &mut PgConnection, ids: &[String]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE batches SET status = $2, finished_at = now() WHERE id = ANY($1) AND status = $3",
    )
    .bind(ids)
    .bind(BatchStatus::Cancelled)
    .bind(BatchStatus::Planned)
    .execute(conn)
    .await?;
    Ok(())
}

/// Planned batches of `chain` in `lane` waiting by priority of their (active) backfill, highest
/// first: what a gate pass leaves room for before lower priorities.
pub async fn planned_by_priority(
    conn: &mut PgConnection,
    lane: Lane,
    chain: &str,
) -> Result<Vec<(i32, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT f.priority, count(*) FROM batches b JOIN backfills f ON f.id = b.backfill_id \
         WHERE b.chain = $1 AND b.lane = $2 AND b.status = $3 AND f.status = ANY($4) \
         GROUP BY f.priority ORDER BY f.priority DESC",
    )
    .bind(chain)
    .bind(lane)
    .bind(BatchStatus::Planned)
    .bind(&BackfillStatus::ACTIVE[..])
    .fetch_all(conn)
    .await
}

/// Whether an active range or gaps backfill of `chain` with a priority above `priority` still
/// wants room: its scheduler has blocks left to plan, or planned batches wait for the gate.
pub async fn higher_priority_waiting(
    conn: &mut PgConnection,
    chain: &str,
    priority: i32,
) -> Result<bool, sqlx::Error> {
    let (waiting,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM backfills f WHERE f.chain = $1 AND f.priority > $2 \
           AND f.status = ANY($3) AND f.mode <> $4 AND ( \
             EXISTS (SELECT 1 FROM batches b WHERE b.backfill_id = f.id AND b.status = $5) \
             OR (SELECT max(cursor_block) FROM scheduler_checkpoints c \
                 WHERE c.backfill_id = f.id) <= f.to_block))",
    )
    .bind(chain)
    .bind(priority)
    .bind(&BackfillStatus::ACTIVE[..])
    .bind(BackfillMode::Live)
    .bind(BatchStatus::Planned)
    .fetch_one(conn)
    .await?;
    Ok(waiting)
}

/// Backfill `id`'s status and priority (`None`: no such backfill).
pub async fn state(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<(BackfillStatus, i32)>, sqlx::Error> {
    sqlx::query_as("SELECT status, priority FROM backfills WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
}
