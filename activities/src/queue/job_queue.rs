//! [`JobQueue`]: one Redis queue of jobs of one type (connect, push, depth, live tasks, vacuum),
//! its raw counts ([`QueueDepth`]) and its naming ([`queue_name`]).

use std::{fmt, marker::PhantomData, str::FromStr, sync::Arc, time::Duration};

use apalis_core::task::{builder::TaskBuilder, task_id::TaskId};
use apalis_redis::{Client, Config, ConnectionManager, RedisTask};
use redis::aio::ConnectionManagerConfig;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tracing::debug;

use super::{
    QueueError, QueueSettings,
    scripts::{DEPTH_SCRIPT, LIVE_SCRIPT, VACUUM_SCRIPT, WITHDRAW_SCRIPT},
};
use crate::redact::redact_url;

/// How many jobs one `push_many` script call carries.
const PUSH_CHUNK: usize = 1000;
/// How many finished jobs one `vacuum` script call removes from each of the done and dead sets.
const VACUUM_CHUNK: usize = 1000;

/// The Redis name of queue `lane` under `prefix`: `"{prefix}:{lane}"`.
///
/// Persisted names: never rename a lane that may still hold jobs.
#[must_use]
pub fn queue_name(prefix: &str, lane: &str) -> String {
    format!("{prefix}:{lane}")
}

/// One Redis job queue of jobs of type `T`: push jobs, read its depth, vacuum it, and pass it to
/// [`run_worker`](super::run_worker). Cheap to clone; clones share one multiplexed Redis connection.
pub struct JobQueue<T> {
    pub(super) inner: Arc<QueueInner>,
    job: PhantomData<fn() -> T>,
}

pub(super) struct QueueInner {
    pub(super) client: Client,
    conn: ConnectionManager,
    /// apalis-redis configuration for this queue (queue name and heartbeat settings).
    pub(super) config: Config,
    pub(super) settings: QueueSettings,
    /// The Redis URL as messages show it ([`redact_url`]).
    pub(super) url: String,
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

impl<T> JobQueue<T> {
    /// The Redis name of this queue (`{prefix}:{lane}`).
    #[must_use]
    pub fn name(&self) -> &str {
        self.inner.config.queue.as_ref()
    }

    /// The queue's shared connection (a cheap handle).
    pub(super) fn conn(&self) -> ConnectionManager {
        self.inner.conn.clone()
    }

    fn task_id(&self, task_id: &str) -> Result<TaskId, QueueError> {
        parse_task_id(self.name(), task_id)
    }
}

/// Rejects ids that apalis would not hand back unchanged: it parses ids as integers, UUIDs and
/// ULIDs first, and an id that comes back in another spelling (`007`, an upper-case UUID) could
/// never be acknowledged, which stops the worker.
pub(super) fn parse_task_id(queue: &str, task_id: &str) -> Result<TaskId, QueueError> {
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
        let config = queue_config(settings, lane);
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

    /// Queue `lane` (Redis name `{prefix}:{lane}`) on this queue's Redis connection, with the
    /// same settings: opening it costs no connection.
    #[must_use]
    pub fn sibling(&self, lane: &str) -> Self {
        let inner = &self.inner;
        Self {
            inner: Arc::new(QueueInner {
                client: inner.client.clone(),
                conn: inner.conn.clone(),
                config: queue_config(&inner.settings, lane),
                settings: inner.settings.clone(),
                url: inner.url.clone(),
            }),
            job: PhantomData,
        }
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

    /// Withdraws the jobs of `task_ids` that are still waiting (no worker took them yet), in one
    /// atomic script: each leaves the queue with its payload and metadata, so its id can be
    /// pushed again later. Returns, for each id, whether it was withdrawn (false: unknown, taken
    /// by a worker, or finished).
    pub async fn withdraw(&self, task_ids: &[String]) -> Result<Vec<bool>, QueueError> {
        if task_ids.is_empty() {
            return Ok(Vec::new());
        }
        let config = &self.inner.config;
        let mut invocation = WITHDRAW_SCRIPT.prepare_invoke();
        invocation
            .key(config.active_jobs_list())
            .key(config.scheduled_jobs_set())
            .key(config.job_data_hash())
            .arg(config.job_meta_hash());
        for id in task_ids {
            invocation.arg(id);
        }
        let flags: Vec<u8> = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| QueueError::redis(&self.inner.url, "withdraw waiting jobs", e))?;
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

/// apalis-redis configuration of queue `lane`: no task locks, results persisted (they carry the
/// acknowledgements), no events, the heartbeat and fetch settings of `settings`.
fn queue_config(settings: &QueueSettings, lane: &str) -> Config {
    Config::default()
        .queue(queue_name(&settings.prefix, lane))
        .lock_tasks(false)
        .persist_results(true) // acknowledgements travel with the results; `false` loses them
        .emit_events(false)
        .heartbeat_interval(settings.heartbeat_interval)
        .missed_heartbeats(settings.missed_heartbeats)
        .batch_size(settings.fetch_batch_size)
}

pub(super) async fn open_connection(
    client: &Client,
    url: &str,
) -> Result<ConnectionManager, QueueError> {
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
