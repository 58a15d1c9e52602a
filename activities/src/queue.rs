//! Job queues on Redis: a small layer over apalis 1.0 and apalis-redis 1.0 that the orchestrator
//! (which pushes jobs) and the worker binary (which runs them) share.
//!
//! Redis holds only a bounded window of runnable jobs; the plan, batch status, attempt budgets and
//! statistics live in PostgreSQL. This module therefore keeps to what apalis does well (delivery,
//! crash recovery, concurrency) and steers around the defects of apalis-redis 1.0.0 that
//! `stack.md` lists:
//!
//! - every worker runs with `lock_tasks(false)` (item 2) and with the heartbeat settings of
//!   [`QueueSettings`] (item 5), so the jobs of a killed worker come back after about
//!   `heartbeat_interval * missed_heartbeats` plus one heartbeat (6-8 s with the defaults);
//! - every worker gets a unique name (prefix, host, pid, uuid v7), so restarts never collide
//!   (item 6);
//! - an interval [`PollStrategy`] wakes idle workers every `poll_interval` (item 8);
//! - a handler's transient failures ([`JobFailure::Retry`]) are retried in-process with
//!   exponential backoff and jitter; when the retries are spent, or on [`JobFailure::Abort`], a
//!   panic or an undecodable payload, the job ends as an apalis `AbortError`, so the storage never
//!   re-schedules it (item 4): the caller keeps its own attempt budget;
//! - [`JobQueue::depth`] reads the raw Redis structures in one Lua script (item 7), and
//!   [`JobQueue::vacuum`] drops finished jobs (item 10).
//!
//! # What callers must do
//!
//! - Choose deterministic task ids (`{chain}:{from}-{to}`). A push of an id that Redis still knows
//!   (queued, running, or finished and not yet vacuumed) is ignored; to run a finished id again,
//!   [`vacuum`](JobQueue::vacuum) first or push a new id.
//! - Keep `scheduled + active` below a few thousand jobs (item 1: a fetch that promotes about
//!   8,000 due jobs at once fails and stops the worker); feed the queue a bounded window.
//! - Make handlers idempotent: delivery is at least once (a killed worker's job runs again, and
//!   such crash deliveries do not count as attempts, item 9).
//! - Call [`vacuum`](JobQueue::vacuum) now and then; finished jobs stay in Redis until then.
//!
//! # Example
//! ```ignore
//! let queue = JobQueue::<FetchJob>::connect(&settings, "fetch").await?;
//! queue.push("1:100-199", job, None).await?;
//! run_worker(queue, WorkerOptions::default(), |job, ctx| async move { .. }, shutdown).await?;
//! ```

use std::{
    any::Any,
    fmt,
    future::Future,
    marker::PhantomData,
    pin::Pin,
    str::FromStr,
    sync::{Arc, LazyLock},
    task::{Context, Poll},
    time::Duration,
};

use apalis::layers::WorkerBuilderExt;
use apalis_core::{
    backend::{
        ext::{
            BackendExt,
            poll_strategy::{PollSnapshot, PollStrategy},
        },
        finalize::DurableError,
    },
    error::{AbortError, BoxDynError, RetryAfterError, WorkerError},
    task::{attempt::Attempt, builder::TaskBuilder, task_id::TaskId},
    worker::{builder::WorkerBuilder, context::WorkerContext, event::Event},
};
use apalis_redis::{Client, Config, ConnectionManager, RedisError, RedisStorage, RedisTask};
use futures::{Stream, StreamExt};
use rand::Rng;
use redis::{Script, aio::ConnectionManagerConfig};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;
use tokio::{task::JoinHandle, time::MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, info_span, warn};

/// How many jobs one `push_many` script call carries.
const PUSH_CHUNK: usize = 1000;
/// How many finished jobs one `vacuum` script call removes from each of the done and dead sets.
const VACUUM_CHUNK: usize = 1000;
/// What the error messages suggest when Redis cannot be reached.
const START_REDIS_HINT: &str = "is Redis running? Start it with scripts/services.sh \
     (or `redis-server --port 6379`), or set REDIS_URL to a running server";

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
    fn validate(&self) -> Result<(), QueueError> {
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

    fn redis(url: &str, operation: &'static str, source: RedisError) -> Self {
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

    fn storage(
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

/// The Redis name of queue `lane` under `prefix`: `"{prefix}:{lane}"`.
///
/// Persisted names: never rename a lane that may still hold jobs.
#[must_use]
pub fn queue_name(prefix: &str, lane: &str) -> String {
    format!("{prefix}:{lane}")
}

/// One Redis job queue of jobs of type `T`: push jobs, read its depth, vacuum it, and pass it to
/// [`run_worker`]. Cheap to clone; clones share one multiplexed Redis connection.
pub struct JobQueue<T> {
    inner: Arc<QueueInner>,
    job: PhantomData<fn() -> T>,
}

struct QueueInner {
    client: Client,
    conn: ConnectionManager,
    /// apalis-redis configuration for this queue (queue name and heartbeat settings).
    config: Config,
    settings: QueueSettings,
    /// The Redis URL without password, for messages.
    url: String,
}

impl<T> Clone for JobQueue<T> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            job: PhantomData,
        }
    }
}

impl<T> fmt::Debug for JobQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobQueue")
            .field("queue", &self.name())
            .field("redis_url", &self.inner.url)
            .finish()
    }
}

/// Raw counts of one queue, read atomically from Redis.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueDepth {
    /// Jobs due and waiting for a worker (`LLEN {q}:active`).
    pub active: u64,
    /// Jobs waiting for their time (`ZCARD {q}:scheduled`). apalis-redis first puts every pushed
    /// job here; a worker's fetch moves the due ones to `active`.
    pub scheduled: u64,
    /// Jobs taken by a worker, running or buffered (sum of `SCARD {q}:inflight:{worker}`),
    /// including those of a dead worker until they are re-queued.
    pub inflight: u64,
    /// Jobs finished successfully since the last vacuum (`SCARD {q}:done`).
    pub done: u64,
    /// `SCARD {q}:failed`; apalis-redis 1.0.0 never fills this set (failed jobs it retries
    /// itself sit in `scheduled`), so this stays 0.
    pub failed: u64,
    /// Jobs aborted (given up, aborted, panicked, undecodable) since the last vacuum
    /// (`SCARD {q}:dead`).
    pub dead: u64,
}

impl QueueDepth {
    /// Jobs not finished yet: `active + scheduled + inflight`.
    #[must_use]
    pub fn pending(&self) -> u64 {
        self.active + self.scheduled + self.inflight
    }
}

/// Atomic snapshot of a queue's raw structures.
static DEPTH_SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
-- KEYS: active list, scheduled zset, workers zset, done set, failed set, dead set
-- ARGV[1]: prefix of the per-worker inflight sets
local inflight = 0
for _, worker in ipairs(redis.call('zrange', KEYS[3], 0, -1)) do
    inflight = inflight + redis.call('scard', ARGV[1] .. ':' .. worker)
end
return {
    redis.call('llen', KEYS[1]),
    redis.call('zcard', KEYS[2]),
    inflight,
    redis.call('scard', KEYS[4]),
    redis.call('scard', KEYS[5]),
    redis.call('scard', KEYS[6]),
}
",
    )
});

/// Which of ARGV's task ids still have a runnable job: payload present and not finished (done or
/// dead). Returns one 0/1 per id.
static LIVE_SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
-- KEYS: data hash, done set, dead set
local out = {}
for i, id in ipairs(ARGV) do
    local live = redis.call('hexists', KEYS[1], id) == 1
        and redis.call('sismember', KEYS[2], id) == 0
        and redis.call('sismember', KEYS[3], id) == 0
    out[i] = live and 1 or 0
end
return out
",
    )
});

/// Drops up to ARGV[2] finished jobs from each of the done and dead sets, with their payload and
/// metadata. Returns how many ids it took from the sets and how many jobs it dropped.
static VACUUM_SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
-- KEYS: done set, dead set, data hash, scheduled zset
-- ARGV[1]: prefix of the per-job meta hashes, ARGV[2]: chunk size
local taken, dropped = 0, 0
for s = 1, 2 do
    local ids = redis.call('spop', KEYS[s], tonumber(ARGV[2]))
    for _, id in ipairs(ids) do
        taken = taken + 1
        -- keep a job that was pushed again and is waiting to run
        if not redis.call('zscore', KEYS[4], id) then
            redis.call('hdel', KEYS[3], id)
            redis.call('del', ARGV[1] .. ':' .. id)
            dropped = dropped + 1
        end
    end
end
return {taken, dropped}
",
    )
});

/// Hands back what a stopped worker still holds and unregisters it. Jobs whose payload is gone are
/// dropped rather than re-queued: apalis-redis stops any worker that fetches such an id.
static RELEASE_WORKER_SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
-- KEYS: worker inflight set, active list, workers zset, data hash, worker metadata, signal list
-- ARGV[1]: worker name, ARGV[2]: prefix of the per-job meta hashes
local requeued = 0
for _, id in ipairs(redis.call('smembers', KEYS[1])) do
    if redis.call('hexists', KEYS[4], id) == 1 then
        redis.call('rpush', KEYS[2], id)
        redis.call('hset', ARGV[2] .. ':' .. id, 'status', 'Pending')
        requeued = requeued + 1
    end
end
redis.call('del', KEYS[1])
redis.call('zrem', KEYS[3], ARGV[1])
redis.call('del', KEYS[5])
if requeued > 0 then
    redis.call('del', KEYS[6])
    redis.call('lpush', KEYS[6], 1)
end
return requeued
",
    )
});

impl<T> JobQueue<T> {
    /// The Redis name of this queue (`{prefix}:{lane}`).
    #[must_use]
    pub fn name(&self) -> &str {
        self.inner.config.queue.as_ref()
    }

    /// The queue's shared connection (a cheap handle).
    fn conn(&self) -> ConnectionManager {
        self.inner.conn.clone()
    }

    fn task_id(&self, task_id: &str) -> Result<TaskId, QueueError> {
        parse_task_id(self.name(), task_id)
    }
}

/// Rejects ids that apalis would not hand back unchanged: it parses ids as integers, UUIDs and
/// ULIDs first, and an id that comes back in another spelling (`007`, an upper-case UUID) could
/// never be acknowledged, which stops the worker.
fn parse_task_id(queue: &str, task_id: &str) -> Result<TaskId, QueueError> {
    let invalid = |reason| QueueError::InvalidTaskId {
        task_id: task_id.to_owned(),
        queue: queue.to_owned(),
        reason,
    };
    match TaskId::from_str(task_id) {
        Ok(id) if id.to_string() == task_id => Ok(id),
        Ok(_) => Err(invalid(
            "apalis would re-spell it (a number with leading zeros, or an upper-case UUID or ULID); \
             use e.g. `{chain}:{from}-{to}`",
        )),
        Err(_) => Err(invalid("task ids must not be empty")),
    }
}

impl<T: Serialize + DeserializeOwned + Send + Sync + Unpin + 'static> JobQueue<T> {
    /// Connects to Redis and opens queue `lane` (Redis name `{prefix}:{lane}`).
    ///
    /// Fails with [`QueueError::Unreachable`] within a few seconds when Redis does not answer.
    pub async fn connect(settings: &QueueSettings, lane: &str) -> Result<Self, QueueError> {
        settings.validate()?;
        if lane.is_empty() {
            return Err(QueueError::InvalidSettings {
                reason: "the lane name must not be empty".to_owned(),
            });
        }
        let url = redact_url(&settings.redis_url);
        let client =
            Client::open(settings.redis_url.as_str()).map_err(|source| QueueError::InvalidUrl {
                url: url.clone(),
                source,
            })?;
        let conn = open_connection(&client, &url).await?;
        let config = Config::default()
            .queue(queue_name(&settings.prefix, lane))
            .lock_tasks(false)
            .persist_results(true) // acknowledgements travel with the results; `false` loses them
            .emit_events(false)
            .heartbeat_interval(settings.heartbeat_interval)
            .missed_heartbeats(settings.missed_heartbeats)
            .batch_size(settings.fetch_batch_size);
        debug!(target: "blockfill::queue", queue = %config.queue.as_ref(), redis = %url, "connected");
        Ok(Self {
            inner: Arc::new(QueueInner {
                client,
                conn,
                config,
                settings: settings.clone(),
                url,
            }),
            job: PhantomData,
        })
    }

    /// Queues `job` under the caller-chosen `task_id`, to run now or after `delay` (whole
    /// seconds, rounded down).
    ///
    /// A `task_id` that Redis still knows (queued, running, or finished and not yet vacuumed)
    /// is ignored silently: pushing the same id twice runs the job once.
    pub async fn push(
        &self,
        task_id: &str,
        job: T,
        delay: Option<Duration>,
    ) -> Result<(), QueueError> {
        let mut builder =
            TaskBuilder::new(self.encode(task_id, &job)?).task_id(self.task_id(task_id)?);
        if let Some(delay) = delay.filter(|d| !d.is_zero()) {
            builder = builder.run_after(delay);
        }
        let (queued, scheduled) = self.push_tasks(&[builder.build()]).await?;
        if queued + scheduled == 0 {
            debug!(target: "blockfill::queue", queue = %self.name(), task_id, "task id already known; push ignored");
        }
        Ok(())
    }

    /// Queues many jobs to run now, in script calls of 1,000. Ids that Redis still knows are
    /// ignored, as with [`push`](Self::push). Not atomic: on error, an earlier chunk may have been
    /// queued (pushing again is safe).
    pub async fn push_many(&self, jobs: Vec<(String, T)>) -> Result<(), QueueError> {
        let mut tasks = Vec::with_capacity(jobs.len().min(PUSH_CHUNK));
        let (mut total, mut new) = (0_usize, 0_u32);
        for (task_id, job) in jobs {
            let payload = self.encode(&task_id, &job)?;
            tasks.push(
                TaskBuilder::new(payload)
                    .task_id(self.task_id(&task_id)?)
                    .build(),
            );
            if tasks.len() == PUSH_CHUNK {
                let (queued, scheduled) = self.push_tasks(&tasks).await?;
                total += tasks.len();
                new += queued + scheduled;
                tasks.clear();
            }
        }
        if !tasks.is_empty() {
            let (queued, scheduled) = self.push_tasks(&tasks).await?;
            total += tasks.len();
            new += queued + scheduled;
        }
        debug!(target: "blockfill::queue", queue = %self.name(), total, new, "pushed jobs");
        Ok(())
    }

    /// Raw counts of the queue, read in one atomic script (the apalis statistics APIs are broken).
    pub async fn depth(&self) -> Result<QueueDepth, QueueError> {
        let config = &self.inner.config;
        let counts: [u64; 6] = DEPTH_SCRIPT
            .key(config.active_jobs_list())
            .key(config.scheduled_jobs_set())
            .key(config.workers_set())
            .key(config.done_jobs_set())
            .key(config.failed_jobs_set())
            .key(config.dead_jobs_set())
            .arg(config.inflight_jobs_set())
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| QueueError::redis(&self.inner.url, "read the queue depth", e))?;
        let [active, scheduled, inflight, done, failed, dead] = counts;
        Ok(QueueDepth {
            active,
            scheduled,
            inflight,
            done,
            failed,
            dead,
        })
    }

    /// For each task id, whether Redis still holds a runnable job for it (waiting, running or
    /// scheduled for a retry). False after a flush, a Redis restart, or once the job finished.
    pub async fn live_tasks(&self, task_ids: &[String]) -> Result<Vec<bool>, QueueError> {
        if task_ids.is_empty() {
            return Ok(Vec::new());
        }
        let config = &self.inner.config;
        let mut invocation = LIVE_SCRIPT.prepare_invoke();
        invocation
            .key(config.job_data_hash())
            .key(config.done_jobs_set())
            .key(config.dead_jobs_set());
        for id in task_ids {
            invocation.arg(id);
        }
        let flags: Vec<u8> = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| QueueError::redis(&self.inner.url, "check which jobs are live", e))?;
        Ok(flags.into_iter().map(|f| f == 1).collect())
    }

    /// Drops finished jobs (done and dead) from Redis: their payload, metadata and set
    /// membership, in script calls of 1,000 per set. Returns how many it dropped.
    ///
    /// Afterwards their task ids can be pushed again, and `depth().done`/`dead` count from zero.
    pub async fn vacuum(&self) -> Result<usize, QueueError> {
        let config = &self.inner.config;
        let mut total = 0;
        loop {
            let (taken, dropped): (usize, usize) = VACUUM_SCRIPT
                .key(config.done_jobs_set())
                .key(config.dead_jobs_set())
                .key(config.job_data_hash())
                .key(config.scheduled_jobs_set())
                .arg(config.job_meta_hash())
                .arg(VACUUM_CHUNK)
                .invoke_async(&mut self.conn())
                .await
                .map_err(|e| QueueError::redis(&self.inner.url, "vacuum finished jobs", e))?;
            total += dropped;
            if taken < VACUUM_CHUNK {
                break;
            }
        }
        debug!(target: "blockfill::queue", queue = %self.name(), dropped = total, "vacuumed");
        Ok(total)
    }

    fn encode(&self, task_id: &str, job: &T) -> Result<Vec<u8>, QueueError> {
        // Same encoding as apalis' `JsonCodec<Vec<u8>>`.
        serde_json::to_vec(job).map_err(|source| QueueError::Encode {
            task_id: task_id.to_owned(),
            queue: self.name().to_owned(),
            source,
        })
    }

    /// Returns how many tasks were newly queued to run now and newly scheduled.
    async fn push_tasks(&self, tasks: &[RedisTask]) -> Result<(u32, u32), QueueError> {
        apalis_redis::queries::push_tasks(&mut self.conn(), &self.inner.config, tasks)
            .await
            .map_err(|e| QueueError::storage(&self.inner.url, self.name(), "push jobs", e))
    }
}

async fn open_connection(client: &Client, url: &str) -> Result<ConnectionManager, QueueError> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        // The default 500 ms lets a busy machine fail a worker's fetch; a lost answer to a fetch
        // strands jobs until the worker is declared dead.
        .set_response_timeout(Some(Duration::from_secs(10)))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(1));
    client
        .get_connection_manager_with_config(config)
        .await
        .map_err(|source| QueueError::Unreachable {
            url: url.to_owned(),
            operation: "connect",
            source,
        })
}

/// Hides the password of a Redis URL (`redis://user:secret@host` -> `redis://user:***@host`).
fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    match rest[..at].find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..scheme_end],
            &rest[..colon],
            &rest[at..]
        ),
        None => format!("{}***{}", &url[..scheme_end], &rest[at..]),
    }
}

/// What a handler knows about the job it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobContext {
    /// The caller-chosen task id.
    pub task_id: String,
    /// The in-process attempt, 1-based: 1 for the first call, up to `retries + 1`.
    pub attempt: usize,
    /// The name of the worker that runs the job (unique per [`run_worker`] call).
    pub worker_name: String,
}

/// Why a handler failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobFailure {
    /// Transient: call the handler again after a backoff, up to `WorkerOptions::retries` times;
    /// then the job is given up (it ends in the queue's dead set).
    #[error("retryable failure: {0}")]
    Retry(String),
    /// Permanent: never retried (an apalis `AbortError`; the job ends in the dead set).
    #[error("permanent failure: {0}")]
    Abort(String),
}

/// How one [`run_worker`] call runs jobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkerOptions {
    /// Start of the worker's name; host, pid and a uuid v7 are appended. Default: `blockfill`
    pub name_prefix: String,
    /// Jobs run at once by this worker. Default: `4`
    pub concurrency: usize,
    /// In-process retries after a [`JobFailure::Retry`]; the handler runs at most `retries + 1`
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

/// The backoff before in-process retry number `retry` (1-based): `base * 2^(retry-1)`, at most
/// `max`, scaled by `jitter` (a factor in `[0.75, 1.25)`), and again at most `max`.
pub(crate) fn backoff_delay(retry: usize, base: Duration, max: Duration, jitter: f64) -> Duration {
    let exponent = i32::try_from(retry.saturating_sub(1))
        .unwrap_or(i32::MAX)
        .min(30);
    let nominal = base.as_secs_f64() * 2_f64.powi(exponent);
    let capped = nominal.min(max.as_secs_f64());
    Duration::from_secs_f64((capped * jitter).min(max.as_secs_f64()).max(0.0))
}

/// Wakes the worker every `period`, so that an idle worker looks for new and newly due jobs.
///
/// apalis' own `IntervalStrategy` re-creates its timer without polling it and stops waking the
/// worker after activity (`stack.md` item 8); a `tokio::time::Interval` drained with `poll_tick`
/// always leaves a registered waker behind.
struct TickStrategy {
    period: Duration,
    interval: Option<tokio::time::Interval>,
}

impl TickStrategy {
    fn new(period: Duration) -> Self {
        Self {
            period,
            interval: None,
        }
    }
}

impl PollStrategy for TickStrategy {
    fn poll_drive(&mut self, cx: &mut Context<'_>, _snapshot: &PollSnapshot) -> Poll<Option<()>> {
        let period = self.period;
        let interval = self.interval.get_or_insert_with(|| {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            interval
        });
        let mut ticked = false;
        while interval.poll_tick(cx).is_ready() {
            ticked = true;
        }
        if ticked {
            Poll::Ready(Some(()))
        } else {
            Poll::Pending
        }
    }
}

/// Aborts a spawned handler when the worker is dropped without finishing it.
struct AbortOnDrop<O>(JoinHandle<O>);

impl<O> Future for AbortOnDrop<O> {
    type Output = Result<O, tokio::task::JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<O> Drop for AbortOnDrop<O> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs the handler for one delivered job, with in-process retries.
struct JobRunner<F> {
    handler: F,
    options: WorkerOptions,
    worker_name: String,
    queue: String,
    shutdown: CancellationToken,
}

impl<F> JobRunner<F> {
    /// Runs the job until it succeeds or is given up. `Ok` marks it done; an `AbortError` sends it
    /// to the dead set; a `RetryAfterError` (only on shutdown during a backoff) gives it back to
    /// the storage, which runs it again about a second later.
    async fn run<T, Fut>(
        &self,
        payload: Value,
        task_id: String,
        delivery: usize,
    ) -> Result<(), BoxDynError>
    where
        T: DeserializeOwned + Send + 'static,
        F: Fn(T, JobContext) -> Fut,
        Fut: Future<Output = Result<(), JobFailure>> + Send + 'static,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let span = info_span!(target: "blockfill::queue", "job", queue = %self.queue, task_id = %task_id, attempt, delivery);
            let job = match T::deserialize(&payload) {
                Ok(job) => job,
                Err(e) => {
                    span.in_scope(|| error!(target: "blockfill::queue", error = %e, "cannot decode the job; dropping it"));
                    return Err(AbortError::new(format!("cannot decode job {task_id}: {e}")).into());
                }
            };
            let context = JobContext {
                task_id: task_id.clone(),
                attempt,
                worker_name: self.worker_name.clone(),
            };
            let outcome = AbortOnDrop(tokio::spawn(
                (self.handler)(job, context).instrument(span.clone()),
            ))
            .await;
            let message = match outcome {
                Ok(Ok(())) => {
                    span.in_scope(|| debug!(target: "blockfill::queue", "job done"));
                    return Ok(());
                }
                Ok(Err(JobFailure::Abort(message))) => {
                    span.in_scope(|| warn!(target: "blockfill::queue", %message, "job aborted"));
                    return Err(AbortError::new(message).into());
                }
                Err(e) if e.is_panic() => {
                    let message = panic_message(e.into_panic());
                    span.in_scope(|| error!(target: "blockfill::queue", %message, "job handler panicked; not retrying"));
                    return Err(AbortError::new(format!("handler panicked: {message}")).into());
                }
                Err(e) => {
                    // Only when the runtime shuts down: let the storage run it again.
                    return Err(RetryAfterError::new(e.to_string(), Duration::from_secs(1)).into());
                }
                Ok(Err(JobFailure::Retry(message))) => message,
            };
            if attempt > self.options.retries {
                span.in_scope(|| warn!(target: "blockfill::queue", %message, "job failed; retries spent, giving up"));
                return Err(AbortError::new(format!(
                    "gave up after {attempt} attempts: {message}"
                ))
                .into());
            }
            let jitter = rand::rng().random_range(0.75..1.25);
            let delay = backoff_delay(
                attempt,
                self.options.backoff_base,
                self.options.backoff_max,
                jitter,
            );
            span.in_scope(
                || warn!(target: "blockfill::queue", %message, ?delay, "job failed; retrying"),
            );
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.shutdown.cancelled() => {
                    span.in_scope(|| info!(target: "blockfill::queue", "shutting down during backoff; handing the job back"));
                    return Err(RetryAfterError::new(message, delay).into());
                }
            }
        }
    }
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}

fn worker_name(prefix: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!(
        "{prefix}-{host}-{}-{}",
        std::process::id(),
        uuid::Uuid::now_v7().simple()
    )
}

/// Runs one apalis worker on the queue until `shutdown` is cancelled; then stops taking jobs, lets
/// in-flight jobs finish (a job waiting for a retry backoff is handed back to the queue instead),
/// hands back jobs it had fetched but not started, and returns.
///
/// Runs up to `options.concurrency` jobs at once, each in its own tokio task. A handler's
/// [`JobFailure::Retry`] is retried in-process; a [`JobFailure::Abort`], spent retries, a panic or
/// a payload that does not decode as `T` end the job for good (dead set). The worker's jobs come
/// back to other workers if the process dies (after `heartbeat_interval * missed_heartbeats`).
///
/// Returns [`QueueError::Worker`] if apalis stops the worker (usually because Redis failed);
/// in-flight jobs are finished and held jobs handed back first when Redis allows.
pub async fn run_worker<T, F, Fut>(
    queue: JobQueue<T>,
    options: WorkerOptions,
    handler: F,
    shutdown: CancellationToken,
) -> Result<(), QueueError>
where
    T: Serialize + DeserializeOwned + Send + Sync + Unpin + 'static,
    F: Fn(T, JobContext) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), JobFailure>> + Send + 'static,
{
    if options.concurrency == 0 {
        return Err(QueueError::InvalidSettings {
            reason: "worker concurrency must be at least 1".to_owned(),
        });
    }
    let inner = &queue.inner;
    let name = worker_name(&options.name_prefix);
    let queue_name = queue.name().to_owned();
    // A connection of its own, so that pushes and depth reads never queue behind worker scripts.
    let mut conn = open_connection(&inner.client, &inner.url).await?;
    let config = inner
        .config
        .clone()
        .batch_size(inner.settings.fetch_batch_size.min(options.concurrency));
    let backend = RedisStorage::<Value>::new(conn.clone())
        .with_config(config.clone())
        .poll_with_strategy(TickStrategy::new(inner.settings.poll_interval));

    let concurrency = options.concurrency;
    let runner = Arc::new(JobRunner {
        handler,
        options,
        worker_name: name.clone(),
        queue: queue_name.clone(),
        shutdown: shutdown.clone(),
    });
    let service = move |payload: Value, attempt: Attempt, task_id: TaskId| {
        let runner = Arc::clone(&runner);
        async move {
            runner
                .run::<T, Fut>(payload, task_id.to_string(), attempt.current())
                .await
        }
    };
    let context = WorkerContext::new(&name);
    let worker = WorkerBuilder::new(context.clone())
        .backend(backend)
        .concurrency(concurrency)
        .build(service);

    info!(target: "blockfill::queue", worker = %name, queue = %queue_name, concurrency, "worker starting");
    // Type-erased as `Send` here, where rustc can prove it (inside the `async fn` it cannot).
    let mut events: Pin<Box<dyn Stream<Item = Result<Event, WorkerError>> + Send>> =
        Box::pin(worker.stream());
    // The first event is `Start`; stopping the worker is only possible after it.
    let mut failure: Option<WorkerError> = match events.next().await {
        Some(Err(e)) => Some(e),
        _ => None,
    };
    let mut stopping = failure.is_some();
    if !stopping {
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled(), if !stopping => {
                    stopping = true;
                    info!(target: "blockfill::queue", worker = %name, in_flight = context.task_count(), "shutdown requested; finishing in-flight jobs");
                    if let Err(e) = context.stop() {
                        warn!(target: "blockfill::queue", worker = %name, error = %e, "cannot stop worker");
                        break;
                    }
                }
                event = events.next() => match event {
                    None | Some(Ok(Event::Exit)) => break,
                    Some(Ok(Event::Error(e))) => debug!(target: "blockfill::queue", worker = %name, error = %e, "job ended with an error"),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        error!(target: "blockfill::queue", worker = %name, error = %e, "worker failed; stopping it");
                        if failure.is_some() {
                            break;
                        }
                        failure = Some(e);
                        stopping = true;
                        // Finish in-flight jobs; apalis then flushes acknowledgements if it can.
                        let _ = context.stop();
                    }
                },
            }
        }
    }
    // Drops the worker: nothing of it runs any more while its held jobs are handed back.
    drop(events);

    // apalis unregisters a stopped worker incompletely and may drop a fetch in flight: hand back
    // whatever this worker still holds, now rather than after the orphan timeout.
    let released: Result<u32, RedisError> = RELEASE_WORKER_SCRIPT
        .key(config.inflight_set_for(&context))
        .key(config.active_jobs_list())
        .key(config.workers_set())
        .key(config.job_data_hash())
        .key(config.worker_metadata_key(&context))
        .key(config.signal_list())
        .arg(&name)
        .arg(config.job_meta_hash())
        .invoke_async(&mut conn)
        .await;
    match released {
        Ok(0) => {}
        Ok(n) => {
            info!(target: "blockfill::queue", worker = %name, jobs = n, "handed back jobs the worker held")
        }
        Err(e) => {
            warn!(target: "blockfill::queue", worker = %name, error = %e, "cannot hand back held jobs; they return after the orphan timeout")
        }
    }
    info!(target: "blockfill::queue", worker = %name, queue = %queue_name, "worker stopped");
    match failure {
        None => Ok(()),
        Some(source) => Err(QueueError::Worker {
            worker: name,
            queue: queue_name,
            url: inner.url.clone(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    //! Unit tests, and integration tests against the Redis at `REDIS_URL` (default
    //! `redis://127.0.0.1:6379`), each under a prefix of its own.

    use std::{
        collections::HashMap,
        sync::{
            Mutex,
            atomic::{AtomicBool, Ordering},
        },
        time::Instant,
    };

    use tokio::sync::Semaphore;

    use super::*;

    type Shared<T> = Arc<Mutex<T>>;

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    struct TestJob {
        n: u64,
    }

    fn test_settings() -> QueueSettings {
        QueueSettings {
            redis_url: std::env::var("REDIS_URL")
                .unwrap_or_else(|_| QueueSettings::default().redis_url),
            prefix: format!("blockfill-test-{}", uuid::Uuid::now_v7().simple()),
            ..QueueSettings::default()
        }
    }

    fn options(concurrency: usize) -> WorkerOptions {
        WorkerOptions {
            name_prefix: "test".to_owned(),
            concurrency,
            ..WorkerOptions::default()
        }
    }

    async fn connect(settings: &QueueSettings) -> JobQueue<TestJob> {
        JobQueue::connect(settings, "lane")
            .await
            .expect("Redis must run for these tests (see QueueError's message)")
    }

    async fn depth(queue: &JobQueue<TestJob>) -> QueueDepth {
        queue.depth().await.expect("depth")
    }

    /// Deletes every key of the test's prefix.
    async fn cleanup(settings: &QueueSettings) {
        let client = Client::open(settings.redis_url.as_str()).expect("url");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", settings.prefix))
            .query_async(&mut conn)
            .await
            .expect("KEYS");
        if !keys.is_empty() {
            let () = redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .expect("DEL");
        }
        // apalis registers every queue in a global sorted set.
        let () = redis::cmd("ZREM")
            .arg("core:apalis:queues:list")
            .arg(format!("{}:lane:workers", settings.prefix))
            .query_async(&mut conn)
            .await
            .expect("ZREM");
    }

    /// Polls `condition` every 20 ms until it holds or `timeout` passes; returns whether it held.
    async fn wait_until<Fut: Future<Output = bool>>(
        timeout: Duration,
        mut condition: impl FnMut() -> Fut,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if condition().await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        condition().await
    }

    fn spawn_worker<F, Fut>(
        queue: &JobQueue<TestJob>,
        options: WorkerOptions,
        handler: F,
    ) -> (CancellationToken, JoinHandle<Result<(), QueueError>>)
    where
        F: Fn(TestJob, JobContext) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<(), JobFailure>> + Send + 'static,
    {
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(run_worker(
            queue.clone(),
            options,
            handler,
            shutdown.clone(),
        ));
        (shutdown, handle)
    }

    async fn stop(worker: (CancellationToken, JoinHandle<Result<(), QueueError>>)) {
        worker.0.cancel();
        tokio::time::timeout(Duration::from_secs(15), worker.1)
            .await
            .expect("worker stops within 15 s")
            .expect("worker task")
            .expect("worker returns Ok");
    }

    // ---- unit tests -------------------------------------------------------------------------

    #[test]
    fn queue_names_join_prefix_and_lane() {
        assert_eq!(queue_name("blockfill", "fetch"), "blockfill:fetch");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let base = Duration::from_millis(500);
        let max = Duration::from_secs(30);
        let nominal: Vec<_> = (1..=8).map(|r| backoff_delay(r, base, max, 1.0)).collect();
        assert_eq!(nominal[0], Duration::from_millis(500));
        assert_eq!(nominal[1], Duration::from_secs(1));
        assert_eq!(nominal[2], Duration::from_secs(2));
        assert_eq!(nominal[7], Duration::from_secs(30));
        // With the extreme jitters, retry n+1 still waits longer than retry n.
        for r in 1..5 {
            assert!(backoff_delay(r, base, max, 1.2499) < backoff_delay(r + 1, base, max, 0.75));
        }
        assert!(backoff_delay(usize::MAX, base, max, 1.2) <= max);
    }

    #[test]
    fn redis_passwords_are_hidden() {
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(
            redact_url("redis://:s3cret@host:6379/0"),
            "redis://:***@host:6379/0"
        );
        assert_eq!(
            redact_url("rediss://user:pw@host/1"),
            "rediss://user:***@host/1"
        );
        assert_eq!(redact_url("redis://token@host"), "redis://***@host");
    }

    #[test]
    fn task_ids_must_survive_apalis_parsing() {
        for ok in [
            "1:100-199",
            "eth:0-999",
            "42",
            "0190b1f0-0000-7000-8000-000000000000",
        ] {
            assert!(parse_task_id("q", ok).is_ok(), "{ok}");
        }
        // A lower-case ULID comes back upper-case (apalis-redis always enables ULID ids).
        for bad in ["", "007", "01arz3ndektsv4rrffq69g5fav"] {
            assert!(
                matches!(
                    parse_task_id("q", bad),
                    Err(QueueError::InvalidTaskId { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn settings_are_validated() {
        assert!(QueueSettings::default().validate().is_ok());
        let too_tight = QueueSettings {
            heartbeat_interval: Duration::from_secs(1),
            missed_heartbeats: 2,
            ..QueueSettings::default()
        };
        assert!(too_tight.validate().is_err());
        let stack_md = QueueSettings {
            heartbeat_interval: Duration::from_secs(5),
            missed_heartbeats: 2,
            ..QueueSettings::default()
        };
        assert!(stack_md.validate().is_ok());
        let sub_second = QueueSettings {
            heartbeat_interval: Duration::from_millis(500),
            missed_heartbeats: 100,
            ..QueueSettings::default()
        };
        assert!(sub_second.validate().is_err());
        let no_batch = QueueSettings {
            fetch_batch_size: 0,
            ..QueueSettings::default()
        };
        assert!(no_batch.validate().is_err());
    }

    // ---- against Redis ----------------------------------------------------------------------

    #[tokio::test(flavor = "multi_thread")]
    async fn unreachable_redis_is_reported_with_the_url_and_a_hint() {
        let settings = QueueSettings {
            redis_url: "redis://:pw@127.0.0.1:1".to_owned(),
            ..test_settings()
        };
        let started = Instant::now();
        let err = JobQueue::<TestJob>::connect(&settings, "lane")
            .await
            .expect_err("nothing listens on port 1");
        eprintln!("connect failed after {:?}: {err}", started.elapsed());
        assert!(matches!(err, QueueError::Unreachable { .. }), "{err:?}");
        assert!(err.is_transient());
        let message = err.to_string();
        assert!(message.contains("redis://:***@127.0.0.1:1"), "{message}");
        assert!(!message.contains("pw@"), "{message}");
        assert!(message.contains("redis-server"), "{message}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    /// 1. 200 jobs, 2 workers with concurrency 4: each job runs exactly once.
    #[tokio::test(flavor = "multi_thread")]
    async fn two_workers_process_every_job_exactly_once() {
        let settings = test_settings();
        let queue = connect(&settings).await;
        let jobs = (0..200)
            .map(|n| (format!("job:{n}"), TestJob { n }))
            .collect();
        queue.push_many(jobs).await.expect("push_many");
        assert_eq!(depth(&queue).await.pending(), 200);

        let runs: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let per_worker: Shared<HashMap<String, (usize, usize, usize)>> = Arc::default();
        let handler = {
            let runs = Arc::clone(&runs);
            let per_worker = Arc::clone(&per_worker);
            move |job: TestJob, ctx: JobContext| {
                let runs = Arc::clone(&runs);
                let per_worker = Arc::clone(&per_worker);
                async move {
                    assert_eq!(ctx.task_id, format!("job:{}", job.n));
                    {
                        let mut workers = per_worker.lock().expect("lock");
                        let (now, max, _) = workers.entry(ctx.worker_name.clone()).or_default();
                        *now += 1;
                        *max = (*max).max(*now);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    {
                        let mut workers = per_worker.lock().expect("lock");
                        let (now, _, total) = workers.entry(ctx.worker_name).or_default();
                        *now -= 1;
                        *total += 1;
                    }
                    *runs.lock().expect("lock").entry(ctx.task_id).or_default() += 1;
                    Ok(())
                }
            }
        };
        let started = Instant::now();
        let a = spawn_worker(&queue, options(4), handler.clone());
        let b = spawn_worker(&queue, options(4), handler);
        let finished = wait_until(Duration::from_secs(30), || async {
            runs.lock().expect("lock").len() == 200 && depth(&queue).await.pending() == 0
        })
        .await;
        eprintln!("200 jobs in {:?}", started.elapsed());
        assert!(finished, "not finished: {:?}", depth(&queue).await);
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop(a).await;
        stop(b).await;

        let runs = runs.lock().expect("lock").clone();
        assert_eq!(runs.len(), 200);
        assert!(runs.values().all(|&n| n == 1), "a job ran twice: {runs:?}");
        let per_worker = per_worker.lock().expect("lock").clone();
        eprintln!("per worker (in flight, max in flight, total): {per_worker:?}");
        assert!(per_worker.values().all(|&(_, max, _)| max <= 4));
        assert!(per_worker.values().any(|&(_, max, _)| max == 4));
        let after = depth(&queue).await;
        assert_eq!(
            (after.pending(), after.done, after.dead),
            (0, 200, 0),
            "{after:?}"
        );

        // Vacuum drops the finished jobs' payloads and metadata.
        let stored = || async {
            let config = &queue.inner.config;
            let counts: (u64, u64) = redis::pipe()
                .cmd("HLEN")
                .arg(config.job_data_hash())
                .cmd("EXISTS")
                .arg(format!("{}:job:7", config.job_meta_hash()))
                .query_async(&mut queue.conn())
                .await
                .expect("HLEN");
            counts
        };
        assert_eq!(stored().await, (200, 1));
        assert_eq!(queue.vacuum().await.expect("vacuum"), 200);
        assert_eq!(depth(&queue).await, QueueDepth::default());
        assert_eq!(stored().await, (0, 0));
        cleanup(&settings).await;
    }

    /// 2. A task id pushed twice runs once; after a vacuum it can be pushed and run again.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_task_id_pushed_twice_runs_once() {
        let settings = test_settings();
        let queue = connect(&settings).await;
        queue
            .push("dup", TestJob { n: 1 }, None)
            .await
            .expect("push");
        queue
            .push("dup", TestJob { n: 2 }, None)
            .await
            .expect("push");
        assert_eq!(depth(&queue).await.pending(), 1);

        let seen: Arc<Mutex<Vec<u64>>> = Arc::default();
        let handler = {
            let seen = Arc::clone(&seen);
            move |job: TestJob, _ctx: JobContext| {
                let seen = Arc::clone(&seen);
                async move {
                    seen.lock().expect("lock").push(job.n);
                    Ok(())
                }
            }
        };
        let worker = spawn_worker(&queue, options(2), handler);
        assert!(
            wait_until(Duration::from_secs(5), || async {
                depth(&queue).await.done == 1
            })
            .await
        );
        // A push after completion is still deduplicated (until vacuum).
        queue
            .push("dup", TestJob { n: 3 }, None)
            .await
            .expect("push");
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(*seen.lock().expect("lock"), vec![1]);

        assert_eq!(queue.vacuum().await.expect("vacuum"), 1);
        assert_eq!(depth(&queue).await, QueueDepth::default());
        queue
            .push("dup", TestJob { n: 4 }, None)
            .await
            .expect("push");
        assert!(
            wait_until(Duration::from_secs(5), || async {
                depth(&queue).await.done == 1
            })
            .await
        );
        assert_eq!(*seen.lock().expect("lock"), vec![1, 4]);
        stop(worker).await;
        cleanup(&settings).await;
    }

    /// 3. Retry backs off with growing delays and gives up after `retries`; Abort, panics and
    /// undecodable payloads run once; the storage never re-runs them; the worker survives.
    #[tokio::test(flavor = "multi_thread")]
    async fn retries_back_off_then_give_up_and_aborts_run_once() {
        let settings = test_settings();
        let queue = connect(&settings).await;
        let calls: Shared<HashMap<String, Vec<(Instant, usize)>>> = Arc::default();
        let handler = {
            let calls = Arc::clone(&calls);
            move |_job: TestJob, ctx: JobContext| {
                let calls = Arc::clone(&calls);
                async move {
                    calls
                        .lock()
                        .expect("lock")
                        .entry(ctx.task_id.clone())
                        .or_default()
                        .push((Instant::now(), ctx.attempt));
                    match ctx.task_id.as_str() {
                        "flaky" => Err(JobFailure::Retry("node timed out".to_owned())),
                        "fatal" => Err(JobFailure::Abort("block not found".to_owned())),
                        "boom" => panic!("handler bug"),
                        _ => Ok(()),
                    }
                }
            }
        };
        let worker = spawn_worker(
            &queue,
            WorkerOptions {
                retries: 3,
                backoff_base: Duration::from_millis(200),
                backoff_max: Duration::from_secs(5),
                ..options(4)
            },
            handler,
        );
        for id in ["flaky", "fatal", "boom"] {
            queue.push(id, TestJob { n: 0 }, None).await.expect("push");
        }
        // A payload of another shape on the same queue.
        let other = JobQueue::<String>::connect(&settings, "lane")
            .await
            .expect("connect");
        other
            .push("garbled", "not a TestJob".to_owned(), None)
            .await
            .expect("push");

        let count = |id: &'static str| {
            let calls = Arc::clone(&calls);
            move || calls.lock().expect("lock").get(id).map_or(0, Vec::len)
        };
        let flaky = count("flaky");
        assert!(wait_until(Duration::from_secs(10), || async { flaky() == 4 }).await);
        // The storage re-schedules plain failures after `attempt` seconds; wait past that.
        tokio::time::sleep(Duration::from_secs(4)).await;
        let calls_now = calls.lock().expect("lock").clone();
        let flaky_calls = &calls_now["flaky"];
        assert_eq!(
            flaky_calls.len(),
            4,
            "handler runs retries + 1 times, then never again"
        );
        assert_eq!(
            flaky_calls.iter().map(|c| c.1).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        let gaps: Vec<Duration> = flaky_calls.windows(2).map(|w| w[1].0 - w[0].0).collect();
        eprintln!("retry gaps: {gaps:?}");
        assert!(gaps[0] >= Duration::from_millis(140), "{gaps:?}");
        assert!(gaps[0] < gaps[1] && gaps[1] < gaps[2], "{gaps:?}");
        assert_eq!(calls_now["fatal"].len(), 1);
        assert_eq!(calls_now["boom"].len(), 1);
        assert!(!calls_now.contains_key("garbled"));

        // The worker still runs jobs.
        queue
            .push("fine", TestJob { n: 1 }, None)
            .await
            .expect("push");
        let fine = count("fine");
        assert!(wait_until(Duration::from_secs(5), || async { fine() == 1 }).await);
        assert!(
            wait_until(Duration::from_secs(5), || async {
                depth(&queue).await.done == 1
            })
            .await
        );
        let after = depth(&queue).await;
        assert_eq!(
            (after.pending(), after.done, after.dead),
            (0, 1, 4),
            "{after:?}"
        );
        stop(worker).await;
        cleanup(&settings).await;
    }

    /// 4. An idle worker picks up a new job within the poll interval, also after a heartbeat and
    /// after earlier activity; delayed jobs wait for their time.
    #[tokio::test(flavor = "multi_thread")]
    async fn idle_workers_pick_up_new_jobs_quickly() {
        let settings = test_settings();
        let queue = connect(&settings).await;
        let started: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
        let handler = {
            let started = Arc::clone(&started);
            move |_job: TestJob, ctx: JobContext| {
                let started = Arc::clone(&started);
                async move {
                    started
                        .lock()
                        .expect("lock")
                        .insert(ctx.task_id, Instant::now());
                    Ok(())
                }
            }
        };
        let worker = spawn_worker(&queue, options(2), handler);
        let latency = |id: &'static str, pushed: Instant| {
            let started = Arc::clone(&started);
            async move {
                let ran = wait_until(Duration::from_secs(5), || async {
                    started.lock().expect("lock").contains_key(id)
                })
                .await;
                assert!(ran, "{id} did not run");
                started.lock().expect("lock")[id] - pushed
            }
        };
        for (round, idle) in [(0, 1500), (1, 2500), (2, 300)] {
            tokio::time::sleep(Duration::from_millis(idle)).await;
            let id: &'static str = ["first", "second", "third"][round];
            let pushed = Instant::now();
            queue.push(id, TestJob { n: 0 }, None).await.expect("push");
            let latency = latency(id, pushed).await;
            eprintln!("{id} picked up after {latency:?} (idle {idle} ms)");
            assert!(latency < Duration::from_secs(1), "{id}: {latency:?}");
        }
        let pushed = Instant::now();
        queue
            .push("delayed", TestJob { n: 0 }, Some(Duration::from_secs(2)))
            .await
            .expect("push");
        let latency = latency("delayed", pushed).await;
        eprintln!("delayed (2 s) job ran after {latency:?}");
        assert!(latency >= Duration::from_millis(900) && latency < Duration::from_millis(2600));
        stop(worker).await;
        cleanup(&settings).await;
    }

    /// 5. Cancelling lets the running job finish before `run_worker` returns.
    #[tokio::test(flavor = "multi_thread")]
    async fn shutdown_waits_for_the_running_job() {
        let settings = test_settings();
        let queue = connect(&settings).await;
        let running = Arc::new(AtomicBool::new(false));
        let completed = Arc::new(AtomicBool::new(false));
        let handler = {
            let (running, completed) = (Arc::clone(&running), Arc::clone(&completed));
            move |_job: TestJob, _ctx: JobContext| {
                let (running, completed) = (Arc::clone(&running), Arc::clone(&completed));
                async move {
                    running.store(true, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                    completed.store(true, Ordering::SeqCst);
                    Ok(())
                }
            }
        };
        queue
            .push("slow", TestJob { n: 0 }, None)
            .await
            .expect("push");
        let (shutdown, handle) = spawn_worker(&queue, options(2), handler);
        assert!(
            wait_until(Duration::from_secs(5), || async {
                running.load(Ordering::SeqCst)
            })
            .await
        );
        let cancelled = Instant::now();
        shutdown.cancel();
        let result = tokio::time::timeout(Duration::from_secs(10), handle)
            .await
            .expect("returns")
            .expect("task");
        eprintln!("run_worker returned {:?} after cancel", cancelled.elapsed());
        assert!(result.is_ok(), "{result:?}");
        assert!(
            completed.load(Ordering::SeqCst),
            "returned before the job finished"
        );
        let after = depth(&queue).await;
        assert_eq!((after.pending(), after.done), (0, 1), "{after:?}");
        let mut conn = queue.conn();
        let workers: u64 = redis::cmd("ZCARD")
            .arg(queue.inner.config.workers_set())
            .query_async(&mut conn)
            .await
            .expect("ZCARD");
        assert_eq!(workers, 0, "the stopped worker is unregistered");
        cleanup(&settings).await;
    }

    /// 5b. Jobs a stopping worker fetched but did not start go back to the queue at once.
    #[tokio::test(flavor = "multi_thread")]
    async fn shutdown_hands_back_unstarted_jobs() {
        let settings = QueueSettings {
            fetch_batch_size: 20,
            ..test_settings()
        };
        let queue = connect(&settings).await;
        let runs: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let handler = {
            let runs = Arc::clone(&runs);
            move |job: TestJob, ctx: JobContext| {
                let runs = Arc::clone(&runs);
                async move {
                    // Staggered, so that a fetch for one free slot buffers jobs for busy slots.
                    tokio::time::sleep(Duration::from_millis(100 + (job.n % 3) * 150)).await;
                    *runs.lock().expect("lock").entry(ctx.task_id).or_default() += 1;
                    Ok(())
                }
            }
        };
        let jobs = (0..12)
            .map(|n| (format!("job:{n}"), TestJob { n }))
            .collect();
        queue.push_many(jobs).await.expect("push_many");
        let first = spawn_worker(&queue, options(3), handler.clone());
        assert!(
            wait_until(Duration::from_secs(5), || async {
                !runs.lock().expect("lock").is_empty()
            })
            .await
        );
        stop(first).await;
        let after = depth(&queue).await;
        let done = runs.lock().expect("lock").len() as u64;
        eprintln!("after the first worker: {after:?}, {done} done");
        assert_eq!(after.inflight, 0, "{after:?}");
        assert_eq!(after.done, done);
        assert_eq!(after.pending() + after.done, 12, "{after:?}");

        let second = spawn_worker(&queue, options(3), handler);
        assert!(
            wait_until(Duration::from_secs(15), || async {
                depth(&queue).await.done == 12
            })
            .await
        );
        stop(second).await;
        let runs = runs.lock().expect("lock").clone();
        assert_eq!(runs.len(), 12);
        assert!(runs.values().all(|&n| n == 1), "{runs:?}");
        cleanup(&settings).await;
    }

    /// 6. Depth counts of pushed, delayed, running and finished jobs.
    #[tokio::test(flavor = "multi_thread")]
    async fn depth_counts_pushed_and_running_jobs() {
        let settings = test_settings();
        let queue = connect(&settings).await;
        for n in 0..5 {
            queue
                .push(&format!("now:{n}"), TestJob { n }, None)
                .await
                .expect("push");
        }
        for n in 0..3 {
            let later = Some(Duration::from_secs(60));
            queue
                .push(&format!("later:{n}"), TestJob { n }, later)
                .await
                .expect("push");
        }
        let before = depth(&queue).await;
        // apalis-redis puts every push into the scheduled set; a worker's fetch promotes it.
        assert_eq!(
            before,
            QueueDepth {
                scheduled: 8,
                ..QueueDepth::default()
            },
            "{before:?}"
        );
        assert_eq!(before.pending(), 8);

        let gate = Arc::new(Semaphore::new(0));
        let handler = {
            let gate = Arc::clone(&gate);
            move |_job: TestJob, _ctx: JobContext| {
                let gate = Arc::clone(&gate);
                async move {
                    gate.acquire().await.expect("open").forget();
                    Ok(())
                }
            }
        };
        let worker = spawn_worker(&queue, options(2), handler);
        assert!(
            wait_until(Duration::from_secs(5), || async {
                depth(&queue).await.inflight == 2
            })
            .await
        );
        let running = depth(&queue).await;
        assert_eq!(
            running,
            QueueDepth {
                active: 3,
                scheduled: 3,
                inflight: 2,
                ..QueueDepth::default()
            },
            "{running:?}"
        );
        gate.add_permits(5);
        assert!(
            wait_until(Duration::from_secs(5), || async {
                depth(&queue).await.done == 5
            })
            .await
        );
        let after = depth(&queue).await;
        assert_eq!(
            after,
            QueueDepth {
                scheduled: 3,
                done: 5,
                ..QueueDepth::default()
            },
            "{after:?}"
        );
        assert_eq!(after.pending(), 3);
        stop(worker).await;
        cleanup(&settings).await;
    }

    /// The jobs of a worker that dies without a word (like SIGKILL) go to another worker after
    /// about `heartbeat_interval * missed_heartbeats`.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_dead_workers_job_comes_back() {
        let settings = test_settings();
        let queue = connect(&settings).await;
        let runs: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
        let handler = {
            let runs = Arc::clone(&runs);
            move |_job: TestJob, ctx: JobContext| {
                let runs = Arc::clone(&runs);
                async move {
                    let first = {
                        let mut runs = runs.lock().expect("lock");
                        runs.push((ctx.worker_name, Instant::now()));
                        runs.len() == 1
                    };
                    if first {
                        // Hangs until its worker dies.
                        std::future::pending::<()>().await;
                    }
                    Ok(())
                }
            }
        };
        let doomed = spawn_worker(&queue, options(1), handler.clone());
        queue
            .push("orphan", TestJob { n: 0 }, None)
            .await
            .expect("push");
        assert!(
            wait_until(Duration::from_secs(5), || async {
                runs.lock().expect("lock").len() == 1
            })
            .await
        );
        let survivor = spawn_worker(&queue, options(1), handler);
        tokio::time::sleep(Duration::from_millis(300)).await;
        // No cleanup, no more heartbeats: what a killed process leaves behind.
        doomed.1.abort();
        let killed = Instant::now();
        assert_eq!(depth(&queue).await.inflight, 1);
        assert!(
            wait_until(Duration::from_secs(15), || async {
                runs.lock().expect("lock").len() == 2
            })
            .await
        );
        let runs = runs.lock().expect("lock").clone();
        let back_after = runs[1].1 - killed;
        eprintln!("the dead worker's job came back after {back_after:?}");
        assert_ne!(runs[0].0, runs[1].0, "another worker ran it");
        assert!(back_after < Duration::from_secs(10), "{back_after:?}");
        assert!(
            wait_until(Duration::from_secs(5), || async {
                depth(&queue).await.done == 1
            })
            .await
        );
        stop(survivor).await;
        cleanup(&settings).await;
    }

    /// A worker that apalis stops (here: another process declared it dead) finishes its running
    /// job, hands back what it holds, and returns a transient `QueueError::Worker`.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_failing_worker_finishes_its_job_and_returns_an_error() {
        let settings = test_settings();
        let queue = connect(&settings).await;
        let names: Shared<Vec<String>> = Arc::default();
        let completed = Arc::new(AtomicBool::new(false));
        let handler = {
            let (names, completed) = (Arc::clone(&names), Arc::clone(&completed));
            move |job: TestJob, ctx: JobContext| {
                let (names, completed) = (Arc::clone(&names), Arc::clone(&completed));
                async move {
                    names.lock().expect("lock").push(ctx.worker_name);
                    if job.n == 0 {
                        tokio::time::sleep(Duration::from_millis(1500)).await;
                        completed.store(true, Ordering::SeqCst);
                    }
                    Ok(())
                }
            }
        };
        queue.push("a", TestJob { n: 0 }, None).await.expect("push");
        let (_shutdown, handle) = spawn_worker(&queue, options(1), handler);
        assert!(
            wait_until(Duration::from_secs(5), || async {
                !names.lock().expect("lock").is_empty()
            })
            .await
        );
        queue.push("b", TestJob { n: 1 }, None).await.expect("push");
        let name = names.lock().expect("lock")[0].clone();
        let () = redis::cmd("ZREM")
            .arg(queue.inner.config.workers_set())
            .arg(&name)
            .query_async(&mut queue.conn())
            .await
            .expect("ZREM");
        let result = tokio::time::timeout(Duration::from_secs(10), handle)
            .await
            .expect("returns")
            .expect("task");
        eprintln!("worker returned {result:?}");
        let err = result.expect_err("the worker fails");
        assert!(
            matches!(err, QueueError::Worker { .. }) && err.is_transient(),
            "{err:?}"
        );
        assert!(
            completed.load(Ordering::SeqCst),
            "the running job finished first"
        );
        let after = depth(&queue).await;
        eprintln!("after the failure: {after:?}");
        assert_eq!(
            (after.done, after.inflight, after.pending()),
            (1, 0, 1),
            "{after:?}"
        );
        cleanup(&settings).await;
    }

    /// A job waiting for a retry backoff does not hold up shutdown: it goes back to the queue
    /// (the storage runs it again about a second later) and the next worker runs it.
    #[tokio::test(flavor = "multi_thread")]
    async fn shutdown_during_a_backoff_hands_the_job_back() {
        let settings = test_settings();
        let queue = connect(&settings).await;
        let attempts: Shared<Vec<usize>> = Arc::default();
        let handler = {
            let attempts = Arc::clone(&attempts);
            move |_job: TestJob, ctx: JobContext| {
                let attempts = Arc::clone(&attempts);
                async move {
                    let first = {
                        let mut attempts = attempts.lock().expect("lock");
                        attempts.push(ctx.attempt);
                        attempts.len() == 1
                    };
                    if first {
                        Err(JobFailure::Retry("try later".to_owned()))
                    } else {
                        Ok(())
                    }
                }
            }
        };
        let slow_backoff = WorkerOptions {
            backoff_base: Duration::from_secs(20),
            ..options(1)
        };
        queue
            .push("patient", TestJob { n: 0 }, None)
            .await
            .expect("push");
        let (shutdown, handle) = spawn_worker(&queue, slow_backoff.clone(), handler.clone());
        assert!(
            wait_until(Duration::from_secs(5), || async {
                attempts.lock().expect("lock").len() == 1
            })
            .await
        );
        let cancelled = Instant::now();
        shutdown.cancel();
        let result = tokio::time::timeout(Duration::from_secs(5), handle)
            .await
            .expect("returns without waiting for the backoff")
            .expect("task");
        eprintln!(
            "returned {:?} after cancel: {result:?}",
            cancelled.elapsed()
        );
        assert!(result.is_ok());
        let after = depth(&queue).await;
        assert_eq!(
            (after.scheduled, after.dead, after.done),
            (1, 0, 0),
            "{after:?}"
        );

        let worker = spawn_worker(&queue, slow_backoff, handler);
        assert!(
            wait_until(Duration::from_secs(5), || async {
                depth(&queue).await.done == 1
            })
            .await
        );
        assert_eq!(*attempts.lock().expect("lock"), vec![1, 1]);
        stop(worker).await;
        cleanup(&settings).await;
    }

    /// A worker whose token is already cancelled returns at once.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_cancelled_worker_returns_at_once() {
        let settings = test_settings();
        let queue = connect(&settings).await;
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        let result = tokio::time::timeout(
            Duration::from_secs(2),
            run_worker(queue, options(1), noop_handler, shutdown),
        )
        .await
        .expect("returns at once");
        assert!(result.is_ok(), "{result:?}");
        cleanup(&settings).await;
    }

    async fn noop_handler(_job: TestJob, _ctx: JobContext) -> Result<(), JobFailure> {
        Ok(())
    }

    /// `run_worker` with an `async fn` handler can be spawned.
    #[test]
    fn run_worker_futures_are_send() {
        fn assert_send<F: Future + Send>(_: &F) {}
        let settings = QueueSettings::default();
        let future = async move {
            let queue = JobQueue::<TestJob>::connect(&settings, "lane").await?;
            run_worker(
                queue,
                WorkerOptions::default(),
                noop_handler,
                CancellationToken::new(),
            )
            .await
        };
        assert_send(&future);
    }

    #[test]
    fn settings_read_humantime_durations_and_fill_defaults() {
        let settings: QueueSettings =
            serde_json::from_str(r#"{"heartbeat_interval": "5s", "missed_heartbeats": 2}"#)
                .expect("parse");
        assert_eq!(settings.heartbeat_interval, Duration::from_secs(5));
        assert_eq!(settings.poll_interval, Duration::from_millis(100));
        let options: WorkerOptions =
            serde_json::from_str(r#"{"concurrency": 16, "backoff_max": "1m"}"#).expect("parse");
        assert_eq!((options.concurrency, options.retries), (16, 3));
        assert_eq!(options.backoff_max, Duration::from_secs(60));
    }
}
