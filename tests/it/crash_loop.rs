//! A batch that kills its worker every time it runs does not loop forever: deliveries are counted
//! in PostgreSQL, and once they exceed the attempt budget the batch is split and its bad block
//! quarantined, while the rest of the range completes.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{Json, Router, extract::State, routing::post};
use blockfill_devnet::{DevnetChain, DevnetConfig};
use blockfill_tests::app::{
    Process, binaries, drop_stores, free_port, fresh_stores, init_test_logging, store_env,
    wait_healthy,
};
use sea_orm::sqlx;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const DEADLY: i64 = 61;

/// The devnet, answering slowly for the deadly block and counting those requests, so the driver
/// can kill whichever worker is fetching it: the batch "kills its worker".
async fn slow_devnet(
    devnet: Arc<DevnetChain>,
    deadly_requests: Arc<AtomicU64>,
    stop: CancellationToken,
) -> SocketAddr {
    type Shared = (Arc<DevnetChain>, Arc<AtomicU64>);
    async fn rpc(State((devnet, seen)): State<Shared>, Json(request): Json<Value>) -> Json<Value> {
        if request.to_string().contains(&format!("\"{DEADLY:#x}\"")) {
            seen.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        Json(devnet.handle_rpc(&request))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Router::new()
        .route("/", post(rpc))
        .with_state((devnet, deadly_requests));
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
            .unwrap();
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_kills_its_workers_is_split_and_its_block_quarantined() {
    init_test_logging();
    let stores = fresh_stores();
    let stop = CancellationToken::new();
    let devnet = Arc::new(DevnetChain::new(DevnetConfig {
        blocks: 100,
        ..DevnetConfig::default()
    }));
    let deadly_requests = Arc::new(AtomicU64::new(0));
    let rpc = format!(
        "http://{}",
        slow_devnet(devnet, Arc::clone(&deadly_requests), stop.clone()).await
    );
    let bins = binaries().unwrap();
    let port = free_port();
    let api: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut env = store_env(&stores);
    env.push(("BLOCKFILL_API_ADDR", api.to_string()));
    let mut orchestrator =
        Process::start(&bins.blockfill, &["serve"], &env, "crash-orchestrator").unwrap();
    wait_healthy(api, Duration::from_secs(30)).await.unwrap();
    let client = reqwest::Client::new();
    client
        .post(format!("http://{api}/v1/chains"))
        .json(&json!({"name": "deadly", "rpc_urls": [rpc], "batch_size": 2, "live_sync": false}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let mut worker_env = store_env(&stores);
    worker_env.push(("BLOCKFILL_WORKER_CONCURRENCY", "1".into()));
    worker_env.push(("BLOCKFILL_ATTEMPT_BUDGET", "2".into()));
    let start_worker = |n: usize| {
        Process::start(&bins.worker, &[], &worker_env, &format!("crash-worker-{n}")).unwrap()
    };
    let mut workers = vec![start_worker(0), start_worker(1)];
    let mut started = 2;
    let backfill: Value = client
        .post(format!("http://{api}/v1/backfills"))
        .json(&json!({"chain": "deadly", "from": 0, "to": 99}))
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

    // Whoever starts a batch holding the deadly block dies.
    let begin = Instant::now();
    let mut kills = 0;
    let mut handled_requests = 0;
    let view = loop {
        let seen = deadly_requests.load(Ordering::SeqCst);
        if seen > handled_requests {
            // Someone is fetching the deadly block: kill the worker holding its batch.
            handled_requests = seen;
            let running: Vec<(Option<String>,)> = sqlx::query_as(
                "SELECT worker FROM batches WHERE status = 'running' AND from_block <= $1 AND $1 <= to_block",
            )
            .bind(DEADLY)
            .fetch_all(&pool)
            .await
            .unwrap();
            for (worker,) in running {
                let worker = worker.unwrap_or_default();
                if let Some(slot) = workers.iter().position(|w| {
                    w.child
                        .id()
                        .is_some_and(|pid| worker.contains(&format!("-{pid}-")))
                }) {
                    workers[slot].kill9().await;
                    workers[slot] = start_worker(started);
                    started += 1;
                    kills += 1;
                }
            }
        }
        let view: Value = client
            .get(format!("http://{api}/v1/backfills/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if view["status"] == "completed" || view["status"] == "failed" {
            break view;
        }
        assert!(
            begin.elapsed() < Duration::from_secs(180),
            "still looping after {kills} kills: {view}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    println!(
        "crash loop resolved after {kills} worker kills in {:?}",
        begin.elapsed()
    );
    assert_eq!(view["status"], "completed", "{view}");
    assert_eq!(view["quarantined_blocks"], json!(1), "{view}");
    assert_eq!(view["blocks_done"], json!(99));
    assert!(
        kills >= 4,
        "two budgets' worth of crashes expected, saw {kills}"
    );
    let quarantined: Value = client
        .get(format!("http://{api}/v1/quarantine"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(quarantined[0]["number"], json!(DEADLY), "{quarantined}");
    assert!(
        quarantined[0]["error"]
            .as_str()
            .unwrap()
            .contains("workers keep dying"),
        "{quarantined}"
    );
    let (split,): (i64,) = sqlx::query_as("SELECT count(*) FROM batches WHERE status = 'split'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(split, 1, "the two-block batch was split once");
    let (blocks,): (i64,) = sqlx::query_as("SELECT count(*) FROM blocks WHERE chain = 'deadly'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(blocks, 99);

    for worker in &mut workers {
        worker.terminate(Duration::from_secs(10)).await;
    }
    orchestrator.terminate(Duration::from_secs(10)).await;
    stop.cancel();
    conn.close().await.ok();
    drop_stores(&stores).await;
}
