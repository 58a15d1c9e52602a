//! Against Redis: retries and their backoff, aborts, panics and undecodable payloads, dead and
//! failing workers.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use super::*;

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
