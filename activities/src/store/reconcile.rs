//! What the leader's reconciler reads and repairs: the latest scheduler generation of every
//! active backfill and whether it stalled, the unfinished batches of a lane old enough to check
//! against Redis, and renewing (planning again, in a new queue round) those Redis lost.

use std::time::Duration;

use sea_orm::sqlx::{self, PgConnection, PgPool};
use uuid::Uuid;

use super::{BackfillStatus, BatchStatus, Lane};

/// `(backfill_id, generation)` of the latest scheduler generation of every active (planned or
/// running) backfill.
pub async fn latest_active_generations(pool: &PgPool) -> Result<Vec<(Uuid, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT DISTINCT ON (c.backfill_id) c.backfill_id, c.generation \
         FROM scheduler_checkpoints c JOIN backfills b ON b.id = c.backfill_id \
         WHERE b.status = ANY($1) \
         ORDER BY c.backfill_id, c.generation DESC",
    )
    .bind(&BackfillStatus::ACTIVE[..])
    .fetch_all(pool)
    .await
}

/// Whether generation `generation` of backfill `backfill_id` last touched its checkpoint more
/// than `after` ago (`None`: no such checkpoint).
pub async fn generation_stalled(
    pool: &PgPool,
    backfill_id: Uuid,
    generation: i64,
    after: Duration,
) -> Result<Option<bool>, sqlx::Error> {
    let stalled: Option<(bool,)> = sqlx::query_as(
        "SELECT updated_at < now() - make_interval(secs => $3) FROM scheduler_checkpoints \
         WHERE backfill_id = $1 AND generation = $2",
    )
    .bind(backfill_id)
    .bind(generation)
    .bind(after.as_secs_f64())
    .fetch_optional(pool)
    .await?;
    Ok(stalled.map(|(s,)| s))
}

/// The unfinished (planned, queued or running) batches of `lane` that have been so for `grace`
/// (since started, else queued, else planned), lowest first, at most 1,000 (index
/// `batches_unfinished`): those of active backfills, and the queued or running ones of
/// cancelled backfills (re-fed, the gate ends them `cancelled`). A paused backfill's batches
/// wait for its resume: its planned ones are not to be queued, and a queued or running one
/// Redis lost is renewed once it is active again.
pub async fn unfinished_batches(
    pool: &PgPool,
    lane: Lane,
    grace: Duration,
) -> Result<Vec<super::batches::QueueableRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT b.id, b.chain, b.from_block, b.to_block, b.backfill_id, b.queue_round \
         FROM batches b JOIN backfills f ON f.id = b.backfill_id \
         WHERE b.lane = $2 AND b.status = ANY($3) \
           AND (f.status = ANY($4) OR (f.status = $5 AND b.status <> $6)) \
           AND COALESCE(b.started_at, b.queued_at, b.planned_at) \
               < now() - make_interval(secs => $1) \
         ORDER BY b.from_block LIMIT 1000",
    )
    .bind(grace.as_secs_f64())
    .bind(lane)
    .bind(&BatchStatus::UNFINISHED[..])
    .bind(&BackfillStatus::ACTIVE[..])
    .bind(BackfillStatus::Cancelled)
    .bind(BatchStatus::Planned)
    .fetch_all(pool)
    .await
}

/// Plans the batches `ids` again in a new queue round, those still unfinished (Redis lost their
/// jobs); returns `(id, queue_round)` of each renewed one. Runs in the caller's fenced
/// transaction; the caller pushes the renewed ones through the gate after it commits.
pub async fn renew_lost(
    conn: &mut PgConnection,
    ids: &[String],
) -> Result<Vec<(String, i32)>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE batches SET status = $2, queue_round = queue_round + 1 \
         WHERE id = ANY($1) AND status = ANY($3) RETURNING id, queue_round",
    )
    .bind(ids)
    .bind(BatchStatus::Planned)
    .bind(&BatchStatus::UNFINISHED[..])
    .fetch_all(conn)
    .await
}
