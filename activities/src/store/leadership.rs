//! The `leadership` table and the scheduler's advisory lock: who leads (one row per role), its
//! term (incremented by every election) and heartbeat. Only the holder of the advisory lock
//! writes a new term; every fenced write confirms its term with [`confirm_term`].

use chrono::{DateTime, Utc};
use sea_orm::sqlx::{self, PgConnection, PgPool};

/// The role whose leader schedules (`leadership.role`).
const SCHEDULER_ROLE: &str = "scheduler";
/// The advisory lock key of the scheduler role ("blockfil" in ASCII).
const SCHEDULER_LOCK: i64 = 0x626c_6f63_6b66_696c;

/// Tries to take the scheduler's session-level advisory lock on `conn` (held until that
/// connection closes). Returns whether it is now held.
pub async fn try_lock_scheduler(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    let (locked,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
        .bind(SCHEDULER_LOCK)
        .fetch_one(conn)
        .await?;
    Ok(locked)
}

/// Records `holder` (listening at `api_addr`) as the scheduler leader in a new term and returns
/// the term. Call only while holding the lock of [`try_lock_scheduler`]: the row's update waits
/// for the previous term's fenced writes in flight (they hold it `FOR SHARE`) and refuses all
/// its later ones.
pub async fn begin_term(pool: &PgPool, holder: &str, api_addr: &str) -> Result<i64, sqlx::Error> {
    let (term,): (i64,) = sqlx::query_as(
        "INSERT INTO leadership (role, holder, api_addr, term) VALUES ($1, $2, $3, 1) \
         ON CONFLICT (role) DO UPDATE SET holder = EXCLUDED.holder, \
           api_addr = EXCLUDED.api_addr, acquired_at = now(), heartbeat_at = now(), \
           term = leadership.term + 1 \
         RETURNING term",
    )
    .bind(SCHEDULER_ROLE)
    .bind(holder)
    .bind(api_addr)
    .fetch_one(pool)
    .await?;
    Ok(term)
}

/// The recorded scheduler leader and its term, read on `conn` (the leader reads it over its lock
/// connection: an answer there proves the lock is still held).
pub async fn current_term(conn: &mut PgConnection) -> Result<Option<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT holder, term FROM leadership WHERE role = $1")
        .bind(SCHEDULER_ROLE)
        .fetch_optional(conn)
        .await
}

/// Records a heartbeat of `holder`'s `term` (nothing when another term is recorded).
pub async fn heartbeat(pool: &PgPool, holder: &str, term: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE leadership SET heartbeat_at = now() WHERE role = $1 AND holder = $2 AND term = $3",
    )
    .bind(SCHEDULER_ROLE)
    .bind(holder)
    .bind(term)
    .execute(pool)
    .await?;
    Ok(())
}

/// Whether `holder`'s `term` is the current one. Locks the leadership row `FOR SHARE` until the
/// caller's transaction ends, so a new election waits for that transaction and no write of it
/// lands after a newer term exists. Runs in the caller's transaction, before its writes.
pub async fn confirm_term(
    conn: &mut PgConnection,
    holder: &str,
    term: i64,
) -> Result<bool, sqlx::Error> {
    let current: Option<(i64,)> = sqlx::query_as(
        "SELECT term FROM leadership WHERE role = $1 AND holder = $2 AND term = $3 FOR SHARE",
    )
    .bind(SCHEDULER_ROLE)
    .bind(holder)
    .bind(term)
    .fetch_optional(conn)
    .await?;
    Ok(current.is_some())
}

/// The recorded scheduler leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leader {
    /// Instance id of the leader.
    pub holder: String,
    /// Its API address.
    pub api_addr: Option<String>,
    /// When it was elected.
    pub acquired_at: DateTime<Utc>,
    /// Its last heartbeat.
    pub heartbeat_at: DateTime<Utc>,
}

/// A `leadership` row as read: holder, api_addr, acquired_at, heartbeat_at.
type LeaderRow = (String, Option<String>, DateTime<Utc>, DateTime<Utc>);

/// The recorded scheduler leader, if any was ever elected.
pub async fn leader(pool: &PgPool) -> Result<Option<Leader>, sqlx::Error> {
    let row: Option<LeaderRow> = sqlx::query_as(
        "SELECT holder, api_addr, acquired_at, heartbeat_at FROM leadership WHERE role = $1",
    )
    .bind(SCHEDULER_ROLE)
    .fetch_optional(pool)
    .await?;
    Ok(
        row.map(|(holder, api_addr, acquired_at, heartbeat_at)| Leader {
            holder,
            api_addr,
            acquired_at,
            heartbeat_at,
        }),
    )
}
