//! Chaos: 100,000 Anvil blocks backfilled by 3 worker processes while a driver SIGKILLs a random
//! worker every 2 s (and restarts it), kills and restarts the orchestrator twice, and flushes
//! Redis once (a private Redis server, so nothing else is touched). At the end `blockfill verify`
//! passes, no row is duplicated, no block is missing, and every batch a killed worker held ran
//! again within 15 s. Prints the kills survived and the slowest redelivery.

use std::{
    collections::HashMap,
    net::SocketAddr,
    time::{Duration, Instant},
};

use blockfill_tests::{
    anvil::{Anvil, ChainSpec},
    app::{
        Process, binaries, drop_stores, free_port, fresh_stores, init_test_logging, store_env,
        wait_healthy,
    },
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use sea_orm::sqlx::{self, PgPool};
use serde_json::{Value, json};

const WORKERS: usize = 3;

async fn held_batches(pool: &PgPool, pid: u32) -> Vec<String> {
    sqlx::query_as::<_, (String,)>(
        "SELECT id FROM batches WHERE status = 'running' AND worker LIKE $1",
    )
    .bind(format!("%-{pid}-%"))
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(id,)| id)
    .collect()
}

// Timing-sensitive (redelivery within 15 s): scripts/test.sh runs it on its own, after the rest.
#[ignore = "chaos: run alone with `cargo test -p blockfill-tests --test it -- --ignored`"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_survives_worker_kills_orchestrator_restarts_and_a_redis_flush() {
    init_test_logging();
    let anvil = Anvil::start().await.expect("anvil");
    let summary = anvil
        .build_chain(ChainSpec {
            blocks: 100_000,
            tx_every: 50,
            txs_per_block: 2,
        })
        .await
        .expect("chain");
    let head = summary.head;

    // A private Redis, so FLUSHALL touches nothing but this test.
    let redis_port = free_port();
    let bins = binaries().unwrap();
    let mut redis = Process::start(
        &"redis-server".into(),
        &[
            "--port",
            &redis_port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        &[],
        "chaos-redis",
    )
    .expect("redis-server");
    let mut stores = fresh_stores();
    stores.redis_url = format!("redis://127.0.0.1:{redis_port}");
    let redis_client = redis::Client::open(stores.redis_url.as_str()).unwrap();
    let mut redis_conn = loop {
        if let Ok(conn) = redis_client.get_multiplexed_async_connection().await {
            break conn;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let port = free_port();
    let api: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut orchestrator_env = store_env(&stores);
    orchestrator_env.push(("BLOCKFILL_API_ADDR", api.to_string()));
    let start_orchestrator = |run: usize| {
        Process::start(
            &bins.blockfill,
            &["serve"],
            &orchestrator_env,
            &format!("chaos-orchestrator-{run}"),
        )
        .unwrap()
    };
    let mut worker_env = store_env(&stores);
    worker_env.push(("BLOCKFILL_WORKER_CONCURRENCY", "2".into()));
    let start_worker = |slot: usize, life: usize| {
        Process::start(
            &bins.worker,
            &[],
            &worker_env,
            &format!("chaos-worker-{slot}-{life}"),
        )
        .unwrap()
    };

    let mut orchestrator = start_orchestrator(0);
    wait_healthy(api, Duration::from_secs(30)).await.unwrap();
    let mut workers: Vec<Process> = (0..WORKERS).map(|slot| start_worker(slot, 0)).collect();
    let client = reqwest::Client::new();
    let chain: Value = client
        .post(format!("http://{api}/v1/chains"))
        .json(&json!({"name": "chaos", "rpc_urls": [anvil.url], "batch_size": 50}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(chain["name"], "chaos", "{chain}");
    let backfill: Value = client
        .post(format!("http://{api}/v1/backfills"))
        .json(&json!({"chain": "chaos", "from": 0, "to": head}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = backfill["id"].as_str().unwrap().to_owned();
    let conn = blockfill_activities::db::connect(&stores.database_url, 2)
        .await
        .unwrap();
    let pool = conn.get_postgres_connection_pool().clone();

    let mut rng = StdRng::seed_from_u64(7);
    let started = Instant::now();
    let (mut worker_kills, mut orchestrator_kills, mut flushes) = (0, 0, 0);
    let mut next_worker_kill = Duration::from_secs(2);
    let mut lives = [0usize; WORKERS];
    // Batch id -> when the worker holding it was killed.
    let mut awaiting: HashMap<String, Instant> = HashMap::new();
    let mut slowest = Duration::ZERO;
    let mut redeliveries = 0;
    let view = loop {
        let elapsed = started.elapsed();
        if elapsed >= next_worker_kill {
            let slot = rng.random_range(0..WORKERS);
            let pid = workers[slot].child.id().unwrap_or_default();
            let held = held_batches(&pool, pid).await;
            workers[slot].kill9().await;
            let now = Instant::now();
            for batch in held {
                awaiting.entry(batch).or_insert(now);
            }
            lives[slot] += 1;
            workers[slot] = start_worker(slot, lives[slot]);
            worker_kills += 1;
            next_worker_kill += Duration::from_secs(2);
        }
        if (orchestrator_kills == 0 && elapsed >= Duration::from_secs(5))
            || (orchestrator_kills == 1 && elapsed >= Duration::from_secs(13))
        {
            orchestrator.kill9().await;
            orchestrator_kills += 1;
            orchestrator = start_orchestrator(orchestrator_kills);
            wait_healthy(api, Duration::from_secs(30)).await.unwrap();
        }
        if flushes == 0 && elapsed >= Duration::from_secs(9) {
            let _: () = redis::cmd("FLUSHALL")
                .query_async(&mut redis_conn)
                .await
                .unwrap();
            flushes += 1;
        }
        // Redelivery: a held batch runs again (restarted after the kill) or was finished by another.
        if !awaiting.is_empty() {
            let ids: Vec<String> = awaiting.keys().cloned().collect();
            let rows: Vec<(String, String, Option<chrono::DateTime<chrono::Utc>>)> =
                sqlx::query_as("SELECT id, status, started_at FROM batches WHERE id = ANY($1)")
                    .bind(&ids)
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            let now_db: (chrono::DateTime<chrono::Utc>,) = sqlx::query_as("SELECT now()")
                .fetch_one(&pool)
                .await
                .unwrap();
            for (batch, status, started_at) in rows {
                let killed = awaiting[&batch];
                let since_kill = chrono::Duration::from_std(killed.elapsed()).unwrap();
                let restarted = started_at.is_some_and(|s| s > now_db.0 - since_kill);
                if restarted || status != "running" {
                    let latency = killed.elapsed();
                    slowest = slowest.max(latency);
                    redeliveries += 1;
                    awaiting.remove(&batch);
                }
            }
        }
        let view: Value = match client
            .get(format!("http://{api}/v1/backfills/{id}"))
            .send()
            .await
        {
            Ok(response) => response.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        if view["status"] == "completed" || view["status"] == "failed" {
            break view;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "backfill did not finish under chaos: {view}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let seconds = started.elapsed().as_secs_f64();
    if let Some((batch, killed)) = awaiting.iter().next() {
        panic!(
            "batch {batch} held by a killed worker never ran again ({:?})",
            killed.elapsed()
        );
    }
    println!(
        "chaos: {} blocks in {seconds:.1}s; survived {worker_kills} worker kills, {orchestrator_kills} orchestrator kills, \
         {flushes} Redis flush; {redeliveries} batches redelivered, slowest redelivery {slowest:?}",
        head + 1
    );
    assert_eq!(view["status"], "completed", "{view}");
    assert_eq!(
        orchestrator_kills, 2,
        "the backfill finished before the chaos did"
    );
    assert_eq!(flushes, 1, "the backfill finished before the flush");
    assert!(worker_kills >= 5, "only {worker_kills} worker kills");
    assert!(
        redeliveries > 0,
        "no killed worker held a batch: the redelivery check measured nothing"
    );
    assert!(
        slowest <= Duration::from_secs(15),
        "slowest redelivery {slowest:?}"
    );

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
    assert_eq!(
        count("SELECT count(*) FROM blocks WHERE chain = 'chaos'").await,
        (head + 1) as i64,
        "a block is missing"
    );
    assert_eq!(
        count("SELECT count(DISTINCT number) FROM blocks WHERE chain = 'chaos'").await,
        (head + 1) as i64
    );
    assert_eq!(
        count("SELECT count(*) FROM transactions WHERE chain = 'chaos'").await,
        summary.transactions as i64
    );
    assert_eq!(
        count("SELECT count(*) FROM logs WHERE chain = 'chaos'").await,
        summary.logs as i64
    );
    assert_eq!(
        count("SELECT count(*) FROM coverage WHERE chain = 'chaos'").await,
        1
    );
    let output = tokio::process::Command::new(&bins.blockfill)
        .args([
            "verify",
            "--chain",
            "chaos",
            "--from",
            "0",
            "--to",
            &head.to_string(),
        ])
        .env("DATABASE_URL", &stores.database_url)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "verify failed:\n{stdout}");
    assert!(stdout.contains(" 0 mismatches"), "{stdout}");

    for worker in &mut workers {
        worker.terminate(Duration::from_secs(10)).await;
    }
    orchestrator.terminate(Duration::from_secs(10)).await;
    conn.close().await.ok();
    redis.kill9().await;
    drop_stores(&stores).await;
}
