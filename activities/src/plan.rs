//! Planning batches and the one gate every push goes through.
//!
//! - [`plan_batches`] inserts batch rows (unique per range) in the caller's transaction and says
//!   which are new work; nothing is pushed there.
//! - [`enqueue_batches`] is the **gate**: whatever puts a batch job in Redis (scheduler planning,
//!   the live lane, the reconciler's re-feed, retries, requeues, split halves, reorg repairs)
//!   pushes through it. It keeps each lane's queue at or under its bound (set by the leader in
//!   `queue_bounds`); jobs that do not fit stay `planned` in PostgreSQL and are fed later, as room
//!   frees, by whoever owns them (the scheduler, the head tracker, the reconciler).

use sea_orm::sqlx::{self, PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

pub use crate::store::Lane;
use crate::{
    queue::{JobQueue, QueueError},
    types::{BatchId, BatchJob, BlockRange, ChainName},
};

/// Bound of a lane whose leader has not recorded one yet.
pub const DEFAULT_QUEUE_BOUND: u64 = 256;

/// Why batches could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    /// Redis refused.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// PostgreSQL refused.
    #[error("queueing batches failed in PostgreSQL: {0}")]
    Database(#[from] sqlx::Error),
}

/// Inserts `ranges` of `chain` as planned batches of `backfill_id` in `lane` and returns those
/// that are new work, with their queue round. A batch already planned, queued or running is left
/// alone; a finished one (done, failed, split, quarantined) is planned again in a new round when
/// it belonged to another backfill, or to this one if `replan_own_finished`.
pub async fn plan_batches(
    tx: &mut Transaction<'_, Postgres>,
    chain: &ChainName,
    backfill_id: Uuid,
    lane: Lane,
    ranges: &[BlockRange],
    replan_own_finished: bool,
) -> Result<Vec<(BlockRange, i32)>, sqlx::Error> {
    let ids: Vec<String> = ranges
        .iter()
        .map(|r| BatchId::new(chain, *r).to_string())
        .collect();
    let planned: Vec<(i64, i64, i32)> = sqlx::query_as(
        "INSERT INTO batches (id, chain, from_block, to_block, backfill_id, status, lane) \
         SELECT id, $2, f, t, $3, 'planned', $6 FROM UNNEST($1::text[], $4::int8[], $5::int8[]) AS b(id, f, t) \
         ON CONFLICT (id) DO UPDATE SET backfill_id = EXCLUDED.backfill_id, status = 'planned', \
           lane = EXCLUDED.lane, attempts = 0, deliveries = 0, last_error = NULL, worker = NULL, \
           planned_at = now(), queued_at = NULL, started_at = NULL, finished_at = NULL, \
           parent_id = NULL, queue_round = batches.queue_round + 1 \
         WHERE ($7 OR batches.backfill_id <> EXCLUDED.backfill_id) \
           AND batches.status IN ('done', 'failed', 'split', 'quarantined') \
         RETURNING from_block, to_block, queue_round",
    )
    .bind(&ids)
    .bind(chain.as_str())
    .bind(backfill_id)
    .bind(ranges.iter().map(|r| r.from as i64).collect::<Vec<_>>())
    .bind(ranges.iter().map(|r| r.to as i64).collect::<Vec<_>>())
    .bind(lane.as_str())
    .bind(replan_own_finished)
    .fetch_all(&mut **tx)
    .await?;
    Ok(planned
        .into_iter()
        .map(|(f, t, round)| {
            (
                BlockRange {
                    from: f as u64,
                    to: t as u64,
                },
                round,
            )
        })
        .collect())
}

/// The jobs of planned `ranges` of one backfill, ready for [`enqueue_batches`].
pub fn batch_jobs(
    chain: &ChainName,
    backfill_id: Uuid,
    ranges: impl IntoIterator<Item = (BlockRange, i32)>,
) -> Vec<(BatchJob, i32)> {
    ranges
        .into_iter()
        .map(|(range, round)| {
            (
                BatchJob {
                    batch_id: BatchId::new(chain, range).to_string(),
                    chain: chain.clone(),
                    range,
                    backfill_id,
                },
                round,
            )
        })
        .collect()
}

/// Records the bound of every lane (the leader does, when elected), so every process that pushes
/// keeps to the same bound.
pub async fn set_queue_bounds(pool: &PgPool, bounds: &[(Lane, u64)]) -> Result<(), sqlx::Error> {
    for (lane, bound) in bounds {
        sqlx::query(
            "INSERT INTO queue_bounds (lane, max_queued) VALUES ($1, $2) \
             ON CONFLICT (lane) DO UPDATE SET max_queued = EXCLUDED.max_queued, updated_at = now()",
        )
        .bind(lane.as_str())
        .bind((*bound).max(1) as i64)
        .execute(pool)
        .await?;
    }
    Ok(())
}

/// The bound of `lane` (as the leader recorded it, else [`DEFAULT_QUEUE_BOUND`]).
pub async fn queue_bound(conn: &mut PgConnection, lane: Lane) -> Result<u64, sqlx::Error> {
    let bound: Option<(i64,)> =
        sqlx::query_as("SELECT max_queued FROM queue_bounds WHERE lane = $1")
            .bind(lane.as_str())
            .fetch_optional(conn)
            .await?;
    Ok(bound.map_or(DEFAULT_QUEUE_BOUND, |(b,)| b.max(1) as u64))
}

/// The gate: pushes as many of `jobs` (planned batches of `lane`, in the order given) as the
/// lane's bound leaves room for, and marks them queued. Returns how many it pushed; the others
/// stay planned. Gate passes of one lane are serialised, so concurrent pushers never overshoot.
pub async fn enqueue_batches(
    pool: &PgPool,
    queue: &JobQueue<BatchJob>,
    lane: Lane,
    jobs: Vec<(BatchJob, i32)>,
) -> Result<usize, EnqueueError> {
    if jobs.is_empty() {
        return Ok(0);
    }
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('blockfill.gate'), hashtext($1))")
        .bind(lane.as_str())
        .execute(&mut *tx)
        .await?;
    let bound = queue_bound(&mut tx, lane).await?;
    let (in_db,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM batches WHERE lane = $1 AND status IN ('queued', 'running')",
    )
    .bind(lane.as_str())
    .fetch_one(&mut *tx)
    .await?;
    let in_redis = queue.depth().await?.pending();
    let room = bound.saturating_sub((in_db.max(0) as u64).max(in_redis)) as usize;
    let waiting = jobs.len().saturating_sub(room);
    let fed: Vec<(BatchJob, i32)> = jobs.into_iter().take(room).collect();
    if fed.is_empty() {
        return Ok(0);
    }
    let ids: Vec<String> = fed.iter().map(|(j, _)| j.batch_id.clone()).collect();
    let tasks: Vec<(String, BatchJob)> = fed
        .into_iter()
        .map(|(job, round)| (job.task_id(round), job))
        .collect();
    queue.push_many(tasks).await?;
    sqlx::query(
        "UPDATE batches SET status = 'queued', queued_at = now() WHERE id = ANY($1) AND status = 'planned'",
    )
    .bind(&ids)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    metrics::counter!("blockfill_batches_queued_total", "lane" => lane.as_str())
        .increment(ids.len() as u64);
    if waiting > 0 {
        tracing::debug!(target: "blockfill::queue", lane = lane.as_str(), pushed = ids.len(), waiting, bound, "queue at its bound; the rest waits planned");
    }
    Ok(ids.len())
}

/// Feeds planned batches of `lane` (of one backfill, or of every backfill of the lane) through
/// the gate, lowest first, at most the lane's bound per call. Returns how many were pushed.
pub async fn feed_planned(
    pool: &PgPool,
    queue: &JobQueue<BatchJob>,
    lane: Lane,
    backfill_id: Option<Uuid>,
) -> Result<usize, EnqueueError> {
    let bound = {
        let mut conn = pool.acquire().await?;
        queue_bound(&mut conn, lane).await?
    };
    let rows: Vec<BatchRow> = sqlx::query_as(
        "SELECT id, chain, from_block, to_block, backfill_id, queue_round FROM batches \
         WHERE lane = $1 AND status = 'planned' AND ($2::uuid IS NULL OR backfill_id = $2) \
         ORDER BY from_block LIMIT $3",
    )
    .bind(lane.as_str())
    .bind(backfill_id)
    .bind(bound as i64)
    .fetch_all(pool)
    .await?;
    let jobs: Vec<(BatchJob, i32)> = rows.into_iter().filter_map(job_from_row).collect();
    enqueue_batches(pool, queue, lane, jobs).await
}

/// A batch row as read for queueing (`id, chain, from_block, to_block, backfill_id,
/// queue_round`), as its job and queue round; `None` for a row whose chain or range is invalid.
pub type BatchRow = (String, String, i64, i64, Uuid, i32);

/// The job of a [`BatchRow`], with its queue round.
pub fn job_from_row(
    (id, chain, from, to, backfill_id, round): BatchRow,
) -> Option<(BatchJob, i32)> {
    Some((
        BatchJob {
            batch_id: id,
            chain: ChainName::parse(&chain).ok()?,
            range: BlockRange::new(from as u64, to as u64).ok()?,
            backfill_id,
        },
        round,
    ))
}
