//! The scheduler: a workflow-style job per backfill. Each generation plans bounded steps of batches
//! (unique rows first, then pushes only the rows that were new), keeps the batch queue at or under
//! its bound, records its cursor in PostgreSQL after every step, and continues as new (a fresh job
//! carrying the next generation) after `generation_batches` batches or `generation_timeout`.
//! A crash anywhere resumes from the cursor: rows decide what is planned, never Redis.

use std::time::{Duration, Instant};

use blockfill_activities::{
    BlockRange, ChainName, SchedulerJob,
    entity::{backfills, chains},
    fence::FenceError,
    plan::{EnqueueError, Lane, batch_jobs, enqueue_batches, feed_planned, plan_batches},
    queue::JobFailure,
    ranges,
    store::{BackfillMode, BackfillStatus},
};
use sea_orm::{
    EntityTrait,
    sqlx::{self, PgPool},
};
use serde_json::json;
use uuid::Uuid;

use crate::context::AppContext;

/// Batches planned in one step (one transaction) at most.
const MAX_STEP_BATCHES: u64 = 200;
/// How long a generation sleeps while the queue is full or batches are still running.
const IDLE_WAIT: Duration = Duration::from_millis(200);
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

/// Records a new backfill of `[from, to]` (`mode` is `range` or `gaps`) and starts its scheduler.
pub async fn create_backfill(
    ctx: &AppContext,
    chain: &ChainName,
    mode: BackfillMode,
    from: u64,
    to: u64,
) -> Result<Uuid, SchedulerError> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO backfills (id, chain, mode, from_block, to_block, status) \
         VALUES ($1, $2, $3, $4, $5, 'planned')",
    )
    .bind(id)
    .bind(chain.as_str())
    .bind(mode)
    .bind(from as i64)
    .bind(to as i64)
    .execute(&ctx.pool)
    .await?;
    start_backfill(ctx, id, from).await?;
    Ok(id)
}

/// Starts a new backfill's scheduler: generation 0 at `from`.
pub async fn start_backfill(
    ctx: &AppContext,
    backfill_id: Uuid,
    from: u64,
) -> Result<(), SchedulerError> {
    sqlx::query(
        "INSERT INTO scheduler_checkpoints (backfill_id, generation, cursor_block) VALUES ($1, 0, $2) \
         ON CONFLICT DO NOTHING",
    )
    .bind(backfill_id)
    .bind(from as i64)
    .execute(&ctx.pool)
    .await?;
    let job = SchedulerJob {
        backfill_id,
        generation: 0,
    };
    ctx.scheduler.push(&job.task_id(), job, None).await?;
    Ok(())
}

/// The apalis handler of scheduler jobs.
pub async fn handle_scheduler_job(job: SchedulerJob, ctx: AppContext) -> Result<(), JobFailure> {
    run_generation(&ctx, &job).await.map_err(|e| {
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
    batch_size: u64,
    /// Plans only blocks the coverage ledger lacks (gaps mode, or a rescan of a range).
    gaps_only: bool,
}

async fn load_plan(
    ctx: &AppContext,
    backfill_id: Uuid,
) -> Result<Option<(Plan, BackfillStatus)>, SchedulerError> {
    let Some(backfill) = backfills::Entity::find_by_id(backfill_id)
        .one(&ctx.db)
        .await?
    else {
        return Ok(None);
    };
    let chain_row = chains::Entity::find_by_id(backfill.chain.clone())
        .one(&ctx.db)
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
            batch_size: chain_row.batch_size.max(1) as u64,
        },
        backfill.status,
    )))
}

async fn latest_generation(
    pool: &PgPool,
    backfill_id: Uuid,
) -> Result<Option<(i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT generation, cursor_block FROM scheduler_checkpoints WHERE backfill_id = $1 \
         ORDER BY generation DESC LIMIT 1",
    )
    .bind(backfill_id)
    .fetch_optional(pool)
    .await
}

#[tracing::instrument(name = "scheduler_generation", skip_all, fields(backfill_id = %job.backfill_id, generation = job.generation))]
async fn run_generation(ctx: &AppContext, job: &SchedulerJob) -> Result<(), SchedulerError> {
    let Some((mut plan, status)) = load_plan(ctx, job.backfill_id).await? else {
        tracing::warn!(target: "blockfill::scheduler", "scheduler job for an unknown backfill dropped");
        return Ok(());
    };
    if !status.is_active() {
        return Ok(());
    }
    let Some((latest, _)) = latest_generation(&ctx.pool, job.backfill_id).await? else {
        return Ok(());
    };
    if job.generation < latest {
        // A stale or redelivered generation: make sure the latest one is queued, then stop.
        let next = SchedulerJob {
            backfill_id: job.backfill_id,
            generation: latest,
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
        touch(&ctx.pool, job, &ctx.instance).await?;
        let (Some((latest, cursor)), over_time) = (
            latest_generation(&ctx.pool, job.backfill_id).await?,
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
            &ctx.batches,
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

/// Records that generation `job` is alive.
async fn touch(pool: &PgPool, job: &SchedulerJob, instance: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE scheduler_checkpoints SET updated_at = now(), holder = $3 \
         WHERE backfill_id = $1 AND generation = $2",
    )
    .bind(job.backfill_id)
    .bind(job.generation)
    .bind(instance)
    .execute(pool)
    .await?;
    Ok(())
}

/// Batch jobs not yet finished, by PostgreSQL and by Redis; the larger counts against the bound.
async fn pending_batches(
    ctx: &AppContext,
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
) -> Result<u64, SchedulerError> {
    let (in_db,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM batches \
         WHERE lane = 'backfill' AND status IN ('planned', 'queued', 'running')",
    )
    .fetch_one(&mut **tx)
    .await?;
    let in_redis = ctx.batches.depth().await?.pending();
    Ok((in_db.max(0) as u64).max(in_redis))
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
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('blockfill.plan'))")
        .execute(&mut *tx)
        .await?;
    let cursor: Option<(i64,)> = sqlx::query_as(
        "SELECT cursor_block FROM scheduler_checkpoints WHERE backfill_id = $1 AND generation = $2 \
         FOR UPDATE",
    )
    .bind(job.backfill_id)
    .bind(job.generation)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((cursor,)) = cursor else {
        return Ok(Step::Stale);
    };
    let cursor = cursor as u64;
    if cursor > plan.range.to {
        return Ok(Step::Planned(Vec::new()));
    }
    let room = ctx
        .settings
        .max_queued_batches
        .saturating_sub(pending_batches(ctx, &mut tx).await?);
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
        let covered: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT start_block, end_block FROM coverage WHERE chain = $1 AND end_block >= $2 \
             AND start_block <= $3 ORDER BY start_block",
        )
        .bind(plan.chain.as_str())
        .bind(window.from as i64)
        .bind(window.to as i64)
        .fetch_all(&mut *tx)
        .await?;
        let covered: Vec<BlockRange> = covered
            .into_iter()
            .map(|(s, e)| BlockRange {
                from: s as u64,
                to: e as u64,
            })
            .collect();
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
    let planned = plan_batches(
        &mut tx,
        &plan.chain,
        job.backfill_id,
        Lane::Backfill,
        &candidates,
        false,
    )
    .await?;
    let blocks: u64 = planned.iter().map(|(r, _)| r.len()).sum();
    sqlx::query(
        "UPDATE scheduler_checkpoints SET cursor_block = $3, planned_batches = planned_batches + $4, \
           updated_at = now(), holder = $5 WHERE backfill_id = $1 AND generation = $2",
    )
    .bind(job.backfill_id)
    .bind(job.generation)
    .bind(next_cursor as i64)
    .bind(planned.len() as i64)
    .bind(&ctx.instance)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE backfills SET planned_batches = planned_batches + $2, planned_blocks = planned_blocks + $3, \
           status = 'running', started_at = COALESCE(started_at, now()) \
         WHERE id = $1 AND status IN ('planned', 'running')",
    )
    .bind(job.backfill_id)
    .bind(planned.len() as i64)
    .bind(blocks as i64)
    .execute(&mut *tx)
    .await?;
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
    enqueue_batches(&ctx.pool, &ctx.batches, Lane::Backfill, jobs).await?;
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
    let counts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, count(*) FROM batches WHERE backfill_id = $1 GROUP BY status",
    )
    .bind(backfill_id)
    .fetch_all(&ctx.pool)
    .await?;
    let count = |s: &str| counts.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n);
    if count("planned") + count("queued") + count("running") > 0 {
        return Ok(false);
    }
    let failed = count("failed");
    let mut last_error = None;
    if failed == 0 {
        let uncovered = uncovered_blocks(&ctx.pool, &plan.chain, plan.range).await?;
        if uncovered > 0 {
            if overlapping_work(&ctx.pool, &plan.chain, plan.range).await? {
                return Ok(false); // another backfill's batches over the range are running
            }
            let rescans: (i32,) = sqlx::query_as("SELECT rescans FROM backfills WHERE id = $1")
                .bind(backfill_id)
                .fetch_one(&ctx.pool)
                .await?;
            if rescans.0 < MAX_RESCANS {
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
    let (blocks_done, compacted_batches): (i64, i64) = sqlx::query_as(
        "SELECT COALESCE((SELECT sum(to_block - from_block + 1) FROM batches \
                          WHERE backfill_id = $1 AND status = 'done'), 0)::int8 \
                  + COALESCE((SELECT compacted_blocks FROM backfills WHERE id = $1), 0), \
                COALESCE((SELECT compacted_batches FROM backfills WHERE id = $1), 0)",
    )
    .bind(backfill_id)
    .fetch_one(&ctx.pool)
    .await?;
    // Quarantined blocks do not fail a backfill: they are listed, and can be retried.
    let status = if failed > 0 || last_error.is_some() {
        "failed"
    } else {
        "completed"
    };
    let final_counts = json!({
        "planned": 0, "queued": 0, "running": 0,
        "done": count("done") + compacted_batches, "failed": failed,
        "split": count("split"), "quarantined": count("quarantined"),
        "blocks_done": blocks_done,
    });
    let mut tx = ctx.fenced_tx().await?;
    sqlx::query(
        "UPDATE backfills SET status = $2, finished_at = now(), final_counts = $3, \
           last_error = COALESCE($4, last_error) \
         WHERE id = $1 AND status IN ('planned', 'running')",
    )
    .bind(backfill_id)
    .bind(status)
    .bind(final_counts)
    .bind(last_error)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(target: "blockfill::scheduler", %backfill_id, status, failed, "backfill finished");
    Ok(true)
}

/// Blocks of `range` that are neither covered nor quarantined.
async fn uncovered_blocks(
    pool: &PgPool,
    chain: &ChainName,
    range: BlockRange,
) -> Result<i64, sqlx::Error> {
    let (covered, quarantined): (i64, i64) = sqlx::query_as(
        "SELECT \
           (SELECT COALESCE(sum(LEAST(end_block, $3) - GREATEST(start_block, $2) + 1), 0)::int8 \
            FROM coverage WHERE chain = $1 AND end_block >= $2 AND start_block <= $3), \
           (SELECT count(*) FROM quarantined_blocks \
            WHERE chain = $1 AND number BETWEEN $2 AND $3 AND released_at IS NULL)",
    )
    .bind(chain.as_str())
    .bind(range.from as i64)
    .bind(range.to as i64)
    .fetch_one(pool)
    .await?;
    Ok(range.len() as i64 - covered - quarantined)
}

/// Whether unfinished batches of any backfill overlap `range`.
async fn overlapping_work(
    pool: &PgPool,
    chain: &ChainName,
    range: BlockRange,
) -> Result<bool, sqlx::Error> {
    let (found,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM batches WHERE chain = $1 \
           AND status IN ('planned', 'queued', 'running') \
           AND to_block >= $2 AND from_block <= $3)",
    )
    .bind(chain.as_str())
    .bind(range.from as i64)
    .bind(range.to as i64)
    .fetch_one(pool)
    .await?;
    Ok(found)
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
    sqlx::query("UPDATE backfills SET rescans = rescans + 1 WHERE id = $1")
        .bind(job.backfill_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE scheduler_checkpoints SET cursor_block = $3, updated_at = now() \
         WHERE backfill_id = $1 AND generation = $2",
    )
    .bind(job.backfill_id)
    .bind(job.generation)
    .bind(plan.range.from as i64)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::warn!(target: "blockfill::scheduler", backfill_id = %job.backfill_id, uncovered, "backfill range not covered after its batches finished; planning the missing blocks again");
    Ok(())
}

/// Writes the next generation's checkpoint and queues it; keeps the last 10 generations.
async fn continue_as_new(ctx: &AppContext, job: &SchedulerJob) -> Result<(), SchedulerError> {
    let next = SchedulerJob {
        backfill_id: job.backfill_id,
        generation: job.generation + 1,
    };
    let mut tx = ctx.fenced_tx().await?;
    let inserted = sqlx::query(
        "INSERT INTO scheduler_checkpoints (backfill_id, generation, cursor_block, planned_batches) \
         SELECT backfill_id, $2, cursor_block, planned_batches FROM scheduler_checkpoints \
         WHERE backfill_id = $1 AND generation = $3 ON CONFLICT DO NOTHING",
    )
    .bind(job.backfill_id)
    .bind(next.generation)
    .bind(job.generation)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query("DELETE FROM scheduler_checkpoints WHERE backfill_id = $1 AND generation < $2")
        .bind(job.backfill_id)
        .bind(next.generation - 10)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    if inserted > 0 {
        ctx.scheduler.push(&next.task_id(), next, None).await?;
        metrics::counter!("blockfill_scheduler_generations_total").increment(1);
    }
    Ok(())
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
    let reopened = sqlx::query(
        "UPDATE batches SET status = 'planned', attempts = 0, deliveries = 0, \
           queue_round = queue_round + 1, queued_at = NULL, started_at = NULL, finished_at = NULL \
         WHERE backfill_id = $1 AND id = ANY($2) AND status IN ('failed', 'quarantined')",
    )
    .bind(backfill_id)
    .bind(batch_ids)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if reopened == 0 {
        return Ok(0);
    }
    sqlx::query("UPDATE quarantined_blocks SET released_at = now() WHERE batch_id = ANY($1) AND released_at IS NULL")
        .bind(batch_ids)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE backfills SET status = 'running', finished_at = NULL, final_counts = NULL \
         WHERE id = $1",
    )
    .bind(backfill_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    if let Some((generation, _)) = latest_generation(&ctx.pool, backfill_id).await? {
        let job = SchedulerJob {
            backfill_id,
            generation,
        };
        let task_id = format!("{}:retry:{}", job.task_id(), Uuid::now_v7());
        ctx.scheduler.push(&task_id, job, None).await?;
    }
    tracing::info!(target: "blockfill::scheduler", %backfill_id, reopened, "batches reopened for retry");
    Ok(reopened)
}
