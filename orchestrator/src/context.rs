//! The application context: what the orchestrator's components (the admin API, the scheduler
//! jobs, the head tracker and live lane, the reconciler and seam checks) share. One value per
//! process; a leader's components get a copy carrying its leader term and its term's shutdown
//! token, so every write they make is fenced by that term.

use blockfill_activities::{
    BatchQueues, SchedulerJob,
    fence::{self, LeaderTerm},
    queue::JobQueue,
};
use sea_orm::{
    DatabaseConnection,
    sqlx::{self, PgPool},
};
use tokio_util::sync::CancellationToken;

use crate::{scheduler::SchedulerError, settings::SchedulerArgs};

/// What the orchestrator's components share: PostgreSQL, the queues, tuning, and the
/// leader term (if any) their writes belong to.
#[derive(Clone)]
pub struct AppContext {
    /// sea-orm connection.
    pub db: DatabaseConnection,
    /// The same pool, for raw SQL.
    pub pool: PgPool,
    /// The batch queues (one per lane and chain).
    pub queues: BatchQueues,
    /// The scheduler's own queue.
    pub scheduler: JobQueue<SchedulerJob>,
    /// Tuning.
    pub settings: SchedulerArgs,
    /// Stops generations early (they continue as new).
    pub shutdown: CancellationToken,
    /// This orchestrator's instance id (recorded on the checkpoints it writes).
    pub instance: String,
    /// The leader term this context schedules under; every scheduler write confirms it (`None`
    /// outside a term: the API's own writes).
    pub term: Option<LeaderTerm>,
}

impl AppContext {
    /// Starts a transaction whose writes belong to this context's leader term (refused, with
    /// [`SchedulerError::Fenced`], once a newer term exists).
    pub async fn fenced_tx(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, SchedulerError> {
        let mut tx = self.pool.begin().await?;
        fence::confirm(self.term.as_ref(), &mut tx).await?;
        Ok(tx)
    }
}
