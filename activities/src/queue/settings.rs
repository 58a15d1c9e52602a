//! The settings of a queue ([`QueueSettings`]: where Redis is, heartbeats, polling) and of one
//! worker ([`WorkerOptions`]: name, concurrency, retries and their backoff).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::QueueError;
use crate::backoff::{Backoff, Jitter};

/// Connection and timing settings of a job queue.
///
/// All workers and pushers of one queue must use the same `prefix`; tests use a unique prefix
/// each, so that they never see each other's jobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct QueueSettings {
    /// Redis URL. Default: `redis://127.0.0.1:6379`
    pub redis_url: String,
    /// Key namespace: queue `lane` lives under `{prefix}:{lane}:*`. Default: `blockfill`
    pub prefix: String,
    /// How often a worker records that it is alive and looks for dead workers' jobs.
    /// At least 1 s (Redis-side timestamps are whole seconds). Default: `2s`
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// After how many missed heartbeats a worker counts as dead and its jobs are re-queued.
    /// `heartbeat_interval * missed_heartbeats` must exceed `heartbeat_interval` by 2 s.
    /// Default: `3`
    pub missed_heartbeats: usize,
    /// How often an idle worker looks for new (or newly due) jobs. Default: `100ms`
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// The most jobs a worker takes from Redis in one fetch; a worker never takes more than its
    /// concurrency, so it does not sit on jobs that another worker could start. Default: `20`
    pub fetch_batch_size: usize,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            redis_url: "redis://127.0.0.1:6379".to_owned(),
            prefix: "blockfill".to_owned(),
            heartbeat_interval: Duration::from_secs(2),
            missed_heartbeats: 3,
            poll_interval: Duration::from_millis(100),
            fetch_batch_size: 20,
        }
    }
}

impl QueueSettings {
    /// Checks the values that apalis would otherwise panic on or misbehave with.
    pub(super) fn validate(&self) -> Result<(), QueueError> {
        let invalid = |reason: String| Err(QueueError::InvalidSettings { reason });
        if self.prefix.is_empty() {
            return invalid("prefix must not be empty".to_owned());
        }
        if self.fetch_batch_size == 0 {
            return invalid("fetch_batch_size must be at least 1".to_owned());
        }
        if self.poll_interval.is_zero() {
            return invalid("poll_interval must be greater than zero".to_owned());
        }
        if self.heartbeat_interval < Duration::from_secs(1) {
            return invalid(format!(
                "heartbeat_interval must be at least 1s (Redis-side timestamps are whole seconds), got {:?}",
                self.heartbeat_interval
            ));
        }
        // apalis compares whole-second timestamps: a live worker's last heartbeat can look up to
        // `heartbeat_interval + 1 s` old, so the orphan threshold needs a margin above that.
        let orphan_after = (self
            .heartbeat_interval
            .saturating_mul(u32::try_from(self.missed_heartbeats).unwrap_or(u32::MAX)))
        .as_secs();
        let needed = self.heartbeat_interval.as_secs_f64().ceil() as u64 + 2;
        if orphan_after < needed {
            return invalid(format!(
                "heartbeat_interval x missed_heartbeats = {orphan_after}s is too short to tell a live \
                 worker from a dead one; it must be at least {needed}s (e.g. 2s x 3)"
            ));
        }
        Ok(())
    }
}

/// How one [`run_worker`](super::run_worker) call runs jobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkerOptions {
    /// Start of the worker's name; host, pid and a uuid v7 are appended. Default: `blockfill`
    pub name_prefix: String,
    /// Jobs run at once by this worker. Default: `4`
    pub concurrency: usize,
    /// In-process retries after a [`JobFailure::Retry`](super::JobFailure::Retry); the handler runs at most `retries + 1`
    /// times per delivery. Default: `3`
    pub retries: usize,
    /// First backoff; it doubles with each retry, with +-25 % jitter. Default: `500ms`
    #[serde(with = "humantime_serde")]
    pub backoff_base: Duration,
    /// Longest backoff. Default: `30s`
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            name_prefix: "blockfill".to_owned(),
            concurrency: 4,
            retries: 3,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
        }
    }
}

impl WorkerOptions {
    /// The backoff between in-process retries: from `backoff_base` doubling up to `backoff_max`,
    /// +-25 % jitter, at most `retries` delays per delivery.
    #[must_use]
    pub fn backoff(&self) -> Backoff {
        Backoff::new(self.backoff_base, self.backoff_max)
            .with_jitter(Jitter::Proportional(0.25))
            .with_retries(self.retries)
    }
}
