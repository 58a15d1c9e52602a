//! The reconciler: the leader's repair loop, every 2 s. It resumes scheduler generations that stopped
//! making progress (a dead orchestrator, a flushed Redis), re-feeds batches PostgreSQL says are
//! planned, queued or running but Redis does not hold (through the gate, so never past a bound),
//! removes finished jobs from every queue, and compacts old live batch rows once a minute.

use std::time::Duration;

use blockfill_activities::{
    BatchJob, SchedulerJob,
    plan::{Lane, enqueue_batches},
    store::{batches::QueueableRow, chains, reconcile},
};
use uuid::Uuid;

use crate::{compaction, context::AppContext, scheduler::SchedulerError};

/// How long queued or running batches may be missing from Redis before the reconciler re-feeds
/// them, and how long a scheduler generation may make no progress before it is resumed.
pub const RECONCILE_GRACE: Duration = Duration::from_secs(5);
/// How often the reconciler runs.
const RECONCILE_INTERVAL: Duration = Duration::from_secs(2);

/// Runs the reconciler until `ctx.shutdown` (the leader term's token).
pub async fn run(ctx: AppContext) {
    let mut ticker = tokio::time::interval(RECONCILE_INTERVAL);
    let mut next_compaction = tokio::time::Instant::now() + compaction::COMPACTION_INTERVAL;
    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if let Err(e) = resume_backfills(&ctx, RECONCILE_GRACE).await {
            tracing::warn!(target: "blockfill::reconciler", error = %e, "resuming stalled schedulers failed");
        }
        match refeed_lost_batches(&ctx, RECONCILE_GRACE).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::warn!(target: "blockfill::reconciler", refed = n, "re-fed batches missing from Redis")
            }
            Err(e) => {
                tracing::warn!(target: "blockfill::reconciler", error = %e, "re-feeding lost batches failed")
            }
        }
        // Finished jobs of every queue leave Redis.
        if let Err(e) = vacuum(&ctx).await {
            tracing::warn!(target: "blockfill::reconciler", error = %e, "queue vacuum failed");
        }
        if tokio::time::Instant::now() >= next_compaction {
            next_compaction = tokio::time::Instant::now() + compaction::COMPACTION_INTERVAL;
            match compaction::compact_live_batches(&ctx.pool, compaction::KEEP_RECENT).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(target: "blockfill::compaction", deleted = n, "compacted done live batch rows")
                }
                Err(e) => {
                    tracing::warn!(target: "blockfill::compaction", error = %e, "compacting live batch rows failed")
                }
            }
        }
    }
}

/// Pushes the latest generation of every unfinished backfill whose scheduler made no progress for
/// `stalled_after` (or of all of them when `stalled_after` is zero, as when a leader is elected),
/// under a fresh task id. A generation touches its checkpoint at least every few hundred
/// milliseconds while it runs, so one silent for `stalled_after` lost its job (a dead
/// orchestrator, a flushed Redis). Duplicates are harmless: generations serialise on their
/// checkpoint row and a stale one stops at once.
pub async fn resume_backfills(
    ctx: &AppContext,
    stalled_after: Duration,
) -> Result<usize, SchedulerError> {
    let rows = reconcile::latest_active_generations(&ctx.pool).await?;
    let mut resumed = 0;
    for (backfill_id, generation) in rows {
        let stalled =
            reconcile::generation_stalled(&ctx.pool, backfill_id, generation, stalled_after)
                .await?;
        if stalled_after.is_zero() || stalled == Some(true) {
            let job = SchedulerJob {
                backfill_id,
                generation,
                trace_context: None,
            };
            let task_id = format!("{}:resume:{}", job.task_id(), Uuid::now_v7());
            ctx.scheduler.push(&task_id, job, None).await?;
            tracing::info!(target: "blockfill::scheduler", %backfill_id, generation, "resumed backfill scheduler");
            resumed += 1;
        }
    }
    Ok(resumed)
}

/// Re-feeds batches that PostgreSQL says are planned, queued or running but that Redis does not
/// hold (a flush, a restart, a job dropped after its retries while the database was away, a crash
/// between planning and pushing), once they have been in that state for `grace`. Each gets a new queue round, hence a fresh task id.
/// Returns how many were re-fed. Bounded: at most 1,000 rows per pass.
pub async fn refeed_lost_batches(
    ctx: &AppContext,
    grace: Duration,
) -> Result<usize, SchedulerError> {
    let mut count = 0;
    for lane in Lane::ALL {
        count += refeed_lane(ctx, lane, grace).await?;
    }
    Ok(count)
}

/// Removes finished jobs from every chain's batch queues and the scheduler's queue.
async fn vacuum(ctx: &AppContext) -> Result<usize, SchedulerError> {
    let chains = chains::names(&ctx.pool).await?;
    Ok(ctx.queues.vacuum(&chains).await? + ctx.scheduler.vacuum().await?)
}

async fn refeed_lane(
    ctx: &AppContext,
    lane: Lane,
    grace: Duration,
) -> Result<usize, SchedulerError> {
    let rows = reconcile::unfinished_batches(&ctx.pool, lane, grace).await?;
    let mut jobs: Vec<(BatchJob, i32)> = rows
        .into_iter()
        .filter_map(QueueableRow::into_job)
        .collect();
    // One Redis call per chain's queue; the sort is stable, so each chain stays lowest first.
    jobs.sort_by(|a, b| a.0.chain.cmp(&b.0.chain));
    let mut lost: Vec<String> = Vec::new();
    for chain_jobs in jobs.chunk_by(|a, b| a.0.chain == b.0.chain) {
        let queue = ctx.queues.get(lane, &chain_jobs[0].0.chain);
        let task_ids: Vec<String> = chain_jobs
            .iter()
            .map(|(job, round)| job.task_id(*round))
            .collect();
        let live = queue.live_tasks(&task_ids).await?;
        lost.extend(
            chain_jobs
                .iter()
                .zip(live)
                .filter(|(_, live)| !live)
                .map(|((job, _), _)| job.batch_id.clone()),
        );
    }
    if lost.is_empty() {
        return Ok(0);
    }
    // Lost work is planned again in a new round (a fresh task id); the gate pushes what fits,
    // the rest waits planned for the next pass.
    let mut tx = ctx.fenced_tx().await?;
    let renewed = reconcile::renew_lost(&mut tx, &lost).await?;
    tx.commit().await?;
    let requeue: Vec<(BatchJob, i32)> = jobs
        .into_iter()
        .filter_map(|(job, _)| {
            renewed
                .iter()
                .find(|(id, _)| *id == job.batch_id)
                .map(|(_, round)| (job, *round))
        })
        .collect();
    let count = enqueue_batches(&ctx.pool, &ctx.queues, lane, requeue).await?;
    metrics::counter!("blockfill_batches_refed_total", "lane" => lane.as_str())
        .increment(count as u64);
    Ok(count)
}
