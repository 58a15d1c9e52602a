//! The scheduler runs many continue-as-new generations with a small window, never lets the Redis
//! queue above its bound, and an orchestrator killed (SIGKILL) mid-plan resumes from its cursor
//! with no batch planned, delivered or written twice.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use blockfill_activities::Lane;
use blockfill_devnet::{DevnetChain, DevnetConfig, spawn_devnet};
use blockfill_tests::{
    app::{
        Process, batch_queue, binaries, drop_stores, free_port, fresh_stores, init_test_logging,
        store_env, wait_healthy,
    },
    wait::wait_until,
};
use sea_orm::sqlx;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const BLOCKS: u64 = 6_000;
const BATCH: u64 = 10;
const BOUND: u64 = 24;

fn start_orchestrator(
    stores: &blockfill_activities::settings::StoreArgs,
    port: u16,
    run: usize,
) -> Process {
    let bins = binaries().expect("binaries built");
    let mut env = store_env(stores);
    env.push(("BLOCKFILL_API_ADDR", format!("127.0.0.1:{port}")));
    env.push(("BLOCKFILL_GENERATION_BATCHES", "7".into()));
    env.push(("BLOCKFILL_MAX_QUEUED_BATCHES", BOUND.to_string()));
    env.push(("BLOCKFILL_GENERATION_TIMEOUT", "3s".into()));
    Process::start(
        &bins.blockfill,
        &["serve"],
        &env,
        &format!("scheduler-orchestrator-{run}"),
    )
    .expect("orchestrator starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_generations_bounded_queue_and_a_killed_orchestrator_resumes_without_duplicates() {
    init_test_logging();
    let stores = fresh_stores();
    let stop = CancellationToken::new();
    let devnet = Arc::new(DevnetChain::new(DevnetConfig {
        blocks: BLOCKS,
        ..DevnetConfig::default()
    }));
    let rpc = format!(
        "http://{}",
        spawn_devnet(devnet, "127.0.0.1:0".parse().unwrap(), stop.clone())
            .await
            .unwrap()
    );
    let port = free_port();
    let api: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut orchestrator = start_orchestrator(&stores, port, 0);
    wait_healthy(api, Duration::from_secs(30))
        .await
        .expect("orchestrator healthy");
    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("http://{api}/v1/chains"))
        .json(&json!({"name": "gen", "rpc_urls": [rpc], "batch_size": BATCH, "live_sync": false}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["name"], "gen", "{created}");
    let backfill: Value = client
        .post(format!("http://{api}/v1/backfills"))
        .json(&json!({"chain": "gen", "from": 0, "to": BLOCKS - 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = backfill["id"].as_str().expect("backfill id").to_owned();

    // Watch the real Redis queue the whole time.
    let queue = batch_queue(&stores, Lane::Backfill, "gen").await;
    let max_depth = Arc::new(AtomicU64::new(0));
    let (probe_max, probe_stop) = (Arc::clone(&max_depth), stop.clone());
    let probe = tokio::spawn(async move {
        let mut samples = 0u64;
        // A sample every 10 ms: the probe's resolution, not synchronisation.
        let mut every = tokio::time::interval(Duration::from_millis(10));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !probe_stop.is_cancelled() {
            every.tick().await;
            if let Ok(depth) = queue.depth().await {
                probe_max.fetch_max(depth.pending(), Ordering::Relaxed);
                samples += 1;
            }
        }
        samples
    });

    // No workers yet: the scheduler fills the queue to its bound and waits.
    let conn = blockfill_activities::db::connect(&stores.database_url, 2)
        .await
        .unwrap();
    let pool = conn.get_postgres_connection_pool().clone();
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_as::<_, (i64,)>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
                .0
        }
    };
    wait_until(
        "the scheduler to fill the queue",
        Duration::from_secs(20),
        async || match count("SELECT count(*) FROM batches").await {
            planned if planned >= BOUND as i64 => Ok(()),
            planned => Err(format!("{planned} batches planned")),
        },
    )
    .await;
    // What is under test: with no worker, nothing more is planned for a while.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        count("SELECT count(*) FROM batches").await,
        BOUND as i64,
        "planned past the bound with no workers"
    );

    // One slow worker keeps the scheduler planning; kill -9 the orchestrator twice mid-plan, each
    // time once it planned a generation's worth of new batches (the first time past the bound,
    // then past what the killed one had planned).
    let mut worker = Process::worker(&stores, 2, &[], "scheduler-worker").unwrap();
    let mut planned_before_run = BOUND as i64;
    for run in 1..=2 {
        let planned_before = wait_until(
            &format!("orchestrator run {} to plan more batches", run - 1),
            Duration::from_secs(60),
            async || match count("SELECT count(*) FROM batches").await {
                planned if planned >= planned_before_run + 7 => Ok(planned),
                planned => Err(format!(
                    "{planned} batches planned, waiting for {}",
                    planned_before_run + 7
                )),
            },
        )
        .await;
        orchestrator.kill9().await;
        assert!(
            planned_before < (BLOCKS / BATCH) as i64,
            "the kill came after planning ended"
        );
        planned_before_run = count("SELECT count(*) FROM batches").await;
        orchestrator = start_orchestrator(&stores, port, run);
        wait_healthy(api, Duration::from_secs(30))
            .await
            .expect("restarted orchestrator healthy");
    }
    let mut worker2 = Process::worker(&stores, 2, &[], "scheduler-worker-2").unwrap();

    let view = wait_until(
        &format!("backfill {id} to finish"),
        Duration::from_secs(240),
        async || {
            let view: Value = client
                .get(format!("http://{api}/v1/backfills/{id}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if view["status"] == "completed" || view["status"] == "failed" {
                Ok(view)
            } else {
                Err(view)
            }
        },
    )
    .await;
    stop.cancel();
    let samples = probe.await.unwrap();
    assert_eq!(view["status"], "completed", "{view}");
    let expected_batches = (BLOCKS / BATCH) as i64;
    assert_eq!(
        count("SELECT count(*) FROM batches").await,
        expected_batches
    );
    assert_eq!(
        count("SELECT count(DISTINCT (from_block, to_block))::int8 FROM batches").await,
        expected_batches
    );
    assert_eq!(
        count("SELECT count(*) FROM batches WHERE status = 'done'").await,
        expected_batches
    );
    assert_eq!(
        count("SELECT COALESCE(SUM(deliveries), 0)::int8 FROM batches").await,
        expected_batches,
        "a batch was delivered twice"
    );
    assert_eq!(
        count("SELECT count(*) FROM blocks WHERE chain = 'gen'").await,
        BLOCKS as i64
    );
    assert_eq!(
        count("SELECT count(*) FROM coverage WHERE chain = 'gen'").await,
        1
    );
    let generations = count("SELECT MAX(generation) FROM scheduler_checkpoints").await;
    // Each generation plans at most 7 batches; a killed generation resumes under its number.
    assert!(
        generations >= (expected_batches / 7) - 4,
        "only {generations} generations for {expected_batches} batches of 7"
    );
    assert!(
        count("SELECT count(*) FROM scheduler_checkpoints").await <= 11,
        "checkpoint history is pruned"
    );
    let max = max_depth.load(Ordering::Relaxed);
    println!(
        "generations: {generations}, max Redis queue depth {max} (bound {BOUND}) over {samples} samples"
    );
    assert!(
        max <= BOUND,
        "Redis held {max} pending batch jobs, bound is {BOUND}"
    );
    assert!(
        max >= BOUND / 2,
        "the probe never saw a filled queue ({max}): it is not measuring"
    );

    worker.terminate(Duration::from_secs(10)).await;
    worker2.terminate(Duration::from_secs(10)).await;
    orchestrator.terminate(Duration::from_secs(10)).await;
    conn.close().await.ok();
    drop_stores(&stores).await;
}
