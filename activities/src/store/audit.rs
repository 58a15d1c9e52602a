//! The audit log (`audit_log`): one row per mutation request of the admin API, refused ones
//! included: who (key id, auth mode, role, client address), what (method, route, path, a short
//! summary of the body), and how it ended (status, result code), newest first.

use chrono::{DateTime, Utc};
use sea_orm::sqlx::{self, PgPool};
use serde::{Deserialize, Serialize};

/// One audited request.
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ::sqlx::FromRow, utoipa::ToSchema,
)]
pub struct AuditRecord {
    /// The key it authenticated with, if any.
    pub key_id: Option<String>,
    /// How it was authenticated: `key`, `loopback`, `insecure`, or `none` (refused).
    pub auth: String,
    /// The role it acted with, if authenticated.
    pub role: Option<String>,
    /// HTTP method.
    pub method: String,
    /// The matched route template (`/v1/backfills/{id}/retry-failed`), if any route matched.
    pub route: Option<String>,
    /// The path as requested.
    pub path: String,
    /// The body, trimmed, URLs redacted.
    pub summary: Option<String>,
    /// HTTP status of the answer.
    pub status: i32,
    /// `ok`, or the error's `code`.
    pub result: String,
    /// The client's address.
    pub client_address: Option<String>,
}

/// An audit row as read back.
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ::sqlx::FromRow, utoipa::ToSchema,
)]
pub struct AuditEntry {
    /// Increasing id (the `before` cursor of the next page).
    pub id: i64,
    /// When it was recorded (after the answer).
    pub at: DateTime<Utc>,
    /// What was recorded.
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub record: AuditRecord,
}

/// Records one request.
pub async fn record(pool: &PgPool, record: &AuditRecord) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (key_id, auth, role, method, route, path, summary, status, \
           result, client_address) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&record.key_id)
    .bind(&record.auth)
    .bind(&record.role)
    .bind(&record.method)
    .bind(&record.route)
    .bind(&record.path)
    .bind(&record.summary)
    .bind(record.status)
    .bind(&record.result)
    .bind(&record.client_address)
    .execute(pool)
    .await?;
    Ok(())
}

/// Up to `limit` entries older than id `before` (all when `None`), of `key_id` only when given,
/// newest first.
pub async fn page(
    pool: &PgPool,
    limit: i64,
    before: Option<i64>,
    key_id: Option<&str>,
) -> Result<Vec<AuditEntry>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, at, key_id, auth, role, method, route, path, summary, status, result, \
           client_address FROM audit_log \
         WHERE ($1::int8 IS NULL OR id < $1) AND ($2::text IS NULL OR key_id = $2) \
         ORDER BY id DESC LIMIT $3",
    )
    .bind(before)
    .bind(key_id)
    .bind(limit)
    .fetch_all(pool)
    .await
}
