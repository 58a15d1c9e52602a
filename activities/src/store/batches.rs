//! Batch rows and their transitions: plan, queue, start, fail, split, quarantine, finish,
//! reopen. A batch id is its range (`{chain}:{from}-{to}`); every transition names the statuses
//! it leaves from, so a late or repeated call changes nothing.

use sea_orm::sqlx::{self, PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::{BackfillStatus, BatchStatus, FailureKind, Lane};
use crate::types::{BatchId, BatchJob, BlockRange, ChainName};

/// A batch row as read for queueing, as its job and queue round.
#[derive(Debug, Clone, ::sqlx::FromRow)]
pub struct QueueableRow {
    /// `{chain}:{from}-{to}`.
    pub id: String,
    /// Chain name.
    pub chain: String,
    /// First block.
    pub from_block: i64,
    /// Last block.
    pub to_block: i64,
    /// The backfill that owns it.
    pub backfill_id: Uuid,
    /// How many times it was queued again.
    pub queue_round: i32,
}

impl QueueableRow {
    /// The job of this row with its queue round; `None` for a row whose chain or range is invalid.
    pub fn into_job(self) -> Option<(BatchJob, i32)> {
        Some((
            BatchJob {
                batch_id: self.id,
                chain: ChainName::parse(&self.chain).ok()?,
                range: BlockRange::new(self.from_block as u64, self.to_block as u64).ok()?,
                backfill_id: self.backfill_id,
                trace_context: None,
            },
            self.queue_round,
        ))
    }
}

/// Inserts `ranges` of `chain` as planned batches of `backfill_id` in `lane` and returns those
/// that are new work, with their queue round. A batch already planned, queued or running is left
/// alone; a finished one is planned again in a new round when it belonged to another backfill,
/// or to this one if `replan_own_finished`. Runs in the caller's transaction.
pub async fn plan(
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
         SELECT id, $2, f, t, $3, $8, $6 FROM UNNEST($1::text[], $4::int8[], $5::int8[]) AS b(id, f, t) \
         ON CONFLICT (id) DO UPDATE SET backfill_id = EXCLUDED.backfill_id, status = $8, \
           lane = EXCLUDED.lane, attempts = 0, deliveries = 0, last_error = NULL, \
           last_failure_kind = NULL, worker = NULL, \
           planned_at = now(), queued_at = NULL, started_at = NULL, finished_at = NULL, \
           parent_id = NULL, queue_round = batches.queue_round + 1 \
         WHERE ($7 OR batches.backfill_id <> EXCLUDED.backfill_id) \
           AND batches.status = ANY($9) \
         RETURNING from_block, to_block, queue_round",
    )
    .bind(&ids)
    .bind(chain.as_str())
    .bind(backfill_id)
    .bind(ranges.iter().map(|r| r.from as i64).collect::<Vec<_>>())
    .bind(ranges.iter().map(|r| r.to as i64).collect::<Vec<_>>())
    .bind(lane)
    .bind(replan_own_finished)
    .bind(BatchStatus::Planned)
    .bind(&BatchStatus::FINISHED[..])
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

/// Serialises gate passes of `lane` and `chain` until the caller's transaction ends.
pub async fn lock_gate(
    conn: &mut PgConnection,
    lane: Lane,
    chain: &ChainName,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtext('blockfill.gate'), hashtext($1 || ':' || $2))",
    )
    .bind(lane)
    .bind(chain.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// Batches of `chain` in `lane` in any of `statuses`.
pub async fn count_in(
    conn: &mut PgConnection,
    lane: Lane,
    chain: &ChainName,
    statuses: &[BatchStatus],
) -> Result<u64, sqlx::Error> {
    let (count,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM batches WHERE chain = $3 AND lane = $1 AND status = ANY($2)",
    )
    .bind(lane)
    .bind(statuses)
    .bind(chain.as_str())
    .fetch_one(conn)
    .await?;
    Ok(count.max(0) as u64)
}

/// Marks the planned batches among `ids` queued (their jobs were pushed).
pub async fn mark_queued(conn: &mut PgConnection, ids: &[String]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE batches SET status = $2, queued_at = now() WHERE id = ANY($1) AND status = $3",
    )
    .bind(ids)
    .bind(BatchStatus::Queued)
    .bind(BatchStatus::Planned)
    .execute(conn)
    .await?;
    Ok(())
}

/// Up to `limit` planned batches of `lane` of active backfills (of one backfill, or of all),
/// highest backfill priority first, then lowest first.
pub async fn planned(
    pool: &PgPool,
    lane: Lane,
    chain: Option<&str>,
    backfill_id: Option<Uuid>,
    limit: u64,
) -> Result<Vec<QueueableRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT b.id, b.chain, b.from_block, b.to_block, b.backfill_id, b.queue_round \
         FROM batches b JOIN backfills f ON f.id = b.backfill_id \
         WHERE b.lane = $1 AND b.status = $4 AND ($2::uuid IS NULL OR b.backfill_id = $2) \
         AND ($5::text IS NULL OR b.chain = $5) AND f.status = ANY($6) \
         ORDER BY f.priority DESC, b.from_block LIMIT $3",
    )
    .bind(lane)
    .bind(backfill_id)
    .bind(limit as i64)
    .bind(BatchStatus::Planned)
    .bind(chain)
    .bind(&BackfillStatus::ACTIVE[..])
    .fetch_all(pool)
    .await
}

/// The chains with planned batches in `lane` (index `batches_unfinished`).
pub async fn chains_with_planned(pool: &PgPool, lane: Lane) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT DISTINCT chain FROM batches WHERE lane = $1 AND status = $2")
            .bind(lane)
            .bind(BatchStatus::Planned)
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().map(|(chain,)| chain).collect())
}

/// What a worker learns when it starts a batch.
#[derive(Debug, Clone, ::sqlx::FromRow)]
pub struct Started {
    /// Failed attempts recorded so far.
    pub attempts: i32,
    /// Times a worker started it, including this one.
    pub deliveries: i32,
    /// The last failure's message.
    pub last_error: Option<String>,
    /// The last failure's kind.
    pub last_failure_kind: Option<FailureKind>,
}

/// Marks an unfinished batch running under `worker` and counts the delivery; `None` when the
/// batch is finished or unknown, or its backfill is paused or cancelled (see [`hand_back`]).
pub async fn start(
    pool: &PgPool,
    batch_id: &str,
    worker: &str,
) -> Result<Option<Started>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE batches SET status = $3, deliveries = deliveries + 1, worker = $2, \
           started_at = now() \
         WHERE id = $1 AND status = ANY($4) AND NOT EXISTS ( \
           SELECT 1 FROM backfills f WHERE f.id = batches.backfill_id AND f.status = ANY($5)) \
         RETURNING attempts, deliveries, last_error, last_failure_kind",
    )
    .bind(batch_id)
    .bind(worker)
    .bind(BatchStatus::Running)
    .bind(&BatchStatus::UNFINISHED[..])
    .bind(&HELD[..])
    .fetch_optional(pool)
    .await
}

/// The statuses of a backfill whose batches a worker must not start: it hands them back.
const HELD: [BackfillStatus; 2] = [BackfillStatus::Paused, BackfillStatus::Cancelled];

/// Hands back an unfinished batch a worker was about to start because its backfill is paused
/// (the batch goes back to `planned`, in a new queue round: its job is still known to Redis
/// until vacuumed, so a later push needs a fresh task id) or cancelled (the batch ends
/// `cancelled`). Returns the batch's new status; `None` when its backfill is neither.
pub async fn hand_back(pool: &PgPool, batch_id: &str) -> Result<Option<BatchStatus>, sqlx::Error> {
    let row: Option<(BatchStatus,)> = sqlx::query_as(
        "UPDATE batches b SET \
           status = CASE WHEN f.status = $3 THEN $4 ELSE $5 END, \
           finished_at = CASE WHEN f.status = $3 THEN now() ELSE NULL END, \
           queue_round = b.queue_round + 1, worker = NULL, queued_at = NULL, started_at = NULL \
         FROM backfills f \
         WHERE b.id = $1 AND f.id = b.backfill_id AND b.status = ANY($2) AND f.status = ANY($6) \
         RETURNING b.status",
    )
    .bind(batch_id)
    .bind(&BatchStatus::UNFINISHED[..])
    .bind(BackfillStatus::Cancelled)
    .bind(BatchStatus::Cancelled)
    .bind(BatchStatus::Planned)
    .bind(&HELD[..])
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(status,)| status))
}

/// Marks a *planned* batch running under `worker` (a reorg repair runs the batches it planned);
/// false when someone else has it.
pub async fn claim_planned(
    pool: &PgPool,
    batch_id: &str,
    worker: &str,
) -> Result<bool, sqlx::Error> {
    let claimed = sqlx::query(
        "UPDATE batches SET status = $3, deliveries = deliveries + 1, worker = $2, \
           started_at = now() WHERE id = $1 AND status = $4",
    )
    .bind(batch_id)
    .bind(worker)
    .bind(BatchStatus::Running)
    .bind(BatchStatus::Planned)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(claimed > 0)
}

/// The status of a batch, if it exists.
pub async fn status(pool: &PgPool, batch_id: &str) -> Result<Option<BatchStatus>, sqlx::Error> {
    let row: Option<(BatchStatus,)> = sqlx::query_as("SELECT status FROM batches WHERE id = $1")
        .bind(batch_id)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|(s,)| s))
}

/// Records a failed attempt of a running batch (its kind and message) and hands it back to its
/// queue; returns the attempts so far, `None` when the batch was not running.
pub async fn record_failure(
    pool: &PgPool,
    batch_id: &str,
    kind: FailureKind,
    message: &str,
) -> Result<Option<i32>, sqlx::Error> {
    let row: Option<(i32,)> = sqlx::query_as(
        "UPDATE batches SET attempts = attempts + 1, last_error = $2, last_failure_kind = $3, \
           status = $4 WHERE id = $1 AND status = $5 RETURNING attempts",
    )
    .bind(batch_id)
    .bind(message)
    .bind(kind)
    .bind(BatchStatus::Queued)
    .bind(BatchStatus::Running)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(a,)| a))
}

/// Marks an unfinished batch failed for good, with its last failure.
pub async fn fail(
    pool: &PgPool,
    batch_id: &str,
    kind: FailureKind,
    message: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE batches SET status = $2, last_error = $3, last_failure_kind = $4, \
           finished_at = now() WHERE id = $1 AND status = ANY($5)",
    )
    .bind(batch_id)
    .bind(BatchStatus::Failed)
    .bind(message)
    .bind(kind)
    .bind(&BatchStatus::UNFINISHED[..])
    .execute(pool)
    .await?;
    Ok(())
}

/// Quarantines the single block of `job` with its failure: the batch ends `quarantined` and the
/// block is listed (again, if it was released before), in one transaction.
pub async fn quarantine(
    pool: &PgPool,
    job: &BatchJob,
    kind: FailureKind,
    message: &str,
    attempts: i32,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE batches SET status = $2, last_error = $3, last_failure_kind = $4, \
           finished_at = now() WHERE id = $1",
    )
    .bind(&job.batch_id)
    .bind(BatchStatus::Quarantined)
    .bind(message)
    .bind(kind)
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

/// Marks an unfinished batch split with its failure and plans `halves` in its lane as its
/// children (taking over finished batches of the same ranges), in one transaction. Returns the
/// children that must be queued, with their queue rounds (none if the batch was finished).
pub async fn split(
    pool: &PgPool,
    job: &BatchJob,
    halves: &[BlockRange],
    kind: FailureKind,
    message: &str,
) -> Result<Vec<(BatchJob, i32)>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let lane: Option<(Lane,)> = sqlx::query_as(
        "UPDATE batches SET status = $3, last_error = $2, last_failure_kind = $4, \
           finished_at = now() WHERE id = $1 AND status = ANY($5) RETURNING lane",
    )
    .bind(&job.batch_id)
    .bind(message)
    .bind(BatchStatus::Split)
    .bind(kind)
    .bind(&BatchStatus::UNFINISHED[..])
    .fetch_optional(&mut *tx)
    .await?;
    let Some((lane,)) = lane else {
        return Ok(Vec::new());
    };
    let ids: Vec<String> = halves
        .iter()
        .map(|r| BatchId::new(&job.chain, *r).to_string())
        .collect();
    let planned: Vec<QueueableRow> = sqlx::query_as(
        "INSERT INTO batches (id, chain, from_block, to_block, backfill_id, status, parent_id, lane) \
         SELECT id, $2, f, t, $3, $8, $4, $7 FROM UNNEST($1::text[], $5::int8[], $6::int8[]) AS b(id, f, t) \
         ON CONFLICT (id) DO UPDATE SET backfill_id = EXCLUDED.backfill_id, status = $8, \
           parent_id = EXCLUDED.parent_id, lane = EXCLUDED.lane, attempts = 0, deliveries = 0, \
           last_error = NULL, last_failure_kind = NULL, \
           worker = NULL, queue_round = batches.queue_round + 1, planned_at = now(), \
           queued_at = NULL, started_at = NULL, finished_at = NULL \
         WHERE batches.status = ANY($9) \
         RETURNING id, chain, from_block, to_block, backfill_id, queue_round",
    )
    .bind(&ids)
    .bind(job.chain.as_str())
    .bind(job.backfill_id)
    .bind(&job.batch_id)
    .bind(halves.iter().map(|r| r.from as i64).collect::<Vec<_>>())
    .bind(halves.iter().map(|r| r.to as i64).collect::<Vec<_>>())
    .bind(lane)
    .bind(BatchStatus::Planned)
    .bind(&BatchStatus::FINISHED[..])
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(planned
        .into_iter()
        .filter_map(QueueableRow::into_job)
        .collect())
}

/// Marks a batch done (its rows and coverage are written in the same transaction).
pub async fn mark_done(conn: &mut PgConnection, batch_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE batches SET status = $2, finished_at = now(), last_error = NULL, \
           last_failure_kind = NULL WHERE id = $1",
    )
    .bind(batch_id)
    .bind(BatchStatus::Done)
    .execute(conn)
    .await?;
    Ok(())
}

/// Plans the given failed or quarantined batches of `backfill_id` anew with a fresh budget and
/// releases their quarantined blocks; returns how many were reopened (none of a cancelled
/// backfill).
pub async fn reopen(
    tx: &mut Transaction<'_, Postgres>,
    backfill_id: Uuid,
    batch_ids: &[String],
) -> Result<u64, sqlx::Error> {
    let reopened = sqlx::query(
        "UPDATE batches SET status = $3, attempts = 0, deliveries = 0, \
           queue_round = queue_round + 1, queued_at = NULL, started_at = NULL, finished_at = NULL \
         WHERE backfill_id = $1 AND id = ANY($2) AND status = ANY($4) \
           AND NOT EXISTS (SELECT 1 FROM backfills WHERE id = $1 AND status = $5)",
    )
    .bind(backfill_id)
    .bind(batch_ids)
    .bind(BatchStatus::Planned)
    .bind([BatchStatus::Failed, BatchStatus::Quarantined].as_slice())
    .bind(BackfillStatus::Cancelled)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if reopened > 0 {
        sqlx::query(
            "UPDATE quarantined_blocks SET released_at = now() \
             WHERE batch_id = ANY($1) AND released_at IS NULL",
        )
        .bind(batch_ids)
        .execute(&mut **tx)
        .await?;
    }
    Ok(reopened)
}

/// How many batches of a backfill are in each status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusCounts(Vec<(BatchStatus, i64)>);

impl StatusCounts {
    /// Batches in `status`.
    pub fn get(&self, status: BatchStatus) -> i64 {
        self.0
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, n)| *n)
    }

    /// Batches not finished yet.
    pub fn unfinished(&self) -> i64 {
        BatchStatus::UNFINISHED.iter().map(|s| self.get(*s)).sum()
    }
}

/// The batch counts of `backfill_id` by status.
pub async fn counts(pool: &PgPool, backfill_id: Uuid) -> Result<StatusCounts, sqlx::Error> {
    let rows: Vec<(BatchStatus, i64)> = sqlx::query_as(
        "SELECT status, count(*) FROM batches WHERE backfill_id = $1 GROUP BY status",
    )
    .bind(backfill_id)
    .fetch_all(pool)
    .await?;
    Ok(StatusCounts(rows))
}

/// Whether unfinished batches of any backfill overlap `range`.
pub async fn unfinished_overlap(
    pool: &PgPool,
    chain: &ChainName,
    range: BlockRange,
) -> Result<bool, sqlx::Error> {
    let (found,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM batches WHERE chain = $1 AND status = ANY($4) \
           AND to_block >= $2 AND from_block <= $3)",
    )
    .bind(chain.as_str())
    .bind(range.from as i64)
    .bind(range.to as i64)
    .bind(&BatchStatus::UNFINISHED[..])
    .fetch_one(pool)
    .await?;
    Ok(found)
}
