//! The batch activity: what a worker does with one [`BatchJob`]. Count the delivery, fetch the
//! range from the chain's source, write it in one transaction. On failure count the attempt; once
//! the budget is spent, resolve the batch for good:
//! - a block-specific failure (a malformed answer, an RPC error for that range, or a batch whose
//!   workers keep dying) on more than one block is **split** in halves, which are planned anew;
//! - the same failure on a single block **quarantines** that block with its error;
//! - anything else (endpoint down, block not yet available) marks the batch **failed**.
//!
//! The same function runs behind the queue and in the benchmark's queue-less loop.

use std::time::{Duration, Instant};

use tracing::Instrument as _;

use sea_orm::sqlx::{self, PgPool};

use crate::{
    BatchId,
    backoff::Backoff,
    reorg::{ReorgError, RepairRequest, repair_reorg},
    source::{ChainSource, RequestPriority, SourceError, SourceRegistry},
    store::{FailureKind, backfills, batches, batches::Started},
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
    /// A reorg was found and could not be repaired.
    #[error(transparent)]
    Reorg(#[from] ReorgError),
    /// Bookkeeping in PostgreSQL failed.
    #[error("recording batch state failed: {0}")]
    Database(String),
    /// A failure recorded on an earlier delivery, read back with its kind (the budget was found
    /// spent before this delivery fetched anything).
    #[error("{message}")]
    Stored {
        /// What kind of failure it was.
        kind: FailureKind,
        /// Its message as recorded.
        message: String,
    },
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
    /// The kind of this failure, as it is stored with the batch.
    pub fn kind(&self) -> FailureKind {
        match self {
            Self::UnknownChain(_) => FailureKind::UnknownChain,
            Self::Source(e) => source_failure_kind(e),
            Self::Write(_) => FailureKind::Write,
            Self::Reorg(ReorgError::Source(e)) => source_failure_kind(e),
            Self::Reorg(_) => FailureKind::Reorg,
            Self::Database(_) => FailureKind::Database,
            Self::Stored { kind, .. } => *kind,
            Self::CrashLoop { .. } => FailureKind::CrashLoop,
        }
    }

    /// Whether the failure is tied to the blocks of the range (so halving the range can isolate
    /// it), rather than to an endpoint, the database or time.
    pub fn is_block_specific(&self) -> bool {
        self.kind().is_block_specific()
    }
}

fn source_failure_kind(error: &SourceError) -> FailureKind {
    match error {
        SourceError::Malformed { .. } => FailureKind::Malformed,
        SourceError::Rpc { .. } => FailureKind::Rpc,
        SourceError::NotYetAvailable { .. } => FailureKind::NotYetAvailable,
        _ => FailureKind::Unavailable,
    }
}

/// How a batch out of attempts is resolved, by its failure's kind and its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Split in halves (a block-specific failure over more than one block).
    Split,
    /// Set the single block aside (a block-specific failure on one block).
    Quarantine,
    /// Failed for good (splitting cannot fix it).
    Fail,
}

impl Verdict {
    /// The verdict for a batch of `blocks` blocks whose budget a `kind` failure spent.
    pub fn for_exhausted(kind: FailureKind, blocks: u64) -> Self {
        if !kind.is_block_specific() {
            Self::Fail
        } else if blocks <= 1 {
            Self::Quarantine
        } else {
            Self::Split
        }
    }
}

/// What a started delivery must do before fetching: resolve the batch now (its budget was spent
/// on earlier deliveries, or its workers keep dying) with this error, or go on (`None`).
pub fn exhausted_on_start(started: &Started, attempt_budget: i32) -> Option<ActivityError> {
    // Deliveries beyond the recorded failures are crashes: a batch that kills its workers must
    // not loop forever.
    if started.deliveries > started.attempts + attempt_budget {
        return Some(ActivityError::CrashLoop {
            deliveries: started.deliveries,
            attempts: started.attempts,
        });
    }
    // A batch already out of budget (a crash between recording the last failure and resolving
    // it, or a lowered budget) is resolved now, as its stored failure warrants.
    (started.attempts >= attempt_budget).then(|| ActivityError::Stored {
        kind: started.last_failure_kind.unwrap_or(FailureKind::Database),
        message: started
            .last_error
            .clone()
            .unwrap_or_else(|| "out of attempts".into()),
    })
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
    /// Its backfill is paused (the batch went back to `planned`) or cancelled (the batch is
    /// `cancelled`): handed back without fetching.
    HeldBack(crate::store::BatchStatus),
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

impl Resolution {
    /// Its name in spans and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Retry => "retry",
            Self::Failed => "failed",
            Self::Split(_) => "split",
            Self::Quarantined => "quarantined",
        }
    }
}

/// The lane a policy's batches run in, as spans and metrics name it.
fn lane_label(policy: &BatchPolicy) -> &'static str {
    match policy.priority {
        RequestPriority::Live => "live",
        RequestPriority::Backfill => "backfill",
    }
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

/// How bookkeeping waits for PostgreSQL to come back.
const DATABASE_BACKOFF: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));

/// Runs `op` until it succeeds or `wait` has passed, backing off between tries: PostgreSQL being
/// away for a while (failover, restart) must not burn a batch's attempts.
async fn with_database<T, F, Fut>(wait: Duration, mut op: F) -> Result<T, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    let deadline = tokio::time::Instant::now() + wait;
    let mut delays = DATABASE_BACKOFF.delays();
    loop {
        match op().await {
            Ok(value) => return Ok(value),
            Err(e) => {
                let delay = delays.next().unwrap_or(DATABASE_BACKOFF.max);
                if tokio::time::Instant::now() + delay >= deadline {
                    return Err(e);
                }
                tracing::warn!(target: "blockfill::activities", error = %e, ?delay, "PostgreSQL unavailable; retrying");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Runs one batch job: count the delivery, fetch, write. Idempotent: a finished batch is skipped,
/// and writing a range twice leaves the same rows.
pub async fn run_batch(
    pool: &PgPool,
    sources: &SourceRegistry,
    job: &BatchJob,
    worker: &str,
    policy: BatchPolicy,
) -> Result<BatchOutcome, BatchFailure> {
    let started = with_database(policy.database_wait, || {
        batches::start(pool, &job.batch_id, worker)
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
    let Some(started) = started else {
        // A paused or cancelled backfill's batch that was taken from the queue before its
        // backfill's waiting jobs were withdrawn: handed back, never fetched.
        let held = batches::hand_back(pool, &job.batch_id)
            .await
            .map_err(|e| BatchFailure {
                error: ActivityError::Database(e.to_string()),
                attempts: 0,
                resolution: Resolution::Retry,
            })?;
        if let Some(status) = held {
            return Ok(BatchOutcome::HeldBack(status));
        }
        let exists = batches::status(pool, &job.batch_id)
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
    if let Some(error) = exhausted_on_start(&started, policy.attempt_budget) {
        return Err(resolve_exhausted(pool, job, error, started.attempts).await);
    }
    let lane = lane_label(&policy);
    let result = async {
        let source = sources.get_for(&job.chain, policy.priority).await?;
        let fetch_started = Instant::now();
        let bundle = source
            .fetch_range(job.range)
            .instrument(tracing::info_span!("fetch", chain = %job.chain, from = job.range.from, to = job.range.to))
            .await?;
        record_phase(job, lane, "fetch", fetch_started);
        let write_started = Instant::now();
        let written = write_batch(pool, &job.chain, job.range, Some(&job.batch_id), &bundle).await;
        record_phase(job, lane, "write", write_started);
        match written {
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

/// Adds the time since `started` to `blockfill_batch_duration_seconds{chain, lane, phase}`.
fn record_phase(job: &BatchJob, lane: &'static str, phase: &'static str, started: Instant) {
    metrics::histogram!(
        "blockfill_batch_duration_seconds",
        "chain" => job.chain.to_string(), "lane" => lane, "phase" => phase
    )
    .record(started.elapsed().as_secs_f64());
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
        let claimed = batches::claim_planned(pool, &batch_id, worker)
            .await
            .map_err(|e| ActivityError::Database(e.to_string()))?;
        if !claimed {
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
    let recorded = batches::record_failure(pool, &job.batch_id, error.kind(), &message)
        .await
        .and_then(|attempts| attempts.ok_or(sqlx::Error::RowNotFound));
    if let Err(e) = backfills::record_error(pool, job.backfill_id, &message).await {
        tracing::debug!(target: "blockfill::activities", error = %e, "could not record the backfill's last error");
    }
    match recorded {
        Ok(attempts) if attempts >= policy.attempt_budget => {
            resolve_exhausted(pool, job, error, attempts).await
        }
        Ok(attempts) => {
            tracing::warn!(target: "blockfill::activities", attempts, error = %message, "batch attempt failed");
            metrics::counter!("blockfill_batch_attempts_failed_total", "chain" => job.chain.to_string(), "lane" => lane_label(&policy), "kind" => error.kind().as_str())
                .increment(1);
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
    let kind = error.kind();
    let resolved = match Verdict::for_exhausted(kind, job.range.len()) {
        Verdict::Fail => batches::fail(pool, &job.batch_id, kind, &message)
            .await
            .map(|_| Resolution::Failed),
        Verdict::Quarantine => batches::quarantine(pool, job, kind, &message, attempts)
            .await
            .map(|_| Resolution::Quarantined),
        Verdict::Split => batches::split(pool, job, &job.range.halves(), kind, &message)
            .await
            .map(Resolution::Split),
    };
    let resolution = resolved.unwrap_or_else(|e| {
        tracing::warn!(target: "blockfill::activities", error = %e, "could not resolve an exhausted batch; it will be retried");
        Resolution::Retry
    });
    match &resolution {
        Resolution::Split(children) => {
            tracing::warn!(target: "blockfill::activities", error = %message, children = children.len(), "batch out of attempts: split in halves");
            metrics::counter!("blockfill_batches_split_total", "chain" => job.chain.to_string(), "kind" => kind.as_str()).increment(1);
        }
        Resolution::Quarantined => {
            tracing::error!(target: "blockfill::activities", block = job.range.from, error = %message, "block quarantined");
            metrics::counter!("blockfill_blocks_quarantined_total", "chain" => job.chain.to_string(), "kind" => kind.as_str()).increment(1);
        }
        Resolution::Failed => {
            tracing::error!(target: "blockfill::activities", error = %message, "batch failed");
            metrics::counter!("blockfill_batches_failed_total", "chain" => job.chain.to_string(), "kind" => kind.as_str()).increment(1);
        }
        Resolution::Retry => {}
    }
    BatchFailure {
        error,
        attempts,
        resolution,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::BlockRange;

    fn started(attempts: i32, deliveries: i32, kind: Option<FailureKind>) -> Started {
        Started {
            attempts,
            deliveries,
            last_error: kind.map(|k| format!("a {k} failure")),
            last_failure_kind: kind,
        }
    }

    #[test]
    fn block_specific_failures_split_then_quarantine_and_the_rest_fail() {
        for kind in [
            FailureKind::Malformed,
            FailureKind::Rpc,
            FailureKind::CrashLoop,
        ] {
            assert_eq!(Verdict::for_exhausted(kind, 100), Verdict::Split, "{kind}");
            assert_eq!(Verdict::for_exhausted(kind, 2), Verdict::Split, "{kind}");
            assert_eq!(
                Verdict::for_exhausted(kind, 1),
                Verdict::Quarantine,
                "{kind}"
            );
        }
        for kind in [
            FailureKind::UnknownChain,
            FailureKind::Unavailable,
            FailureKind::NotYetAvailable,
            FailureKind::Write,
            FailureKind::Reorg,
            FailureKind::Database,
        ] {
            assert_eq!(Verdict::for_exhausted(kind, 100), Verdict::Fail, "{kind}");
            assert_eq!(Verdict::for_exhausted(kind, 1), Verdict::Fail, "{kind}");
        }
    }

    #[test]
    fn a_delivery_with_budget_left_goes_on() {
        assert!(exhausted_on_start(&started(0, 1, None), 5).is_none());
        assert!(exhausted_on_start(&started(4, 5, Some(FailureKind::Malformed)), 5).is_none());
        // Crash deliveries within the budget are tolerated.
        assert!(exhausted_on_start(&started(0, 5, None), 5).is_none());
    }

    #[test]
    fn a_spent_budget_is_resolved_by_the_stored_failure_kind() {
        let error = exhausted_on_start(&started(5, 6, Some(FailureKind::Malformed)), 5)
            .expect("out of budget");
        assert_eq!(error.kind(), FailureKind::Malformed);
        assert!(error.is_block_specific());
        assert_eq!(error.to_string(), "a malformed failure");
        let error = exhausted_on_start(&started(5, 6, Some(FailureKind::Unavailable)), 5)
            .expect("out of budget");
        assert!(!error.is_block_specific());
        // A row from before failure kinds were recorded: not split on a guess.
        let error = exhausted_on_start(&started(5, 6, None), 5).expect("out of budget");
        assert_eq!(error.kind(), FailureKind::Database);
    }

    #[test]
    fn workers_dying_on_a_batch_is_a_crash_loop() {
        let error = exhausted_on_start(&started(1, 7, None), 5).expect("crash loop");
        assert!(matches!(
            error,
            ActivityError::CrashLoop {
                deliveries: 7,
                attempts: 1
            }
        ));
        assert_eq!(Verdict::for_exhausted(error.kind(), 1), Verdict::Quarantine);
    }

    #[test]
    fn source_failures_map_to_their_kinds() {
        let malformed = ActivityError::Source(SourceError::Malformed {
            endpoint: "http://node/…".into(),
            range: BlockRange { from: 1, to: 2 },
            message: "missing hash".into(),
        });
        assert_eq!(malformed.kind(), FailureKind::Malformed);
        let not_yet = ActivityError::Source(SourceError::NotYetAvailable {
            endpoint: "http://node/…".into(),
            block: 9,
        });
        assert_eq!(not_yet.kind(), FailureKind::NotYetAvailable);
        assert_eq!(
            ActivityError::Database("gone".into()).kind(),
            FailureKind::Database
        );
    }
}
