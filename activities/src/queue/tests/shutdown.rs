//! Against Redis: shutdown lets running jobs finish and hands back held jobs and jobs waiting out
//! a backoff.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use super::*;

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
