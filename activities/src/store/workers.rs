//! Worker reports (`workers`): every `blockfill-worker` process upserts its report every few
//! seconds and removes it when it stops; a report whose heartbeat is older than the stale window
//! is not listed (a killed process), and old ones are pruned.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sqlx::{self, PgPool};

use super::Lane;

/// How often a worker refreshes its report.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(2);
/// A report whose heartbeat is older than this is not listed (five missed reports: the process
/// is gone or cut off).
pub const STALE_AFTER: Duration = Duration::from_secs(10);

/// What a worker process says of itself.
#[derive(
    Debug, Clone, PartialEq, ::sqlx::FromRow, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct WorkerReport {
    /// Unique per process (name, host, pid, start).
    pub id: String,
    /// The host it runs on.
    pub host: String,
    /// Its version.
    pub version: String,
    /// The chains it serves (`None`: every chain).
    pub chains: Option<Vec<String>>,
    /// The lanes it serves.
    pub lanes: Vec<Lane>,
    /// Batches it runs at once, over all its lanes.
    pub concurrency: i32,
    /// Batches running now.
    pub in_flight: i32,
    /// Blocks written per second over the last report interval.
    pub blocks_per_second: f64,
    /// Batches written since it started.
    pub batches_done: i64,
    /// Blocks written since it started.
    pub blocks_done: i64,
}

/// A worker's report as the admin API lists it: the report, with when it started and its
/// heartbeat.
#[derive(
    Debug, Clone, PartialEq, ::sqlx::FromRow, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct WorkerRow {
    /// What the worker said of itself.
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub report: WorkerReport,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Its last report.
    pub last_heartbeat: DateTime<Utc>,
    /// Seconds since its last report.
    pub heartbeat_age_seconds: f64,
}

/// Records (or refreshes) a worker's report; its heartbeat is now.
pub async fn report(pool: &PgPool, report: &WorkerReport) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO workers (id, host, version, chains, lanes, concurrency, in_flight, \
           blocks_per_second, batches_done, blocks_done) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (id) DO UPDATE SET chains = EXCLUDED.chains, lanes = EXCLUDED.lanes, \
           concurrency = EXCLUDED.concurrency, in_flight = EXCLUDED.in_flight, \
           blocks_per_second = EXCLUDED.blocks_per_second, \
           batches_done = EXCLUDED.batches_done, blocks_done = EXCLUDED.blocks_done, \
           last_heartbeat = now()",
    )
    .bind(&report.id)
    .bind(&report.host)
    .bind(&report.version)
    .bind(&report.chains)
    .bind(&report.lanes)
    .bind(report.concurrency)
    .bind(report.in_flight)
    .bind(report.blocks_per_second)
    .bind(report.batches_done)
    .bind(report.blocks_done)
    .execute(pool)
    .await?;
    Ok(())
}

/// Removes a worker's report (it stopped).
pub async fn remove(pool: &PgPool, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM workers WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Deletes reports whose heartbeat is older than `older_than`.
pub async fn prune(pool: &PgPool, older_than: Duration) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM workers WHERE last_heartbeat < now() - make_interval(secs => $1)")
            .bind(older_than.as_secs_f64())
            .execute(pool)
            .await?
            .rows_affected(),
    )
}

/// The workers whose heartbeat is at most `stale_after` old, by id.
pub async fn fresh(pool: &PgPool, stale_after: Duration) -> Result<Vec<WorkerRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, host, version, chains, lanes, concurrency, in_flight, blocks_per_second, \
           batches_done, blocks_done, started_at, last_heartbeat, \
           EXTRACT(EPOCH FROM now() - last_heartbeat)::float8 AS heartbeat_age_seconds \
         FROM workers WHERE last_heartbeat >= now() - make_interval(secs => $1) ORDER BY id",
    )
    .bind(stale_after.as_secs_f64())
    .fetch_all(pool)
    .await
}

/// Blocks `chain` still has to index: those of its unfinished batches (both lanes; a paused or
/// cancelled backfill's planned batches are not queued, so they are no backlog to scale for)
/// plus the
/// unplanned rest of its active range and gaps backfills, from the furthest cursor of their kept
/// generations (a redelivered generation may have planned past the cursor its successor
/// copied). An estimate: a gaps backfill counts its whole unplanned range, and a rescan's
/// rewound cursor is not seen until its batches are planned.
pub async fn backlog_blocks(pool: &PgPool, chain: &str) -> Result<u64, sqlx::Error> {
    let (blocks,): (i64,) = sqlx::query_as(
        "SELECT (COALESCE((SELECT sum(x.to_block - x.from_block + 1) FROM batches x \
                           WHERE x.chain = $1 AND x.status = ANY($2) \
                             AND (x.status <> $5 OR EXISTS (SELECT 1 FROM backfills f \
                                  WHERE f.id = x.backfill_id AND f.status = ANY($3)))), 0) \
               + COALESCE((SELECT sum(GREATEST(b.to_block - c.cursor_block + 1, 0)) \
                           FROM backfills b \
                           JOIN LATERAL (SELECT max(cursor_block) AS cursor_block \
                                         FROM scheduler_checkpoints \
                                         WHERE backfill_id = b.id) c ON true \
                           WHERE b.chain = $1 AND b.status = ANY($3) AND b.mode <> $4), 0))::int8",
    )
    .bind(chain)
    .bind(&super::BatchStatus::UNFINISHED[..])
    .bind(&super::BackfillStatus::ACTIVE[..])
    .bind(super::BackfillMode::Live)
    .bind(super::BatchStatus::Planned)
    .fetch_one(pool)
    .await?;
    Ok(blocks.max(0) as u64)
}
