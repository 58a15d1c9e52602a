//! Planning batches and the one gate every push goes through.
//!
//! - [`crate::store::batches::plan`] inserts batch rows (unique per range) in the caller's
//!   transaction and says which are new work; nothing is pushed there. [`batch_jobs`] makes
//!   their jobs.
//! - [`enqueue_batches`] is the **gate**: whatever puts a batch job in Redis (scheduler planning,
//!   the live lane, the reconciler's re-feed, retries, requeues, split halves, reorg repairs)
//!   pushes through it. It keeps each chain's queue of a lane ([`BatchQueues`]) at or under the
//!   lane's bound (set by the leader in `queue_bounds`); jobs that do not fit stay `planned` in PostgreSQL and are fed later, as room
//!   frees, by whoever owns them (the scheduler, the head tracker, the reconciler).

use sea_orm::sqlx::{self, PgPool};
use uuid::Uuid;

pub use crate::store::Lane;
use crate::{
    batch_queues::BatchQueues,
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
/// bound leaves room for in their chain's queue of the lane, and marks them queued. Returns how
/// many it pushed; the others stay planned. Gate passes of one lane and chain are serialised, so
/// concurrent pushers never overshoot.
pub async fn enqueue_batches(
    pool: &PgPool,
    queues: &BatchQueues,
    lane: Lane,
    jobs: Vec<(BatchJob, i32)>,
) -> Result<usize, EnqueueError> {
    let mut by_chain: Vec<(ChainName, Vec<(BatchJob, i32)>)> = Vec::new();
    for (job, round) in jobs {
        match by_chain.iter_mut().find(|(chain, _)| *chain == job.chain) {
            Some((_, jobs)) => jobs.push((job, round)),
            None => by_chain.push((job.chain.clone(), vec![(job, round)])),
        }
    }
    let mut pushed = 0;
    for (chain, jobs) in by_chain {
        pushed += enqueue_chain(pool, &queues.get(lane, &chain), lane, &chain, jobs).await?;
    }
    Ok(pushed)
}

/// The gate of one chain's queue of `lane`.
async fn enqueue_chain(
    pool: &PgPool,
    queue: &JobQueue<BatchJob>,
    lane: Lane,
    chain: &ChainName,
    jobs: Vec<(BatchJob, i32)>,
) -> Result<usize, EnqueueError> {
    if jobs.is_empty() {
        return Ok(0);
    }
    let mut tx = pool.begin().await?;
    batches::lock_gate(&mut tx, lane, chain).await?;
    let bound = queue_bounds::get(&mut tx, lane).await?;
    let in_db = batches::count_in(
        &mut tx,
        lane,
        chain,
        &[BatchStatus::Queued, BatchStatus::Running],
    )
    .await?;
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
        tracing::debug!(target: "blockfill::queue", lane = lane.as_str(), %chain, pushed = ids.len(), waiting, bound, "queue at its bound; the rest waits planned");
    }
    Ok(ids.len())
}

/// Feeds planned batches of `lane` (of one backfill, or of every chain's backfills of the lane)
/// through the gate, lowest first, at most the lane's bound per chain and call. Returns how many
/// were pushed.
pub async fn feed_planned(
    pool: &PgPool,
    queues: &BatchQueues,
    lane: Lane,
    backfill_id: Option<Uuid>,
) -> Result<usize, EnqueueError> {
    let bound = {
        let mut conn = pool.acquire().await?;
        queue_bounds::get(&mut conn, lane).await?
    };
    // Only chains with planned work cost a query (the head tracker calls this every poll).
    let chains = match backfill_id {
        Some(_) => vec![None],
        None => batches::chains_with_planned(pool, lane)
            .await?
            .into_iter()
            .map(Some)
            .collect(),
    };
    let mut pushed = 0;
    for chain in chains {
        let jobs: Vec<(BatchJob, i32)> =
            batches::planned(pool, lane, chain.as_deref(), backfill_id, bound)
                .await?
                .into_iter()
                .filter_map(batches::QueueableRow::into_job)
                .collect();
        pushed += enqueue_batches(pool, queues, lane, jobs).await?;
    }
    Ok(pushed)
}
