//! The `endpoint_health` table: each process's latest view of each endpoint it uses (one row per
//! chain, endpoint and reporter, upserted), read merged by the admin API; reports nobody
//! refreshed for an hour are pruned.

use chrono::{DateTime, Utc};
use sea_orm::sqlx::{self, PgPool};

/// Upserts `reporter`'s snapshots of the endpoints of `chain`: `snapshots[i]` is its view of
/// `urls[i]`.
pub async fn publish(
    pool: &PgPool,
    chain: &str,
    reporter: &str,
    urls: &[String],
    snapshots: &[serde_json::Value],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO endpoint_health (chain, endpoint, reporter, snapshot, updated_at) \
         SELECT $1, e, $2, s, now() FROM UNNEST($3::text[], $4::jsonb[]) AS u(e, s) \
         ON CONFLICT (chain, endpoint, reporter) DO UPDATE \
           SET snapshot = EXCLUDED.snapshot, updated_at = EXCLUDED.updated_at",
    )
    .bind(chain)
    .bind(reporter)
    .bind(urls)
    .bind(snapshots)
    .execute(pool)
    .await?;
    Ok(())
}

/// Drops the reports nobody refreshed for an hour (processes that are gone).
pub async fn prune(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM endpoint_health WHERE updated_at < now() - interval '1 hour'")
        .execute(pool)
        .await?;
    Ok(())
}

/// One process's report of one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointReport {
    /// The endpoint's URL.
    pub endpoint: String,
    /// The process (`worker:{name}:{pid}` or `orchestrator:{instance}`).
    pub reporter: String,
    /// Its snapshot (an `EndpointSnapshot` as JSON).
    pub snapshot: serde_json::Value,
    /// When it reported.
    pub updated_at: DateTime<Utc>,
}

/// The reports of `chain`'s endpoints made in the last `max_age_seconds`, by reporter.
pub async fn fresh_reports(
    pool: &PgPool,
    chain: &str,
    max_age_seconds: f64,
) -> Result<Vec<EndpointReport>, sqlx::Error> {
    let rows: Vec<(String, String, serde_json::Value, DateTime<Utc>)> = sqlx::query_as(
        "SELECT endpoint, reporter, snapshot, updated_at FROM endpoint_health \
         WHERE chain = $1 AND updated_at > now() - make_interval(secs => $2) \
         ORDER BY reporter",
    )
    .bind(chain)
    .bind(max_age_seconds)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(endpoint, reporter, snapshot, updated_at)| EndpointReport {
                endpoint,
                reporter,
                snapshot,
                updated_at,
            },
        )
        .collect())
}
