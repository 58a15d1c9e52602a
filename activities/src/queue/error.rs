//! [`QueueError`], the errors of the job-queue layer, and how Redis and apalis errors map to it.

use apalis_core::{backend::finalize::DurableError, error::WorkerError};
use apalis_redis::RedisError;

/// What the error messages suggest when Redis cannot be reached.
const START_REDIS_HINT: &str = "is Redis running? Start it with scripts/services.sh \
     (or `redis-server --port 6379`), or set REDIS_URL to a running server";

/// Errors of the job-queue layer.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Redis did not answer (refused, timed out, connection dropped).
    #[error("cannot reach Redis at {url} ({operation}): {source}; {hint}", hint = START_REDIS_HINT)]
    Unreachable {
        /// The Redis URL, without password.
        url: String,
        /// What was being done.
        operation: &'static str,
        /// The client error.
        #[source]
        source: RedisError,
    },
    /// Redis answered with an error (script error, wrong type, authentication, ...).
    #[error("Redis at {url} failed to {operation}: {source}")]
    Redis {
        /// The Redis URL, without password.
        url: String,
        /// What was being done.
        operation: &'static str,
        /// The client or server error.
        #[source]
        source: RedisError,
    },
    /// The Redis URL could not be parsed.
    #[error("invalid Redis URL {url}: {source}")]
    InvalidUrl {
        /// The Redis URL, without password.
        url: String,
        /// The parse error.
        #[source]
        source: RedisError,
    },
    /// The settings or worker options are out of range.
    #[error("invalid job-queue settings: {reason}")]
    InvalidSettings {
        /// What is wrong and what to use instead.
        reason: String,
    },
    /// A task id that apalis would not hand back unchanged.
    #[error("invalid task id {task_id:?} for queue {queue}: {reason}")]
    InvalidTaskId {
        /// The rejected id.
        task_id: String,
        /// The queue name.
        queue: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A job could not be encoded as JSON.
    #[error("cannot encode job {task_id} for queue {queue}: {source}")]
    Encode {
        /// The task id of the job.
        task_id: String,
        /// The queue name.
        queue: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// apalis-redis failed for a reason other than Redis itself.
    #[error("apalis-redis failed to {operation} on queue {queue}: {source}")]
    Storage {
        /// The queue name.
        queue: String,
        /// What was being done.
        operation: &'static str,
        /// The apalis-redis error.
        #[source]
        source: apalis_redis::Error,
    },
    /// The apalis worker stopped with an error (usually Redis trouble); its jobs were handed back.
    #[error(
        "worker {worker} on queue {queue} (Redis at {url}) stopped with an error: {source}{}",
        worker_error_hint(.source)
    )]
    Worker {
        /// The worker name.
        worker: String,
        /// The queue name.
        queue: String,
        /// The Redis URL, without password.
        url: String,
        /// The apalis error.
        #[source]
        source: WorkerError,
    },
}

impl QueueError {
    /// Whether retrying the same call later may succeed (Redis unreachable or a worker that lost
    /// its connection), as opposed to a configuration or programming error.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { .. } | Self::Worker { .. } => true,
            Self::Redis { .. }
            | Self::Storage { .. }
            | Self::InvalidUrl { .. }
            | Self::InvalidSettings { .. }
            | Self::InvalidTaskId { .. }
            | Self::Encode { .. } => false,
        }
    }

    pub(super) fn redis(url: &str, operation: &'static str, source: RedisError) -> Self {
        let url = url.to_owned();
        if is_connection_error(&source) {
            Self::Unreachable {
                url,
                operation,
                source,
            }
        } else {
            Self::Redis {
                url,
                operation,
                source,
            }
        }
    }

    pub(super) fn storage(
        url: &str,
        queue: &str,
        operation: &'static str,
        source: apalis_redis::Error,
    ) -> Self {
        match source {
            apalis_redis::Error::Database(e) => Self::redis(url, operation, e),
            source => Self::Storage {
                queue: queue.to_owned(),
                operation,
                source,
            },
        }
    }
}

/// The start-Redis hint, if a worker stopped because Redis did not answer.
fn worker_error_hint(error: &WorkerError) -> String {
    let WorkerError::BackendError(source) = error else {
        return String::new();
    };
    match source.downcast_ref::<DurableError<apalis_redis::Error, serde_json::Error>>() {
        Some(DurableError::PollNextError(apalis_redis::Error::Database(e)))
            if is_connection_error(e) =>
        {
            format!("; {START_REDIS_HINT}")
        }
        _ => String::new(),
    }
}

fn is_connection_error(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_refusal() || e.is_timeout() || e.is_connection_dropped()
}
