//! Fencing of the scheduler's writes: a leader holds a **term** (incremented by every election
//! and recorded in `leadership`), and every scheduler transaction first confirms that its term is
//! still the current one. The confirmation takes a share lock on the leadership row, so a new
//! leader's election waits for the writes of the old term in flight, and every write after it is
//! refused: a deposed leader (partitioned, paused, slow to notice) cannot plan, unwind or re-feed.

use sea_orm::sqlx::{self, PgConnection};

use crate::store::leadership;

/// A leader's term, carried by its scheduler context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderTerm {
    /// The leader's instance id (as recorded in `leadership.holder`).
    pub holder: String,
    /// The term it was elected for.
    pub term: i64,
}

/// Why a fenced write was refused.
#[derive(Debug, thiserror::Error)]
pub enum FenceError {
    /// A newer term exists: this process no longer leads.
    #[error("leader term {term} of {holder} is over: a newer leader was elected; write refused")]
    Deposed {
        /// The deposed leader.
        holder: String,
        /// Its term.
        term: i64,
    },
    /// The leadership row could not be read.
    #[error("cannot confirm the leader term: {0}")]
    Database(#[from] sqlx::Error),
}

impl LeaderTerm {
    /// Confirms, inside the caller's transaction, that this term is still the current one, and
    /// keeps it so until the transaction ends.
    pub async fn confirm(&self, conn: &mut PgConnection) -> Result<(), FenceError> {
        if leadership::confirm_term(conn, &self.holder, self.term).await? {
            return Ok(());
        }
        metrics::counter!("blockfill_fenced_writes_total").increment(1);
        Err(FenceError::Deposed {
            holder: self.holder.clone(),
            term: self.term,
        })
    }
}

/// Confirms `term` if there is one (writes outside a leader's term, such as a worker's, are not
/// fenced).
pub async fn confirm(term: Option<&LeaderTerm>, conn: &mut PgConnection) -> Result<(), FenceError> {
    match term {
        Some(term) => term.confirm(conn).await,
        None => Ok(()),
    }
}
