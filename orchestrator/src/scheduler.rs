//! The scheduler: a workflow-style job per backfill. Each generation plans bounded steps of batches
//! (unique rows first, then pushes only the rows that were new), keeps the batch queue at or under
//! its bound, records its cursor in PostgreSQL after every step, and continues as new (a fresh job
//! carrying the next generation) after `generation_batches` batches or `generation_timeout`.
//! A crash anywhere resumes from the cursor: rows decide what is planned, never Redis.
//!
//! Control (issue 12): a generation that finds its backfill paused or cancelled stops without
//! continuing as new; [`resume_backfill`] starts a fresh generation from the checkpoint.
//! [`pause_backfill`] and [`cancel_backfill`] withdraw the waiting jobs through the gate
//! ([`blockfill_activities::plan::withdraw_backfill`]). Priority: a backfill plans only while no
//! active backfill of its chain with a higher priority still wants room, and counts against its
//! room only the planned batches of backfills of its priority or higher, so an urgent backfill
//! gets the room a bulk one frees as its batches finish.
//!
//! Batch sizes: each step sizes its batches by the density of the chain's stored blocks just
//! below the cursor ([`batch_blocks`]): a sparse chain gets batches of up to ten times its
//! `batch_size`, so the fixed cost of a batch (its queue round trip, its transaction and its
//! bookkeeping rows) is paid for more blocks.

use std::time::{Duration, Instant};

use blockfill_activities::{
    BlockRange, ChainName, SchedulerJob,
    fence::FenceError,
    plan::withdraw_backfill,
    plan::{EnqueueError, Lane, batch_jobs, enqueue_batches, feed_planned},
    queue::JobFailure,
    ranges,
    store::{
        BackfillMode, BackfillStatus, BatchStatus, backfills, batches, blocks, chains, checkpoints,
        control::{self, Transition},
        coverage,
    },
    telemetry,
};
use sea_orm::sqlx;
use serde_json::json;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::context::AppContext;

/// Batches planned in one step (one transaction) at most.
const MAX_STEP_BATCHES: u64 = 200;
/// How long a generation sleeps while the queue is full or batches are still running.
const IDLE_WAIT: Duration = Duration::from_millis(200);
/// A batch grown for a sparse chain holds at most this many times the chain's `batch_size`.
const MAX_BATCH_GROWTH: u64 = 10;
/// ... and never more blocks than this.
const MAX_BATCH_BLOCKS: u64 = 10_000;

/// Blocks a batch should hold on a chain whose `batch_size` is `base` and whose recent blocks
/// wrote `rows_per_block` rows each, aiming at `target_rows` a batch: never fewer than `base`
/// (dense chains keep the operator's size), at most [`MAX_BATCH_GROWTH`] times it and
/// [`MAX_BATCH_BLOCKS`], rounded down to a multiple of `base` so batches stay aligned. Without a
/// measured density, or with `target_rows` zero, `base`.
pub fn batch_blocks(base: u64, rows_per_block: Option<f64>, target_rows: u64) -> u64 {
    let base = base.max(1);
    let Some(density) = rows_per_block.filter(|d| d.is_finite() && *d > 0.0) else {
        return base;
    };
    if target_rows == 0 {
        return base;
    }
    let wanted = (target_rows as f64 / density).floor() as u64;
    let ceiling = base
        .saturating_mul(MAX_BATCH_GROWTH)
        .min(MAX_BATCH_BLOCKS.max(base));
    let blocks = wanted.clamp(base, ceiling);
    (blocks / base).max(1) * base
}

/// Times a finished backfill whose range is still not covered plans the missing blocks again
/// before it is marked failed.
const MAX_RESCANS: i32 = 3;

/// Why a scheduler step failed.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// PostgreSQL failed.
    #[error("scheduler database error: {0}")]
    Database(#[from] sqlx::Error),
    /// sea-orm failed.
    #[error("scheduler database error: {0}")]
    Orm(#[from] sea_orm::DbErr),
    /// Redis failed.
    #[error("scheduler queue error: {0}")]
    Queue(#[from] blockfill_activities::queue::QueueError),
    /// Queueing batches failed.
    #[error("scheduler queue error: {0}")]
    Enqueue(#[from] EnqueueError),
    /// The backfill's chain is gone or malformed.
    #[error("backfill {0} refers to an unknown or invalid chain")]
    BadChain(Uuid),
    /// This orchestrator no longer leads: the write was refused.
    #[error(transparent)]
    Fenced(#[from] FenceError),
}

impl SchedulerError {
    /// Whether this orchestrator was deposed (its term's writes are refused for good).
    pub fn is_deposed(&self) -> bool {
        matches!(self, Self::Fenced(FenceError::Deposed { .. }))
    }
}

/// Records a new backfill of `[from, to]` (`mode` is `range` or `gaps`) with `priority` and
/// starts its scheduler.
pub async fn create_backfill(
    ctx: &AppContext,
    chain: &ChainName,
    mode: BackfillMode,
    (from, to): (u64, u64),
    priority: i32,
) -> Result<Uuid, SchedulerError> {
    let id = backfills::create(&ctx.pool, chain, mode, from, to).await?;
    if priority != 0 {
        let mut conn = ctx.pool.acquire().await?;
        control::set_priority(&mut conn, id, priority).await?;
    }
    start_backfill(ctx, id, from).await?;
    Ok(id)
}

/// Starts a new backfill's scheduler: generation 0 at `from`.
pub async fn start_backfill(
    ctx: &AppContext,
    backfill_id: Uuid,
    from: u64,
) -> Result<(), SchedulerError> {
    checkpoints::start(&ctx.pool, backfill_id, from).await?;
    let job = SchedulerJob {
        backfill_id,
        generation: 0,
        trace_context: telemetry::traces::current(),
    };
    ctx.scheduler.push(&job.task_id(), job, None).await?;
    Ok(())
}

/// The apalis handler of scheduler jobs.
pub async fn handle_scheduler_job(job: SchedulerJob, ctx: AppContext) -> Result<(), JobFailure> {
    // One span per generation, in the trace of the request (or generation) that pushed it.
    let span = tracing::info_span!(
        "scheduler_generation",
        backfill_id = %job.backfill_id,
        generation = job.generation,
        trace_id = tracing::field::Empty,
    );
    // A job pushed without one (the reconciler's, a new leader's) continues the trace the
    // backfill was created in.
    let parent = match &job.trace_context {
        Some(trace) => Some(trace.clone()),
        None if !telemetry::traces::exporting() => None,
        None => backfills::trace_context(&ctx.pool, job.backfill_id)
            .await
            .unwrap_or_default(),
    };
    telemetry::traces::continue_trace(&span, parent.as_ref());
    run_generation(&ctx, &job).instrument(span).await.map_err(|e| {
        tracing::warn!(target: "blockfill::scheduler", backfill_id = %job.backfill_id, generation = job.generation, error = %e, "scheduler generation failed");
        if e.is_deposed() {
            JobFailure::Abort(e.to_string())
        } else {
            JobFailure::Retry(e.to_string())
        }
    })
}

struct Plan {
    chain: ChainName,
    range: BlockRange,
    /// The chain's `batch_size`.
    base_batch_size: u64,
    /// Blocks of the batches the next step plans ([`batch_blocks`]).
    batch_size: u64,
    /// Plans only blocks the coverage ledger lacks (gaps mode, or a rescan of a range).
    gaps_only: bool,
}

async fn load_plan(
    ctx: &AppContext,
    backfill_id: Uuid,
) -> Result<Option<(Plan, BackfillStatus)>, SchedulerError> {
    let Some(backfill) = backfills::find(&ctx.db, backfill_id).await? else {
        return Ok(None);
    };
    let chain_row = chains::find(&ctx.db, &backfill.chain)
        .await?
        .ok_or(SchedulerError::BadChain(backfill_id))?;
    let chain =
        ChainName::parse(&backfill.chain).map_err(|_| SchedulerError::BadChain(backfill_id))?;
    let range = BlockRange::new(backfill.from_block as u64, backfill.to_block as u64)
        .map_err(|_| SchedulerError::BadChain(backfill_id))?;
    Ok(Some((
        Plan {
            chain,
            gaps_only: backfill.mode == BackfillMode::Gaps || backfill.rescans > 0,
            range,
            base_batch_size: chain_row.batch_size.max(1) as u64,
            batch_size: chain_row.batch_size.max(1) as u64,
        },
        backfill.status,
    )))
}

async fn run_generation(ctx: &AppContext, job: &SchedulerJob) -> Result<(), SchedulerError> {
    let Some((mut plan, status)) = load_plan(ctx, job.backfill_id).await? else {
        tracing::warn!(target: "blockfill::scheduler", "scheduler job for an unknown backfill dropped");
        return Ok(());
    };
    if !status.is_active() {
        return Ok(());
    }
    let Some((latest, _)) = checkpoints::latest(&ctx.pool, job.backfill_id).await? else {
        return Ok(());
    };
    if job.generation < latest {
        // A stale or redelivered generation: make sure the latest one is queued, then stop.
        let next = SchedulerJob {
            backfill_id: job.backfill_id,
            generation: latest,
            trace_context: telemetry::traces::current(),
        };
        ctx.scheduler.push(&next.task_id(), next, None).await?;
        return Ok(());
    }
    let started = Instant::now();
    let mut planned_here = 0u64;
    loop {
        if ctx.shutdown.is_cancelled() {
            break;
        }
        checkpoints::touch(&ctx.pool, job.backfill_id, job.generation, &ctx.instance).await?;
        if !still_active(ctx, job.backfill_id).await? {
            // Paused or cancelled (or finished by another copy): stop without continuing as
            // new; a resume starts a fresh generation.
            return Ok(());
        }
        let (Some((latest, cursor)), over_time) = (
            checkpoints::latest(&ctx.pool, job.backfill_id).await?,
            started.elapsed() >= ctx.settings.generation_timeout,
        ) else {
            return Ok(());
        };
        if latest > job.generation {
            return Ok(()); // another copy of this generation already continued as new
        }
        // Batches left planned (the queue was full, a crash before the push, a retry, split
        // halves) go through the gate as room frees.
        feed_planned(
            &ctx.pool,
            &ctx.queues,
            Lane::Backfill,
            Some(job.backfill_id),
        )
        .await?;
        if cursor as u64 > plan.range.to {
            if finish_if_complete(ctx, job, &mut plan).await? {
                return Ok(());
            }
            if over_time {
                break;
            }
            tokio::time::sleep(IDLE_WAIT).await;
            continue;
        }
        plan.batch_size = batch_blocks(
            plan.base_batch_size,
            blocks::rows_per_block(&ctx.pool, plan.chain.as_str(), cursor).await?,
            ctx.settings.batch_target_rows,
        );
        let want = MAX_STEP_BATCHES.min(
            ctx.settings
                .generation_batches
                .saturating_sub(planned_here)
                .max(1),
        );
        let planned = match plan_step(ctx, job, &plan, want).await? {
            Step::Stale => return Ok(()),
            Step::QueueFull => {
                if over_time {
                    break;
                }
                tokio::time::sleep(IDLE_WAIT).await;
                continue;
            }
            Step::Planned(planned) => planned,
        };
        push_batches(ctx, job.backfill_id, &plan.chain, &planned).await?;
        planned_here += planned.len() as u64;
        if planned_here >= ctx.settings.generation_batches || over_time {
            break;
        }
    }
    continue_as_new(ctx, job).await
}

/// Whether backfill `id` is still active (planned or running).
async fn still_active(ctx: &AppContext, id: Uuid) -> Result<bool, SchedulerError> {
    let mut conn = ctx.pool.acquire().await?;
    Ok(control::state(&mut conn, id)
        .await?
        .is_some_and(|(status, _)| status.is_active()))
}

/// Batch jobs of `chain` in the backfill lane not yet finished, by PostgreSQL and by Redis; the
/// larger counts against the bound. In PostgreSQL: the queued and running ones, and the planned
/// ones of active backfills of `priority` or higher (a paused backfill's planned batches are not
/// queued, and a lower priority's wait behind this one's).
async fn pending_batches(
    ctx: &AppContext,
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    chain: &ChainName,
    priority: i32,
) -> Result<u64, SchedulerError> {
    let queued = batches::count_in(
        tx,
        Lane::Backfill,
        chain,
        &[BatchStatus::Queued, BatchStatus::Running],
    )
    .await?;
    let planned: i64 = control::planned_by_priority(tx, Lane::Backfill, chain.as_str())
        .await?
        .into_iter()
        .filter(|(p, _)| *p >= priority)
        .map(|(_, n)| n)
        .sum();
    let in_db = queued + planned.max(0) as u64;
    let in_redis = ctx
        .queues
        .get(Lane::Backfill, chain)
        .depth()
        .await?
        .pending();
    Ok(in_db.max(in_redis))
}

/// What one planning step did.
enum Step {
    /// This generation is no longer the latest.
    Stale,
    /// The queue is at its bound.
    QueueFull,
    /// These batches were planned, with their queue rounds (maybe none, when the window held
    /// nothing to do).
    Planned(Vec<(BlockRange, i32)>),
}

/// Plans up to `want` batches from the cursor in one transaction: inserts the batch rows (only new
/// ones, or ones finished under another backfill, come back), advances the cursor. Planning steps
/// of all backfills are serialised by an advisory lock, so the room left under the queue bound is
/// computed by one planner at a time and the bound holds with several schedulers running.
async fn plan_step(
    ctx: &AppContext,
    job: &SchedulerJob,
    plan: &Plan,
    want: u64,
) -> Result<Step, SchedulerError> {
    let mut tx = ctx.fenced_tx().await?;
    checkpoints::lock_planning(&mut tx).await?;
    let Some(cursor) = checkpoints::lock_cursor(&mut tx, job.backfill_id, job.generation).await?
    else {
        return Ok(Step::Stale);
    };
    if cursor > plan.range.to {
        return Ok(Step::Planned(Vec::new()));
    }
    let Some((status, priority)) = control::state(&mut tx, job.backfill_id).await? else {
        return Ok(Step::Stale);
    };
    if !status.is_active() {
        return Ok(Step::Stale); // paused or cancelled meanwhile: the generation stops
    }
    if control::higher_priority_waiting(&mut tx, plan.chain.as_str(), priority).await? {
        return Ok(Step::QueueFull); // a higher-priority backfill of the chain gets the room
    }
    let room = ctx
        .settings
        .max_queued_batches
        .saturating_sub(pending_batches(ctx, &mut tx, &plan.chain, priority).await?);
    if room == 0 {
        return Ok(Step::QueueFull);
    }
    let want = want.min(room);
    let window_end = plan
        .range
        .to
        .min(cursor.saturating_add(want.saturating_mul(plan.batch_size)) - 1);
    let window = BlockRange {
        from: cursor,
        to: window_end,
    };
    let candidates: Vec<BlockRange> = if plan.gaps_only {
        let covered = coverage::covered(&mut tx, &plan.chain, window).await?;
        ranges::gaps(&covered, window)
            .into_iter()
            .flat_map(|gap| ranges::aligned_batches(gap, plan.batch_size))
            .take(want as usize)
            .collect()
    } else {
        ranges::aligned_batches(window, plan.batch_size)
            .take(want as usize)
            .collect()
    };
    let next_cursor = if candidates.len() as u64 == want {
        candidates.last().map_or(window.to + 1, |b| b.to + 1)
    } else {
        window.to + 1
    };
    let planned = batches::plan(
        &mut tx,
        &plan.chain,
        job.backfill_id,
        Lane::Backfill,
        &candidates,
        false,
    )
    .await?;
    let blocks: u64 = planned.iter().map(|(r, _)| r.len()).sum();
    checkpoints::advance(
        &mut tx,
        job.backfill_id,
        job.generation,
        next_cursor,
        planned.len() as u64,
        &ctx.instance,
    )
    .await?;
    backfills::record_planned(&mut tx, job.backfill_id, planned.len() as u64, blocks).await?;
    tx.commit().await?;
    tracing::debug!(target: "blockfill::scheduler", cursor, next_cursor, planned = planned.len(), "planned a step");
    Ok(Step::Planned(planned))
}

/// Pushes planned batches through the gate (what does not fit stays planned and is fed by the
/// next loop of the generation).
async fn push_batches(
    ctx: &AppContext,
    backfill_id: Uuid,
    chain: &ChainName,
    planned: &[(BlockRange, i32)],
) -> Result<(), SchedulerError> {
    let jobs = batch_jobs(chain, backfill_id, planned.iter().copied());
    enqueue_batches(&ctx.pool, &ctx.queues, Lane::Backfill, jobs).await?;
    Ok(())
}

/// Marks the backfill completed (or failed) once every batch it owns is finished, freezing its
/// counts. Completed means its whole range is covered (quarantined blocks aside): when another
/// backfill's batches over the range are still running it waits for them, and when those failed
/// it plans the still uncovered blocks itself (a rescan, at most [`MAX_RESCANS`] times). Returns
/// whether it finished.
async fn finish_if_complete(
    ctx: &AppContext,
    job: &SchedulerJob,
    plan: &mut Plan,
) -> Result<bool, SchedulerError> {
    let backfill_id = job.backfill_id;
    let counts = batches::counts(&ctx.pool, backfill_id).await?;
    if counts.unfinished() > 0 {
        return Ok(false);
    }
    let failed = counts.get(BatchStatus::Failed);
    let mut last_error = None;
    if failed == 0 {
        let uncovered = {
            let mut conn = ctx.pool.acquire().await?;
            coverage::uncovered_blocks(&mut conn, &plan.chain, plan.range).await?
        };
        if uncovered > 0 {
            if batches::unfinished_overlap(&ctx.pool, &plan.chain, plan.range).await? {
                return Ok(false); // another backfill's batches over the range are running
            }
            if backfills::rescans(&ctx.pool, backfill_id).await? < MAX_RESCANS {
                rescan(ctx, job, plan, uncovered).await?;
                plan.gaps_only = true;
                return Ok(false);
            }
            last_error = Some(format!(
                "{uncovered} blocks of {} are still not covered after {MAX_RESCANS} rescans",
                plan.range
            ));
        }
    }
    // Done live batches compacted away (`crate::compaction`) still count.
    let (blocks_done, compacted_batches) = backfills::blocks_done(&ctx.pool, backfill_id).await?;
    // Quarantined blocks do not fail a backfill: they are listed, and can be retried.
    let status = if failed > 0 || last_error.is_some() {
        BackfillStatus::Failed
    } else {
        BackfillStatus::Completed
    };
    let final_counts = json!({
        "planned": 0, "queued": 0, "running": 0,
        "done": counts.get(BatchStatus::Done) + compacted_batches, "failed": failed,
        "split": counts.get(BatchStatus::Split), "quarantined": counts.get(BatchStatus::Quarantined),
        "blocks_done": blocks_done,
    });
    let mut tx = ctx.fenced_tx().await?;
    backfills::finish(&mut tx, backfill_id, status, final_counts, last_error).await?;
    tx.commit().await?;
    tracing::info!(target: "blockfill::scheduler", %backfill_id, %status, failed, "backfill finished");
    Ok(true)
}

/// Plans the uncovered blocks of the backfill's range again: its cursor goes back to the start
/// and, from now on, its steps plan only what the coverage ledger lacks.
async fn rescan(
    ctx: &AppContext,
    job: &SchedulerJob,
    plan: &Plan,
    uncovered: i64,
) -> Result<(), SchedulerError> {
    let mut tx = ctx.fenced_tx().await?;
    backfills::add_rescan(&mut tx, job.backfill_id).await?;
    checkpoints::rewind(&mut tx, job.backfill_id, job.generation, plan.range.from).await?;
    tx.commit().await?;
    tracing::warn!(target: "blockfill::scheduler", backfill_id = %job.backfill_id, uncovered, "backfill range not covered after its batches finished; planning the missing blocks again");
    Ok(())
}

/// Writes the next generation's checkpoint and queues it; keeps the last 10 generations.
async fn continue_as_new(ctx: &AppContext, job: &SchedulerJob) -> Result<(), SchedulerError> {
    let next = SchedulerJob {
        backfill_id: job.backfill_id,
        generation: job.generation + 1,
        trace_context: telemetry::traces::current(),
    };
    let mut tx = ctx.fenced_tx().await?;
    let inserted = checkpoints::continue_as_new(&mut tx, job.backfill_id, job.generation).await?;
    tx.commit().await?;
    if inserted {
        ctx.scheduler.push(&next.task_id(), next, None).await?;
        metrics::counter!("blockfill_scheduler_generations_total").increment(1);
    }
    Ok(())
}

/// Pauses backfill `id`: no batch of it is queued any more; its waiting jobs leave Redis and
/// their batches go back to `planned`; running ones finish. Pausing a paused one changes nothing.
pub async fn pause_backfill(ctx: &AppContext, id: Uuid) -> Result<Transition, SchedulerError> {
    control_transition(ctx, id, BatchStatus::Planned).await
}

/// Cancels backfill `id` for good: its waiting jobs leave Redis and their batches, and its
/// planned ones, end `cancelled`; running ones finish and are written; nothing of it is queued
/// again. Cancelling a cancelled one changes nothing.
pub async fn cancel_backfill(ctx: &AppContext, id: Uuid) -> Result<Transition, SchedulerError> {
    control_transition(ctx, id, BatchStatus::Cancelled).await
}

async fn control_transition(
    ctx: &AppContext,
    id: Uuid,
    to: BatchStatus,
) -> Result<Transition, SchedulerError> {
    let cancelling = to == BatchStatus::Cancelled;
    let target = if cancelling {
        BackfillStatus::Cancelled
    } else {
        BackfillStatus::Paused
    };
    let Some(row) = backfills::find(&ctx.db, id).await? else {
        return Ok(Transition::Unknown);
    };
    if row.status == target {
        return Ok(Transition::Already);
    }
    let allowed = if cancelling {
        BackfillStatus::CONTROLLABLE.contains(&row.status)
    } else {
        row.status.is_active()
    };
    if row.mode == BackfillMode::Live || !allowed {
        return Ok(Transition::Refused(row.status));
    }
    let chain = ChainName::parse(&row.chain).map_err(|_| SchedulerError::BadChain(id))?;
    match withdraw_backfill(&ctx.pool, &ctx.queues, &chain, id, to).await? {
        Some(changed) => {
            tracing::info!(target: "blockfill::scheduler", backfill_id = %id, status = %target, batches = changed, "backfill {}", if cancelling { "cancelled" } else { "paused" });
            Ok(Transition::Changed)
        }
        // Its state changed meanwhile: answer from the new one.
        None => Box::pin(control_transition(ctx, id, to)).await,
    }
}

/// Resumes a paused backfill: running again, and a fresh scheduler generation continues from
/// its checkpoint (a copy of the old generation still winding down sees a newer one and stops).
/// Resuming an active one changes nothing.
pub async fn resume_backfill(ctx: &AppContext, id: Uuid) -> Result<Transition, SchedulerError> {
    let Some(row) = backfills::find(&ctx.db, id).await? else {
        return Ok(Transition::Unknown);
    };
    if row.mode == BackfillMode::Live && row.status != BackfillStatus::Paused {
        return Ok(Transition::Refused(row.status));
    }
    if row.status.is_active() {
        return Ok(Transition::Already);
    }
    if row.status != BackfillStatus::Paused {
        return Ok(Transition::Refused(row.status));
    }
    let mut tx = ctx.fenced_tx().await?;
    if !control::mark_resumed(&mut tx, id).await? {
        drop(tx);
        return Box::pin(resume_backfill(ctx, id)).await;
    }
    let next = match checkpoints::latest(&ctx.pool, id).await? {
        Some((latest, _)) => {
            checkpoints::continue_as_new(&mut tx, id, latest).await?;
            latest + 1
        }
        None => {
            checkpoints::start(&ctx.pool, id, row.from_block.max(0) as u64).await?;
            0
        }
    };
    tx.commit().await?;
    let job = SchedulerJob {
        backfill_id: id,
        generation: next,
        trace_context: telemetry::traces::current(),
    };
    let task_id = format!("{}:resumed:{}", job.task_id(), Uuid::now_v7());
    ctx.scheduler.push(&task_id, job, None).await?;
    tracing::info!(target: "blockfill::scheduler", backfill_id = %id, generation = next, "backfill resumed");
    Ok(Transition::Changed)
}

/// Changes backfill `id`'s priority (not the live lane's; not a finished one's).
pub async fn set_priority(
    ctx: &AppContext,
    id: Uuid,
    priority: i32,
) -> Result<Transition, SchedulerError> {
    let Some(row) = backfills::find(&ctx.db, id).await? else {
        return Ok(Transition::Unknown);
    };
    if row.mode == BackfillMode::Live || !BackfillStatus::CONTROLLABLE.contains(&row.status) {
        return Ok(Transition::Refused(row.status));
    }
    if row.priority == priority {
        return Ok(Transition::Already);
    }
    let mut conn = ctx.pool.acquire().await?;
    control::set_priority(&mut conn, id, priority).await?;
    Ok(Transition::Changed)
}

/// Puts batches of a backfill back to work (after a failure was fixed): the given failed or
/// quarantined batches are planned anew with a fresh attempt budget, their quarantined blocks
/// released, the backfill reopened and its scheduler resumed, which queues them. Returns how many
/// batches were reopened.
pub async fn retry_batches(
    ctx: &AppContext,
    backfill_id: Uuid,
    batch_ids: &[String],
) -> Result<u64, SchedulerError> {
    let mut tx = ctx.pool.begin().await?;
    let reopened = batches::reopen(&mut tx, backfill_id, batch_ids).await?;
    if reopened == 0 {
        return Ok(0);
    }
    backfills::reopen(&mut tx, backfill_id).await?;
    tx.commit().await?;
    if let Some((generation, _)) = checkpoints::latest(&ctx.pool, backfill_id).await? {
        let job = SchedulerJob {
            backfill_id,
            generation,
            trace_context: telemetry::traces::current(),
        };
        let task_id = format!("{}:retry:{}", job.task_id(), Uuid::now_v7());
        ctx.scheduler.push(&task_id, job, None).await?;
    }
    tracing::info!(target: "blockfill::scheduler", %backfill_id, reopened, "batches reopened for retry");
    Ok(reopened)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn sparse_chains_get_bigger_batches_and_dense_ones_keep_their_size() {
        // The sparse Anvil chain: one block in ten with two transactions and a log each.
        assert_eq!(batch_blocks(100, Some(1.3), 10_000), 1_000);
        assert_eq!(batch_blocks(100, Some(20.0), 10_000), 500);
        // Mainnet-like density: the chain's own size.
        assert_eq!(batch_blocks(100, Some(550.0), 10_000), 100);
        // Nothing measured yet, or sizing off.
        assert_eq!(batch_blocks(100, None, 10_000), 100);
        assert_eq!(batch_blocks(100, Some(1.3), 0), 100);
        // A large batch_size is never grown past 10,000 blocks, nor shrunk.
        assert_eq!(batch_blocks(5_000, Some(1.0), 1_000_000), 10_000);
        assert_eq!(batch_blocks(10_000, Some(1.0), 1_000_000), 10_000);
    }

    proptest! {
        #[test]
        fn batch_sizes_stay_aligned_and_bounded(
            base in 1u64..=10_000,
            density in proptest::option::of(0.0f64..1_000.0),
            target in 0u64..1_000_000,
        ) {
            let blocks = batch_blocks(base, density, target);
            prop_assert!(blocks >= base);
            prop_assert!(blocks <= base * MAX_BATCH_GROWTH);
            prop_assert!(blocks <= MAX_BATCH_BLOCKS.max(base));
            prop_assert_eq!(blocks % base, 0);
        }

        #[test]
        fn denser_chains_never_get_bigger_batches(
            base in 1u64..=1_000,
            sparse in 0.01f64..100.0,
            extra in 0.0f64..100.0,
            target in 1u64..1_000_000,
        ) {
            prop_assert!(
                batch_blocks(base, Some(sparse + extra), target)
                    <= batch_blocks(base, Some(sparse), target)
            );
        }
    }
}
