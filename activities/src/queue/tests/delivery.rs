//! Against Redis: delivery (each job once, dedup by task id, idle workers, delayed jobs) and the
//! queue's depth.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use super::*;

use tokio::sync::Semaphore;

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
