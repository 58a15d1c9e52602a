//! Leadership: of all orchestrators on one database, only the holder of a PostgreSQL advisory lock
//! schedules (runs scheduler generations, the reconciler and the head tracker); the others serve
//! the API read-only and try to take the lock every second. The lock lives on a dedicated
//! connection, so a leader that dies or loses the database releases it at once.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use sea_orm::sqlx::{self, Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

/// The advisory lock key of the scheduler role ("blockfil" in ASCII).
const SCHEDULER_LOCK: i64 = 0x626c_6f63_6b66_696c;
/// How often a standby tries the lock and a leader checks it still holds it.
const CAMPAIGN_INTERVAL: Duration = Duration::from_secs(1);

/// This orchestrator's identity and role, shared with the API.
#[derive(Debug, Clone)]
pub struct Role {
    /// Unique id of this orchestrator process.
    pub instance: String,
    /// Where its API listens.
    pub api_addr: String,
    leader: Arc<AtomicBool>,
    campaigned: Arc<AtomicBool>,
}

impl Role {
    /// A standby with a fresh instance id.
    pub fn new(api_addr: String) -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
        Self {
            instance: format!(
                "{host}-{}-{}",
                std::process::id(),
                uuid::Uuid::now_v7().simple()
            ),
            api_addr,
            leader: Arc::default(),
            campaigned: Arc::default(),
        }
    }

    /// Whether the first try for the lock is over (so `is_leader` means something).
    pub fn has_campaigned(&self) -> bool {
        self.campaigned.load(Ordering::Acquire)
    }

    /// Whether this orchestrator currently schedules.
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Acquire)
    }
}

/// One term of leadership: ends when `token` is cancelled.
pub struct Term {
    /// Cancelled when leadership is lost or the process shuts down.
    pub token: CancellationToken,
    connection: PgConnection,
}

/// Waits until this orchestrator holds the scheduler lock (or `shutdown`), then records itself
/// in `leadership`. Connection errors are retried: the database may be away.
pub async fn acquire(
    database_url: &str,
    pool: &PgPool,
    role: &Role,
    shutdown: &CancellationToken,
) -> Option<Term> {
    loop {
        if shutdown.is_cancelled() {
            return None;
        }
        match try_lock(database_url).await {
            Ok(Some(connection)) => {
                let recorded = sqlx::query(
                    "INSERT INTO leadership (role, holder, api_addr) VALUES ('scheduler', $1, $2) \
                     ON CONFLICT (role) DO UPDATE SET holder = EXCLUDED.holder, \
                       api_addr = EXCLUDED.api_addr, acquired_at = now(), heartbeat_at = now()",
                )
                .bind(&role.instance)
                .bind(&role.api_addr)
                .execute(pool)
                .await;
                if let Err(e) = recorded {
                    tracing::warn!(target: "blockfill::leader", error = %e, "cannot record leadership; giving the lock back");
                    drop(connection);
                } else {
                    role.leader.store(true, Ordering::Release);
                    role.campaigned.store(true, Ordering::Release);
                    tracing::info!(target: "blockfill::leader", instance = %role.instance, "elected scheduler leader");
                    metrics::gauge!("blockfill_is_leader").set(1.0);
                    return Some(Term {
                        token: shutdown.child_token(),
                        connection,
                    });
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(target: "blockfill::leader", error = %e, "cannot reach PostgreSQL to campaign")
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(CAMPAIGN_INTERVAL) => {}
        }
    }
}

async fn try_lock(database_url: &str) -> Result<Option<PgConnection>, sqlx::Error> {
    let mut connection = PgConnection::connect(database_url).await?;
    let (locked,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
        .bind(SCHEDULER_LOCK)
        .fetch_one(&mut connection)
        .await?;
    Ok(locked.then_some(connection))
}

/// Holds the lock until the connection fails or the term's token is cancelled; then steps down.
pub async fn hold(mut term: Term, pool: &PgPool, role: &Role) {
    loop {
        tokio::select! {
            _ = term.token.cancelled() => break,
            _ = tokio::time::sleep(CAMPAIGN_INTERVAL) => {}
        }
        let alive = sqlx::query("SELECT 1").execute(&mut term.connection).await;
        if let Err(e) = alive {
            tracing::error!(target: "blockfill::leader", error = %e, "lost the scheduler lock's connection; stepping down");
            break;
        }
        let _ = sqlx::query(
            "UPDATE leadership SET heartbeat_at = now() WHERE role = 'scheduler' AND holder = $1",
        )
        .bind(&role.instance)
        .execute(pool)
        .await;
    }
    role.leader.store(false, Ordering::Release);
    metrics::gauge!("blockfill_is_leader").set(0.0);
    term.token.cancel();
    let _ = term.connection.close().await;
    tracing::info!(target: "blockfill::leader", instance = %role.instance, "no longer the scheduler leader");
}
