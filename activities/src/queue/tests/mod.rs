//! Tests of the queue: unit tests (`units`), and tests against the Redis at `REDIS_URL` (default
//! `redis://127.0.0.1:6379`), each under a prefix of its own: delivery and depth (`delivery`),
//! retries and failing workers (`failures`), shutdown (`shutdown`). This file holds their helpers.

use std::{
    future::Future,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use apalis_redis::Client;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{
    JobContext, JobFailure, JobQueue, QueueDepth, QueueError, QueueSettings, WorkerOptions,
    run_worker,
};

mod delivery;
mod failures;
mod shutdown;
mod units;

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

async fn noop_handler(_job: TestJob, _ctx: JobContext) -> Result<(), JobFailure> {
    Ok(())
}
