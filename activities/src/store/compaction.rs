//! Compaction of done live batch rows: deleting old ones a bounded number at a time while their
//! backfill's `compacted_*` counters take over what they counted, in one statement.

use std::time::Duration;

use sea_orm::sqlx::{self, PgPool};

use super::{BatchStatus, Lane};

/// Deletes done live batch rows that finished more than `older_than` ago, keeping each chain's
/// `keep_newest` newest (by block), at most `max_rows` of them, oldest blocks first; returns how
/// many. In the same statement, the owning backfill's `compacted_*` counters take over what the
/// rows counted (batches, blocks, retried and redelivered batches, attempts, redeliveries), so
/// its view and the chain status count the same before and after.
///
/// Reads each chain's done live batches through index `batches_live_done`. A row re-planned
/// meanwhile (no longer done, or no longer live) is left alone: the delete checks its conditions
/// again on the row it locks.
pub async fn compact_live_batches(
    pool: &PgPool,
    older_than: Duration,
    max_rows: i64,
    keep_newest: i64,
) -> Result<u64, sqlx::Error> {
    let (deleted,): (i64,) = sqlx::query_as(
        "WITH doomed AS ( \
           SELECT old.id FROM chains c \
           CROSS JOIN LATERAL ( \
             SELECT to_block AS newest_kept FROM batches \
             WHERE chain = c.name AND lane = $4 AND status = $5 \
             ORDER BY to_block DESC OFFSET $3 - 1 LIMIT 1) k \
           CROSS JOIN LATERAL ( \
             SELECT id FROM batches \
             WHERE chain = c.name AND lane = $4 AND status = $5 \
               AND to_block < k.newest_kept \
               AND finished_at < now() - make_interval(secs => $1) \
             ORDER BY to_block LIMIT $2) old \
           LIMIT $2), \
         gone AS ( \
           DELETE FROM batches b USING unnest(ARRAY(SELECT id FROM doomed)) AS d(id) \
           WHERE b.id = d.id AND b.lane = $4 AND b.status = $5 \
             AND b.finished_at < now() - make_interval(secs => $1) \
           RETURNING b.backfill_id, b.to_block - b.from_block + 1 AS blocks, b.attempts, b.deliveries), \
         per_backfill AS ( \
           SELECT backfill_id, count(*) AS n, SUM(blocks) AS blocks, \
                  count(*) FILTER (WHERE attempts > 0) AS retried, \
                  count(*) FILTER (WHERE deliveries > 1) AS redelivered, \
                  SUM(attempts) AS attempts, SUM(GREATEST(deliveries - 1, 0)) AS redeliveries \
           FROM gone GROUP BY backfill_id), \
         counted AS ( \
           UPDATE backfills f SET \
             compacted_batches = compacted_batches + p.n, \
             compacted_blocks = compacted_blocks + p.blocks, \
             compacted_retried = compacted_retried + p.retried, \
             compacted_redelivered = compacted_redelivered + p.redelivered, \
             compacted_attempts = compacted_attempts + p.attempts, \
             compacted_redeliveries = compacted_redeliveries + p.redeliveries \
           FROM per_backfill p WHERE f.id = p.backfill_id \
           RETURNING p.n) \
         SELECT COALESCE(SUM(n), 0)::int8 FROM counted",
    )
    .bind(older_than.as_secs_f64())
    .bind(max_rows)
    .bind(keep_newest)
    .bind(Lane::Live)
    .bind(BatchStatus::Done)
    .fetch_one(pool)
    .await?;
    Ok(deleted.max(0) as u64)
}
