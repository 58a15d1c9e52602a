//! The batch activity: what a worker does with one [`BatchJob`]. Count the delivery, fetch the
//! range from the chain's source, write it in one transaction; on failure, count the attempt and
//! fail the batch once its budget is spent. The same function runs behind the queue and in the
//! benchmark's queue-less loop.

use sea_orm::sqlx::{self, PgPool};

use crate::{
    source::{SourceError, SourceRegistry},
    types::BatchJob,
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
    /// Bookkeeping in PostgreSQL failed.
    #[error("recording batch state failed: {0}")]
    Database(String),
}

/// What running a batch job came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Fetched and written.
    Written(WriteOutcome),
    /// A redelivery of a batch already written: nothing to do.
    AlreadyDone,
    /// No such batch row (planned by another database?): dropped.
    Unknown,
}

/// A failed run, after its attempt was recorded.
#[derive(Debug)]
pub struct BatchFailure {
    /// The error.
    pub error: ActivityError,
    /// Failed attempts so far, including this one.
    pub attempts: i32,
    /// True when the budget is spent and the batch is now `failed`.
    pub exhausted: bool,
}

/// Runs one batch job: count the delivery, fetch, write. Idempotent: a batch already done is
/// skipped, and writing a range twice leaves the same rows.
#[tracing::instrument(name = "run_batch", skip_all, fields(batch = %job.batch_id, worker = worker))]
pub async fn run_batch(
    pool: &PgPool,
    sources: &SourceRegistry,
    job: &BatchJob,
    worker: &str,
    attempt_budget: i32,
) -> Result<BatchOutcome, BatchFailure> {
    let started: Option<(i32,)> = match sqlx::query_as(
        "UPDATE batches SET status = 'running', deliveries = deliveries + 1, worker = $2, \
           started_at = now() \
         WHERE id = $1 AND status <> 'done' RETURNING attempts",
    )
    .bind(&job.batch_id)
    .bind(worker)
    .fetch_optional(pool)
    .await
    {
        Ok(row) => row,
        Err(e) => {
            // The database is away: nothing was recorded, so nothing counts against the budget.
            return Err(BatchFailure {
                error: ActivityError::Database(e.to_string()),
                attempts: 0,
                exhausted: false,
            });
        }
    };
    if started.is_none() {
        let exists: Option<(String,)> = sqlx::query_as("SELECT status FROM batches WHERE id = $1")
            .bind(&job.batch_id)
            .fetch_optional(pool)
            .await
            .map_err(|e| BatchFailure {
                error: ActivityError::Database(e.to_string()),
                attempts: 0,
                exhausted: false,
            })?;
        return Ok(match exists {
            Some(_) => BatchOutcome::AlreadyDone,
            None => BatchOutcome::Unknown,
        });
    }
    let result = async {
        let source = sources.get(&job.chain).await?;
        let bundle = source.fetch_range(job.range).await?;
        let outcome =
            write_batch(pool, &job.chain, job.range, Some(&job.batch_id), &bundle).await?;
        Ok::<_, ActivityError>(outcome)
    }
    .await;
    match result {
        Ok(outcome) => Ok(BatchOutcome::Written(outcome)),
        Err(error) => Err(record_failure(pool, job, error, attempt_budget).await),
    }
}

async fn record_failure(
    pool: &PgPool,
    job: &BatchJob,
    error: ActivityError,
    attempt_budget: i32,
) -> BatchFailure {
    let message = error.to_string();
    let recorded: Result<(i32, String), sqlx::Error> = sqlx::query_as(
        "UPDATE batches SET attempts = attempts + 1, last_error = $2, \
           status = CASE WHEN attempts + 1 >= $3 THEN 'failed' ELSE 'queued' END, \
           finished_at = CASE WHEN attempts + 1 >= $3 THEN now() ELSE finished_at END \
         WHERE id = $1 RETURNING attempts, status",
    )
    .bind(&job.batch_id)
    .bind(&message)
    .bind(attempt_budget)
    .fetch_one(pool)
    .await;
    let _ = sqlx::query("UPDATE backfills SET last_error = $2 WHERE id = $1")
        .bind(job.backfill_id)
        .bind(&message)
        .execute(pool)
        .await;
    match recorded {
        Ok((attempts, status)) => {
            tracing::warn!(attempts, status, error = %message, "batch attempt failed");
            BatchFailure {
                error,
                attempts,
                exhausted: status == "failed",
            }
        }
        Err(db_error) => {
            tracing::warn!(error = %message, db_error = %db_error, "batch attempt failed and could not be recorded");
            BatchFailure {
                error,
                attempts: 0,
                exhausted: false,
            }
        }
    }
}
