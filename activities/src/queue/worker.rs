//! The worker lifecycle: [`run_worker`] (start an apalis worker on a queue, stop it on shutdown,
//! hand back what it holds), worker names, and the poll strategy that wakes idle workers.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use apalis::layers::WorkerBuilderExt;
use apalis_core::{
    backend::ext::{
        BackendExt,
        poll_strategy::{PollSnapshot, PollStrategy},
    },
    error::WorkerError,
    task::{attempt::Attempt, task_id::TaskId},
    worker::{builder::WorkerBuilder, context::WorkerContext, event::Event},
};
use apalis_redis::{RedisError, RedisStorage};
use futures::{Stream, StreamExt};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::{
    JobContext, JobFailure, JobQueue, QueueError, WorkerOptions,
    job_queue::open_connection,
    runner::{JobRunner, catch_panic_layer},
    scripts::RELEASE_WORKER_SCRIPT,
};

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

fn worker_name(prefix: &str) -> String {
    let host = crate::telemetry::host_name();
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
        .layer(catch_panic_layer())
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
