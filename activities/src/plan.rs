//! Planning batches and the one gate every push goes through.
//!
//! - [`crate::store::batches::plan`] inserts batch rows (unique per range) in the caller's
//!   transaction and says which are new work; nothing is pushed there. [`batch_jobs`] makes
//!   their jobs.
//! - [`enqueue_batches`] is the **gate**: whatever puts a batch job in Redis (scheduler planning,
//!   the live lane, the reconciler's re-feed, retries, requeues, split halves, reorg repairs)
//!   pushes through it. It keeps each lane's queue at or under its bound (set by the leader in
//!   `queue_bounds`); jobs that do not fit stay `planned` in PostgreSQL and are fed later, as room
//!   frees, by whoever owns them (the scheduler, the head tracker, the reconciler).

use sea_orm::sqlx::{self, PgPool};
use uuid::Uuid;

pub use crate::store::Lane;
use crate::{
    queue::{JobQueue, QueueError},
    store::{BatchStatus, batches, queue_bounds},
    types::{BatchId, BatchJob, BlockRange, ChainName},
};

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
    batches::lock_gate(&mut tx, lane).await?;
    let bound = queue_bounds::get(&mut tx, lane).await?;
    let in_db =
        batches::count_in(&mut tx, lane, &[BatchStatus::Queued, BatchStatus::Running]).await?;
    let in_redis = queue.depth().await?.pending();
    let room = bound.saturating_sub(in_db.max(in_redis)) as usize;
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
    batches::mark_queued(&mut tx, &ids).await?;
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
        queue_bounds::get(&mut conn, lane).await?
    };
    let jobs: Vec<(BatchJob, i32)> = batches::planned(pool, lane, backfill_id, bound)
        .await?
        .into_iter()
        .filter_map(batches::QueueableRow::into_job)
        .collect();
    enqueue_batches(pool, queue, lane, jobs).await
}
