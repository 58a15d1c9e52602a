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
//! - The gate pushes only batches of **active** backfills (planned or running): those of a paused
//!   or finished backfill stay `planned`, those of a cancelled one end `cancelled`. Since every
//!   push goes through it, this is what makes pause and cancel hold for retries, split halves,
//!   the reconciler's re-feed and requeues alike.
//! - **Priority**: a pass leaves room for the planned batches of higher-priority active backfills
//!   of the same chain and lane before it pushes lower ones (and pushes the higher ones of its
//!   own jobs first). The scheduler of a lower-priority backfill also stops planning while a
//!   higher one wants room (`orchestrator::scheduler`), so an urgent backfill waits at most for
//!   the jobs already in the queue (at most the lane's bound).
//! - [`withdraw_backfill`] is the gate's inverse (pause and cancel): under the gate's lock it
//!   takes a backfill's waiting jobs out of Redis and marks exactly those `planned` or
//!   `cancelled`.

use sea_orm::sqlx::{self, PgPool};
use uuid::Uuid;

pub use crate::store::Lane;
use crate::{
    batch_queues::BatchQueues,
    queue::{JobQueue, QueueError},
    store::{BackfillStatus, BatchStatus, batches, control, queue_bounds},
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
                    trace_context: None,
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
    mut jobs: Vec<(BatchJob, i32)>,
) -> Result<usize, EnqueueError> {
    // Jobs go out in the trace of whatever pushes them (a scheduler generation, a split).
    if let Some(context) = crate::telemetry::traces::current() {
        for (job, _) in jobs
            .iter_mut()
            .filter(|(job, _)| job.trace_context.is_none())
        {
            job.trace_context = Some(context.clone());
        }
    }
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
    // Read under the lock: a pause or cancel commits before this pass looks, or after it pushed
    // (and then withdraws what it pushed).
    let jobs = admit(&mut tx, lane, chain, jobs).await?;
    if jobs.is_empty() {
        tx.commit().await?;
        return Ok(0);
    }
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
    let total = jobs.len();
    let jobs = yield_to_higher(&mut tx, lane, chain, jobs).await?;
    let fed = within_room(jobs, room, &higher_waiting(&mut tx, lane, chain).await?);
    let waiting = total - fed.len();
    if fed.is_empty() {
        tx.commit().await?;
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

/// A gate pass's job with its backfill's priority.
type Admitted = (BatchJob, i32, i32);

/// Keeps the jobs of active backfills, highest priority first (stable: each backfill's order
/// stays); marks those of cancelled backfills cancelled; leaves the others (paused, finished)
/// planned.
async fn admit(
    tx: &mut sqlx::PgConnection,
    lane: Lane,
    chain: &ChainName,
    jobs: Vec<(BatchJob, i32)>,
) -> Result<Vec<Admitted>, sqlx::Error> {
    let mut ids: Vec<Uuid> = jobs.iter().map(|(j, _)| j.backfill_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let states = control::states(tx, &ids).await?;
    let state = |id: Uuid| states.iter().find(|(b, _, _)| *b == id);
    let mut admitted = Vec::with_capacity(jobs.len());
    let mut cancelled = Vec::new();
    let mut held = 0usize;
    for (job, round) in jobs {
        match state(job.backfill_id) {
            Some((_, status, priority)) if status.is_active() => {
                admitted.push((job, round, *priority));
            }
            Some((_, BackfillStatus::Cancelled, _)) => cancelled.push(job.batch_id),
            _ => held += 1,
        }
    }
    if !cancelled.is_empty() {
        control::cancel_planned(tx, &cancelled).await?;
    }
    if held + cancelled.len() > 0 {
        tracing::debug!(target: "blockfill::queue", lane = lane.as_str(), %chain, held, cancelled = cancelled.len(), "gate refused batches of backfills that are not active");
    }
    admitted.sort_by_key(|(_, _, priority)| std::cmp::Reverse(*priority));
    Ok(admitted)
}

/// Drops the jobs of priorities below an active backfill of the chain that still wants room
/// (blocks left to plan, or planned batches waiting): an urgent backfill gets the room a bulk one
/// frees as its batches finish, even before it planned anything. The live lane has one backfill
/// per chain: nothing to weigh.
async fn yield_to_higher(
    tx: &mut sqlx::PgConnection,
    lane: Lane,
    chain: &ChainName,
    jobs: Vec<Admitted>,
) -> Result<Vec<Admitted>, sqlx::Error> {
    if lane == Lane::Live {
        return Ok(jobs);
    }
    let mut priorities: Vec<i32> = jobs.iter().map(|(_, _, p)| *p).collect();
    priorities.dedup(); // sorted already (highest first)
    let mut yielding = Vec::new();
    for priority in priorities {
        if control::higher_priority_waiting(tx, chain.as_str(), priority).await? {
            yielding.push(priority);
        }
    }
    Ok(jobs
        .into_iter()
        .filter(|(_, _, p)| !yielding.contains(p))
        .collect())
}

/// Planned batches waiting per priority (highest first) in `chain`'s queue of `lane`; none for
/// the live lane (one backfill per chain, so no priorities to weigh).
async fn higher_waiting(
    tx: &mut sqlx::PgConnection,
    lane: Lane,
    chain: &ChainName,
) -> Result<Vec<(i32, i64)>, sqlx::Error> {
    match lane {
        Lane::Live => Ok(Vec::new()),
        Lane::Backfill => control::planned_by_priority(tx, lane, chain.as_str()).await,
    }
}

/// The jobs (highest priority first) that fit in `room`, leaving room for the planned batches of
/// higher priorities in `waiting` that this pass does not push.
fn within_room(jobs: Vec<Admitted>, room: usize, waiting: &[(i32, i64)]) -> Vec<(BatchJob, i32)> {
    let mut fed: Vec<(BatchJob, i32)> = Vec::new();
    let mut fed_higher = 0usize; // pushed in this pass with a priority above the current one
    let mut current = None;
    for (job, round, priority) in jobs {
        if current != Some(priority) {
            current = Some(priority);
            fed_higher = fed.len();
        }
        let higher: usize = waiting
            .iter()
            .filter(|(p, _)| *p > priority)
            .map(|(_, n)| (*n).max(0) as usize)
            .sum();
        let reserved = higher.saturating_sub(fed_higher);
        if fed.len() + reserved >= room {
            continue;
        }
        fed.push((job, round));
    }
    fed
}

/// Takes backfill `backfill_id`'s waiting jobs out of its chain's queue of the backfill lane and
/// marks exactly the withdrawn batches `to` (`planned` when pausing, `cancelled` when
/// cancelling; cancelling also ends its planned batches), under the gate's lock so no
/// concurrent pass pushes meanwhile. Jobs a worker already took are left alone: they run (and
/// are written), or the worker hands them back (`crate::activity`). The backfill itself is
/// marked paused (`to` planned) or cancelled in the same transaction first. Returns how many
/// batches changed, `None` when the backfill's state did not allow the transition (changed
/// meanwhile; nothing was done).
pub async fn withdraw_backfill(
    pool: &PgPool,
    queues: &BatchQueues,
    chain: &ChainName,
    backfill_id: Uuid,
    to: BatchStatus,
) -> Result<Option<u64>, EnqueueError> {
    let mut tx = pool.begin().await?;
    batches::lock_gate(&mut tx, Lane::Backfill, chain).await?;
    let marked = if to == BatchStatus::Cancelled {
        control::mark_cancelled(&mut tx, backfill_id).await?
    } else {
        control::mark_paused(&mut tx, backfill_id).await?
    };
    if !marked {
        return Ok(None);
    }
    let queued = control::queued_tasks(&mut tx, backfill_id).await?;
    let task_ids: Vec<String> = queued.iter().map(|(_, task)| task.clone()).collect();
    let withdrawn = queues
        .get(Lane::Backfill, chain)
        .withdraw(&task_ids)
        .await?;
    let ids: Vec<String> = queued
        .into_iter()
        .zip(withdrawn)
        .filter(|(_, w)| *w)
        .map(|((id, _), _)| id)
        .collect();
    let changed = control::settle_withdrawn(&mut tx, backfill_id, &ids, to).await?;
    tx.commit().await?;
    tracing::info!(target: "blockfill::queue", %chain, %backfill_id, withdrawn = ids.len(), changed, to = to.as_str(), "withdrew a backfill's waiting batches");
    Ok(Some(changed))
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
