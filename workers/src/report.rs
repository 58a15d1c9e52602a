//! The worker's report of itself (`GET /v1/workers`): what it serves, its concurrency, batches in
//! flight, blocks written per second, refreshed every [`workers::REPORT_INTERVAL`]; removed when the
//! worker stops taking jobs, so a draining worker no longer counts as running.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::{Duration, Instant},
};

use blockfill_activities::store::workers::{self, WorkerReport};
use sea_orm::sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// Reports older than this are deleted (by any worker).
const PRUNE_AFTER: Duration = Duration::from_secs(3600);

/// Counters the lanes' handlers update.
#[derive(Debug, Default)]
pub(crate) struct WorkerStats {
    in_flight: AtomicI64,
    batches_done: AtomicI64,
    blocks_done: AtomicI64,
}

/// Counts one batch in flight until dropped.
pub(crate) struct Running<'a>(&'a WorkerStats);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl WorkerStats {
    /// Counts a batch in flight for as long as the guard lives.
    pub(crate) fn running(&self) -> Running<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Running(self)
    }

    /// Counts a written batch of `blocks` blocks.
    pub(crate) fn written(&self, blocks: u64) {
        self.batches_done.fetch_add(1, Ordering::Relaxed);
        self.blocks_done
            .fetch_add(i64::try_from(blocks).unwrap_or(i64::MAX), Ordering::Relaxed);
    }
}

/// Publishes `report` (with the live counters of `stats`) every [`workers::REPORT_INTERVAL`] until
/// `shutdown`, then removes it. Failures are logged and retried at the next interval.
pub(crate) async fn publish_reports(
    pool: PgPool,
    mut report: WorkerReport,
    stats: Arc<WorkerStats>,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(workers::REPORT_INTERVAL);
    let mut last = (Instant::now(), 0i64);
    let mut ticks = 0u64;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let blocks_done = stats.blocks_done.load(Ordering::Relaxed);
        let elapsed = last.0.elapsed().as_secs_f64();
        report.blocks_per_second = if elapsed > 0.0 {
            (blocks_done - last.1).max(0) as f64 / elapsed
        } else {
            0.0
        };
        last = (Instant::now(), blocks_done);
        report.blocks_done = blocks_done;
        report.batches_done = stats.batches_done.load(Ordering::Relaxed);
        report.in_flight = i32::try_from(stats.in_flight.load(Ordering::Relaxed)).unwrap_or(0);
        if let Err(e) = workers::report(&pool, &report).await {
            tracing::warn!(target: "blockfill::worker", error = %e, "cannot publish the worker's report");
        }
        ticks += 1;
        if ticks % 300 == 1
            && let Err(e) = workers::prune(&pool, PRUNE_AFTER).await
        {
            tracing::debug!(target: "blockfill::worker", error = %e, "cannot prune old worker reports");
        }
    }
    if let Err(e) = workers::remove(&pool, &report.id).await {
        tracing::warn!(target: "blockfill::worker", error = %e, "cannot remove the worker's report; it expires");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_counts_running_batches_until_their_guard_drops() {
        let stats = WorkerStats::default();
        let first = stats.running();
        let second = stats.running();
        assert_eq!(stats.in_flight.load(Ordering::Relaxed), 2);
        drop(first);
        assert_eq!(stats.in_flight.load(Ordering::Relaxed), 1);
        stats.written(100);
        stats.written(50);
        drop(second);
        assert_eq!(stats.in_flight.load(Ordering::Relaxed), 0);
        assert_eq!(stats.batches_done.load(Ordering::Relaxed), 2);
        assert_eq!(stats.blocks_done.load(Ordering::Relaxed), 150);
    }
}
