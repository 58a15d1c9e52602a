//! The batch activity: what a worker does with one [`BatchJob`]. Count the delivery, fetch the
//! range from the chain's source, write it in one transaction. On failure count the attempt; once
//! the budget is spent, resolve the batch for good:
//! - a block-specific failure (a malformed answer, an RPC error for that range, or a batch whose
//!   workers keep dying) on more than one block is **split** in halves, which are planned anew;
//! - the same failure on a single block **quarantines** that block with its error;
//! - anything else (endpoint down, block not yet available) marks the batch **failed**.
//!
//! The same function runs behind the queue and in the benchmark's queue-less loop.

use std::time::Duration;

use sea_orm::sqlx::{self, PgPool};

use crate::{
    BatchId,
    reorg::{ReorgError, RepairRequest, repair_reorg},
    source::{ChainSource, RequestPriority, SourceError, SourceRegistry},
    types::{BatchJob, BlockRange},
    write::{WriteError, WriteOutcome, write_batch},
};

/// Why a batch did not complete this time.
#[derive(Debug, thiserror::Error)]
pub enum ActivityError {
    /// The chain is not registered (or has no RPC URL).
    #[error("chain {0} is not registered or has no RPC URL")]
    UnknownChain(String),
    /// Fetching failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Writing failed.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// A reorg was found and could not be repaired.
    #[error(transparent)]
    Reorg(#[from] ReorgError),
    /// Bookkeeping in PostgreSQL failed.
    #[error("recording batch state failed: {0}")]
    Database(String),
    /// Workers took the batch again and again and never finished it (they died running it).
    #[error(
        "delivered {deliveries} times with {attempts} recorded failures: its workers keep dying"
    )]
    CrashLoop {
        /// Times a worker started it.
        deliveries: i32,
        /// Failures recorded.
        attempts: i32,
    },
}

impl ActivityError {
    /// Whether the failure is tied to the blocks of the range (so halving the range can isolate
    /// it), rather than to an endpoint, the database or time.
    pub fn is_block_specific(&self) -> bool {
        matches!(
            self,
            Self::Source(SourceError::Malformed { .. } | SourceError::Rpc { .. })
                | Self::CrashLoop { .. }
        )
    }
}

/// How a worker treats failures.
#[derive(Debug, Clone, Copy)]
pub struct BatchPolicy {
    /// Failed attempts after which a batch is resolved (split, quarantined or failed).
    pub attempt_budget: i32,
    /// How long to wait for PostgreSQL when it is away before giving the job back.
    pub database_wait: Duration,
    /// The lane's claim on RPC endpoints (live sync has a reserve backfill cannot take).
    pub priority: RequestPriority,
}

impl Default for BatchPolicy {
    fn default() -> Self {
        Self {
            attempt_budget: 5,
            database_wait: Duration::from_secs(60),
            priority: RequestPriority::Backfill,
        }
    }
}

/// What running a batch job came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Fetched and written.
    Written(WriteOutcome),
    /// A redelivery of a batch already finished (written, split, quarantined or failed).
    AlreadyFinished,
    /// No such batch row: dropped.
    Unknown,
}

/// What became of a failed batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Budget left (or the failure could not be recorded): try again.
    Retry,
    /// Out of budget for a reason splitting cannot fix: `failed`.
    Failed,
    /// Split in halves; these children are planned and must be queued.
    Split(Vec<(BatchJob, i32)>),
    /// The single block is quarantined.
    Quarantined,
}

/// A failed run, after its attempt was recorded.
#[derive(Debug)]
pub struct BatchFailure {
    /// The error.
    pub error: ActivityError,
    /// Failed attempts so far, including this one (0 when it could not be recorded).
    pub attempts: i32,
    /// What happens next.
    pub resolution: Resolution,
}

/// Runs `op` until it succeeds or `wait` has passed, backing off between tries: PostgreSQL being
/// away for a while (failover, restart) must not burn a batch's attempts.
async fn with_database<T, F, Fut>(wait: Duration, mut op: F) -> Result<T, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    let deadline = tokio::time::Instant::now() + wait;
    let mut delay = Duration::from_millis(200);
    loop {
        match op().await {
            Ok(value) => return Ok(value),
            Err(e) if tokio::time::Instant::now() + delay < deadline => {
                tracing::warn!(target: "blockfill::activities", error = %e, "PostgreSQL unavailable; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Runs one batch job: count the delivery, fetch, write. Idempotent: a finished batch is skipped,
/// and writing a range twice leaves the same rows.
#[tracing::instrument(name = "run_batch", skip_all, fields(batch = %job.batch_id, worker = worker))]
pub async fn run_batch(
    pool: &PgPool,
    sources: &SourceRegistry,
    job: &BatchJob,
    worker: &str,
    policy: BatchPolicy,
) -> Result<BatchOutcome, BatchFailure> {
    let started = with_database(policy.database_wait, || {
        sqlx::query_as::<_, (i32, i32, Option<String>)>(
            "UPDATE batches SET status = 'running', deliveries = deliveries + 1, worker = $2, \
               started_at = now() \
             WHERE id = $1 AND status IN ('planned', 'queued', 'running') \
             RETURNING attempts, deliveries, last_error",
        )
        .bind(&job.batch_id)
        .bind(worker)
        .fetch_optional(pool)
    })
    .await;
    let started = match started {
        Ok(row) => row,
        Err(e) => {
            return Err(BatchFailure {
                error: ActivityError::Database(e.to_string()),
                attempts: 0,
                resolution: Resolution::Retry,
            });
        }
    };
    let Some((attempts, deliveries, last_error)) = started else {
        let exists: Option<(String,)> = sqlx::query_as("SELECT status FROM batches WHERE id = $1")
            .bind(&job.batch_id)
            .fetch_optional(pool)
            .await
            .map_err(|e| BatchFailure {
                error: ActivityError::Database(e.to_string()),
                attempts: 0,
                resolution: Resolution::Retry,
            })?;
        return Ok(match exists {
            Some(_) => BatchOutcome::AlreadyFinished,
            None => BatchOutcome::Unknown,
        });
    };
    // Deliveries beyond the recorded failures are crashes: a batch that kills its workers must
    // not loop forever. A batch already out of budget (a crash between recording the last
    // failure and resolving it) is resolved now.
    if deliveries > attempts + policy.attempt_budget {
        let error = ActivityError::CrashLoop {
            deliveries,
            attempts,
        };
        return Err(resolve_exhausted(pool, job, error, attempts).await);
    }
    if attempts >= policy.attempt_budget {
        let error = ActivityError::Database(last_error.unwrap_or_else(|| "out of attempts".into()));
        return Err(resolve_exhausted(pool, job, error, attempts).await);
    }
    let result = async {
        let source = sources.get_for(&job.chain, policy.priority).await?;
        let bundle = source.fetch_range(job.range).await?;
        match write_batch(pool, &job.chain, job.range, Some(&job.batch_id), &bundle).await {
            Err(WriteError::Reorg { block, detail, .. }) => {
                tracing::warn!(target: "blockfill::activities", block, detail, "reorg detected while writing");
                repair_and_reindex(pool, source.as_ref(), job, block, worker).await
            }
            other => Ok(other?),
        }
    }
    .await;
    match result {
        Ok(outcome) => Ok(BatchOutcome::Written(outcome)),
        Err(error) => Err(record_failure(pool, job, error, policy).await),
    }
}

/// Repairs a reorg found at `block` while writing `job`: the unwind commits together with a
/// backfill that re-indexes the unwound range (up to the job's end, if higher), so nothing is lost
/// if this worker dies now. Then, to close the gap at once rather than when the scheduler gets
/// to it, this worker runs those planned batches itself (each claimed, written and marked done
/// like any batch; whatever it does not get to is left to the scheduler), and finally writes its
/// own range.
async fn repair_and_reindex(
    pool: &PgPool,
    source: &dyn ChainSource,
    job: &BatchJob,
    block: u64,
    worker: &str,
) -> Result<WriteOutcome, ActivityError> {
    let repair = repair_reorg(
        pool,
        source,
        RepairRequest {
            chain: &job.chain,
            suspect: block,
            detected_by: "write",
            reindex_to: Some(job.range.to),
            term: None,
        },
    )
    .await?;
    tracing::info!(target: "blockfill::activities", depth = repair.depth, reindex = ?repair.reindex, "reorg unwound; its re-index is planned");
    let mut total = WriteOutcome::default();
    for range in &repair.planned {
        let batch_id = BatchId::new(&job.chain, *range).to_string();
        let claimed = sqlx::query(
            "UPDATE batches SET status = 'running', deliveries = deliveries + 1, worker = $2, \
               started_at = now() WHERE id = $1 AND status = 'planned'",
        )
        .bind(&batch_id)
        .bind(worker)
        .execute(pool)
        .await
        .map_err(|e| ActivityError::Database(e.to_string()))?
        .rows_affected();
        if claimed == 0 {
            continue;
        }
        let bundle = source.fetch_range(*range).await?;
        let outcome = write_batch(pool, &job.chain, *range, Some(&batch_id), &bundle).await?;
        total.blocks_inserted += outcome.blocks_inserted;
        total.transactions_inserted += outcome.transactions_inserted;
        total.logs_inserted += outcome.logs_inserted;
    }
    let bundle = source.fetch_range(job.range).await?;
    let own = write_batch(pool, &job.chain, job.range, Some(&job.batch_id), &bundle).await?;
    total.blocks_inserted += own.blocks_inserted;
    total.transactions_inserted += own.transactions_inserted;
    total.logs_inserted += own.logs_inserted;
    Ok(total)
}

async fn record_failure(
    pool: &PgPool,
    job: &BatchJob,
    error: ActivityError,
    policy: BatchPolicy,
) -> BatchFailure {
    let message = error.to_string();
    let recorded: Result<(i32,), sqlx::Error> = sqlx::query_as(
        "UPDATE batches SET attempts = attempts + 1, last_error = $2, status = 'queued' \
         WHERE id = $1 AND status = 'running' RETURNING attempts",
    )
    .bind(&job.batch_id)
    .bind(&message)
    .fetch_one(pool)
    .await;
    let _ = sqlx::query("UPDATE backfills SET last_error = $2 WHERE id = $1")
        .bind(job.backfill_id)
        .bind(&message)
        .execute(pool)
        .await;
    match recorded {
        Ok((attempts,)) if attempts >= policy.attempt_budget => {
            resolve_exhausted(pool, job, error, attempts).await
        }
        Ok((attempts,)) => {
            tracing::warn!(target: "blockfill::activities", attempts, error = %message, "batch attempt failed");
            metrics::counter!("blockfill_batch_attempts_failed_total").increment(1);
            BatchFailure {
                error,
                attempts,
                resolution: Resolution::Retry,
            }
        }
        Err(db_error) => {
            tracing::warn!(target: "blockfill::activities", error = %message, db_error = %db_error, "batch attempt failed and could not be recorded");
            BatchFailure {
                error,
                attempts: 0,
                resolution: Resolution::Retry,
            }
        }
    }
}

/// Resolves a batch whose budget is spent: split, quarantine or fail it (see the module doc).
async fn resolve_exhausted(
    pool: &PgPool,
    job: &BatchJob,
    error: ActivityError,
    attempts: i32,
) -> BatchFailure {
    let message = error.to_string();
    let resolved = if !error.is_block_specific() {
        mark_finished(pool, job, "failed", &message)
            .await
            .map(|_| Resolution::Failed)
    } else if job.range.len() == 1 {
        quarantine(pool, job, &message, attempts)
            .await
            .map(|_| Resolution::Quarantined)
    } else {
        split(pool, job, &message).await.map(Resolution::Split)
    };
    let resolution = resolved.unwrap_or_else(|e| {
        tracing::warn!(target: "blockfill::activities", error = %e, "could not resolve an exhausted batch; it will be retried");
        Resolution::Retry
    });
    match &resolution {
        Resolution::Split(children) => {
            tracing::warn!(target: "blockfill::activities", error = %message, children = children.len(), "batch out of attempts: split in halves");
            metrics::counter!("blockfill_batches_split_total").increment(1);
        }
        Resolution::Quarantined => {
            tracing::error!(target: "blockfill::activities", block = job.range.from, error = %message, "block quarantined");
            metrics::counter!("blockfill_blocks_quarantined_total").increment(1);
        }
        Resolution::Failed => {
            tracing::error!(target: "blockfill::activities", error = %message, "batch failed");
            metrics::counter!("blockfill_batches_failed_total").increment(1);
        }
        Resolution::Retry => {}
    }
    BatchFailure {
        error,
        attempts,
        resolution,
    }
}

async fn mark_finished(
    pool: &PgPool,
    job: &BatchJob,
    status: &str,
    message: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE batches SET status = $2, last_error = $3, finished_at = now() \
         WHERE id = $1 AND status IN ('planned', 'queued', 'running')",
    )
    .bind(&job.batch_id)
    .bind(status)
    .bind(message)
    .execute(pool)
    .await?;
    Ok(())
}

async fn quarantine(
    pool: &PgPool,
    job: &BatchJob,
    message: &str,
    attempts: i32,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE batches SET status = 'quarantined', last_error = $2, finished_at = now() WHERE id = $1",
    )
    .bind(&job.batch_id)
    .bind(message)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO quarantined_blocks (chain, number, batch_id, backfill_id, error, attempts) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (chain, number) DO UPDATE SET batch_id = EXCLUDED.batch_id, \
           backfill_id = EXCLUDED.backfill_id, error = EXCLUDED.error, attempts = EXCLUDED.attempts, \
           quarantined_at = now(), released_at = NULL",
    )
    .bind(job.chain.as_str())
    .bind(job.range.from as i64)
    .bind(&job.batch_id)
    .bind(job.backfill_id)
    .bind(message)
    .bind(attempts)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Marks the batch split and plans its two halves in its lane (taking over finished batches of the
/// same ranges). Returns the children that must be queued, with their queue rounds.
async fn split(
    pool: &PgPool,
    job: &BatchJob,
    message: &str,
) -> Result<Vec<(BatchJob, i32)>, sqlx::Error> {
    let mid = job.range.from + (job.range.len() / 2) - 1;
    let halves = [
        BlockRange {
            from: job.range.from,
            to: mid,
        },
        BlockRange {
            from: mid + 1,
            to: job.range.to,
        },
    ];
    let mut tx = pool.begin().await?;
    let lane: Option<(String,)> = sqlx::query_as(
        "UPDATE batches SET status = 'split', last_error = $2, finished_at = now() \
         WHERE id = $1 AND status IN ('planned', 'queued', 'running') RETURNING lane",
    )
    .bind(&job.batch_id)
    .bind(message)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((lane,)) = lane else {
        return Ok(Vec::new());
    };
    let ids: Vec<String> = halves
        .iter()
        .map(|r| BatchId::new(&job.chain, *r).to_string())
        .collect();
    let planned: Vec<(String, i64, i64, i32)> = sqlx::query_as(
        "INSERT INTO batches (id, chain, from_block, to_block, backfill_id, status, parent_id, lane) \
         SELECT id, $2, f, t, $3, 'planned', $4, $7 FROM UNNEST($1::text[], $5::int8[], $6::int8[]) AS b(id, f, t) \
         ON CONFLICT (id) DO UPDATE SET backfill_id = EXCLUDED.backfill_id, status = 'planned', \
           parent_id = EXCLUDED.parent_id, lane = EXCLUDED.lane, attempts = 0, deliveries = 0, last_error = NULL, \
           worker = NULL, queue_round = batches.queue_round + 1, planned_at = now(), \
           queued_at = NULL, started_at = NULL, finished_at = NULL \
         WHERE batches.status IN ('done', 'failed', 'split', 'quarantined') \
         RETURNING id, from_block, to_block, queue_round",
    )
    .bind(&ids)
    .bind(job.chain.as_str())
    .bind(job.backfill_id)
    .bind(&job.batch_id)
    .bind(halves.iter().map(|r| r.from as i64).collect::<Vec<_>>())
    .bind(halves.iter().map(|r| r.to as i64).collect::<Vec<_>>())
    .bind(&lane)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(planned
        .into_iter()
        .map(|(batch_id, from, to, round)| {
            (
                BatchJob {
                    batch_id,
                    chain: job.chain.clone(),
                    range: BlockRange {
                        from: from as u64,
                        to: to as u64,
                    },
                    backfill_id: job.backfill_id,
                },
                round,
            )
        })
        .collect())
}
