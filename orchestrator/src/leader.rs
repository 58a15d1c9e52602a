//! Leadership: of all orchestrators on one database, only the holder of a PostgreSQL advisory lock
//! schedules (runs scheduler generations, the reconciler and the head tracker); the others serve
//! the API read-only and try to take the lock every second. The lock lives on a dedicated
//! connection, so a leader that dies or loses the database releases it at once.
//!
//! Each election starts a new **term** (`leadership.term`), which every scheduler write of the
//! leader confirms ([`blockfill_activities::fence`]): once a newer term exists, a deposed
//! leader's writes are refused. The lock connection carries server-side TCP keepalives and a
//! statement timeout (the server drops a partitioned leader's lock within seconds, not hours),
//! and the leader confirms its lock over it every second: one that cannot within [`LEASE`]
//! steps down and stops scheduling.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use std::str::FromStr;

use blockfill_activities::{fence::LeaderTerm, store::leadership};
use sea_orm::sqlx::{
    self, ConnectOptions, Connection, PgConnection, PgPool, postgres::PgConnectOptions,
};
use tokio_util::sync::CancellationToken;

/// How often a standby tries the lock and a leader checks it still holds it.
const CAMPAIGN_INTERVAL: Duration = Duration::from_secs(1);
/// Longest a leader goes on scheduling without confirming its lock (and longest one connection
/// attempt or statement on the lock connection may take).
pub const LEASE: Duration = Duration::from_secs(5);
/// Server-side settings of the lock connection: a statement never hangs, and a client that
/// vanished without closing (a partition) is dropped, with its lock, after about 5 + 3 x 2 s.
const LOCK_CONNECTION_SETTINGS: [(&str, &str); 4] = [
    ("statement_timeout", "5000"),
    ("tcp_keepalives_idle", "5"),
    ("tcp_keepalives_interval", "2"),
    ("tcp_keepalives_count", "3"),
];

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
    /// The term every scheduler write of this leadership confirms.
    pub term: LeaderTerm,
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
                // A new term: waits for the writes of the previous term still in flight, and
                // refuses all of its later ones.
                let recorded = leadership::begin_term(pool, &role.instance, &role.api_addr).await;
                match recorded {
                    Err(e) => {
                        tracing::warn!(target: "blockfill::leader", error = %e, "cannot record leadership; giving the lock back");
                        drop(connection);
                    }
                    Ok(term) => {
                        role.leader.store(true, Ordering::Release);
                        role.campaigned.store(true, Ordering::Release);
                        tracing::info!(target: "blockfill::leader", instance = %role.instance, term, "elected scheduler leader");
                        metrics::gauge!("blockfill_is_leader").set(1.0);
                        metrics::gauge!("blockfill_leader_term").set(term as f64);
                        return Some(Term {
                            token: shutdown.child_token(),
                            term: LeaderTerm {
                                holder: role.instance.clone(),
                                term,
                            },
                            connection,
                        });
                    }
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
    let options = PgConnectOptions::from_str(database_url)?.options(LOCK_CONNECTION_SETTINGS);
    let mut connection = tokio::time::timeout(LEASE, options.connect())
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)??;
    let locked = leadership::try_lock_scheduler(&mut connection).await?;
    Ok(locked.then_some(connection))
}

/// Holds the lock until the connection fails, the lock cannot be confirmed within [`LEASE`],
/// another leader is recorded, or the term's token is cancelled; then steps down.
pub async fn hold(mut term: Term, pool: &PgPool, role: &Role) {
    loop {
        tokio::select! {
            _ = term.token.cancelled() => break,
            _ = tokio::time::sleep(CAMPAIGN_INTERVAL) => {}
        }
        // Confirmed over the lock's own connection: an answer proves the lock is still held.
        let confirmed =
            tokio::time::timeout(LEASE, leadership::current_term(&mut term.connection)).await;
        match confirmed {
            Err(_) => {
                tracing::error!(target: "blockfill::leader", lease = ?LEASE, "cannot confirm the scheduler lock in time; stepping down");
                break;
            }
            Ok(Err(e)) => {
                tracing::error!(target: "blockfill::leader", error = %e, "lost the scheduler lock's connection; stepping down");
                break;
            }
            Ok(Ok(Some((holder, current))))
                if holder == term.term.holder && current == term.term.term => {}
            Ok(Ok(recorded)) => {
                tracing::error!(target: "blockfill::leader", ?recorded, term = term.term.term, "another leader was elected; stepping down");
                break;
            }
        }
        let _ = tokio::time::timeout(
            LEASE,
            leadership::heartbeat(pool, &role.instance, term.term.term),
        )
        .await;
    }
    role.leader.store(false, Ordering::Release);
    metrics::gauge!("blockfill_is_leader").set(0.0);
    term.token.cancel();
    // A silent connection must not hold up stepping down.
    let _ = tokio::time::timeout(Duration::from_secs(1), term.connection.close()).await;
    tracing::info!(target: "blockfill::leader", instance = %role.instance, "no longer the scheduler leader");
}
