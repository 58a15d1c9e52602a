//! Two orchestrators on one database: exactly one leads and schedules, the other serves reads and
//! refuses writes; killing the leader (SIGKILL) hands scheduling over within seconds, and the
//! backfill finishes with no batch planned or delivered twice.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use blockfill_devnet::{DevnetChain, DevnetConfig, spawn_devnet};
use blockfill_tests::app::{
    Process, binaries, drop_stores, free_port, fresh_stores, init_test_logging, store_env,
    wait_healthy,
};
use reqwest::StatusCode;
use sea_orm::sqlx;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const BLOCKS: u64 = 3_000;

async fn get(client: &reqwest::Client, addr: SocketAddr, path: &str) -> Value {
    client
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_orchestrator_schedules_and_a_standby_takes_over_when_it_dies() {
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
    let bins = binaries().unwrap();
    let start = |port: u16, name: &str| {
        let mut env = store_env(&stores);
        env.push(("BLOCKFILL_API_ADDR", format!("127.0.0.1:{port}")));
        env.push(("BLOCKFILL_GENERATION_BATCHES", "5".into()));
        env.push(("BLOCKFILL_MAX_QUEUED_BATCHES", "8".into()));
        env.push(("BLOCKFILL_GENERATION_TIMEOUT", "3s".into()));
        Process::start(&bins.blockfill, &["serve"], &env, name).unwrap()
    };
    let (port_a, port_b) = (free_port(), free_port());
    let (addr_a, addr_b): (SocketAddr, SocketAddr) = (
        format!("127.0.0.1:{port_a}").parse().unwrap(),
        format!("127.0.0.1:{port_b}").parse().unwrap(),
    );
    let mut a = start(port_a, "leadership-a");
    wait_healthy(addr_a, Duration::from_secs(30)).await.unwrap();
    let mut b = start(port_b, "leadership-b");
    wait_healthy(addr_b, Duration::from_secs(30)).await.unwrap();
    let client = reqwest::Client::new();

    let view_a = get(&client, addr_a, "/v1/orchestrator").await;
    let view_b = get(&client, addr_b, "/v1/orchestrator").await;
    assert_eq!(view_a["role"], "leader", "{view_a}");
    assert_eq!(view_b["role"], "standby", "{view_b}");
    assert_eq!(
        view_b["leader"]["holder"], view_a["instance"],
        "both agree on the leader"
    );
    let leader_id = view_a["instance"].as_str().unwrap().to_owned();
    let standby_id = view_b["instance"].as_str().unwrap().to_owned();

    let chain = json!({"name": "lead", "rpc_urls": [rpc], "batch_size": 10, "live_sync": false});
    let refused = client
        .post(format!("http://{addr_b}/v1/chains"))
        .json(&chain)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    let refused: Value = refused.json().await.unwrap();
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains(&addr_a.to_string()),
        "the standby names the leader: {refused}"
    );
    let created = client
        .post(format!("http://{addr_a}/v1/chains"))
        .json(&chain)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let chains = get(&client, addr_b, "/v1/chains").await;
    assert_eq!(chains[0]["name"], "lead", "the standby serves reads");

    let backfill: Value = client
        .post(format!("http://{addr_a}/v1/backfills"))
        .json(&json!({"chain": "lead", "from": 0, "to": BLOCKS - 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = backfill["id"].as_str().unwrap().to_owned();
    let mut worker_env = store_env(&stores);
    worker_env.push(("BLOCKFILL_WORKER_CONCURRENCY", "1".into()));
    let mut worker = Process::start(&bins.worker, &[], &worker_env, "leadership-worker").unwrap();

    let conn = blockfill_activities::db::connect(&stores.database_url, 2)
        .await
        .unwrap();
    let pool = conn.get_postgres_connection_pool().clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (done,): (i64,) = sqlx::query_as("SELECT count(*) FROM batches WHERE status = 'done'")
            .fetch_one(&pool)
            .await
            .unwrap();
        if done >= 40 {
            break;
        }
        assert!(Instant::now() < deadline, "no progress");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let holders: Vec<(Option<String>,)> =
        sqlx::query_as("SELECT DISTINCT holder FROM scheduler_checkpoints")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(
        holders
            .iter()
            .all(|(h,)| h.as_deref().is_none_or(|h| h == leader_id)),
        "only the leader schedules: {holders:?}"
    );

    a.kill9().await;
    let killed_at = Instant::now();
    let handover = loop {
        let view = get(&client, addr_b, "/v1/orchestrator").await;
        if view["role"] == "leader" {
            break killed_at.elapsed();
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(15),
            "no takeover: {view}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("standby took over {handover:?} after the leader was killed");
    assert!(
        handover < Duration::from_secs(5),
        "takeover took {handover:?}"
    );

    let deadline = Instant::now() + Duration::from_secs(120);
    let view = loop {
        let view = get(&client, addr_b, &format!("/v1/backfills/{id}")).await;
        if view["status"] == "completed" || view["status"] == "failed" {
            break view;
        }
        assert!(
            Instant::now() < deadline,
            "backfill did not finish after the handover: {view}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(view["status"], "completed", "{view}");
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
        count("SELECT count(*) FROM batches").await,
        (BLOCKS / 10) as i64
    );
    assert_eq!(
        count("SELECT COALESCE(SUM(deliveries), 0)::int8 FROM batches").await,
        (BLOCKS / 10) as i64,
        "a batch was delivered twice"
    );
    assert_eq!(
        count("SELECT count(*) FROM blocks WHERE chain = 'lead'").await,
        BLOCKS as i64
    );
    let (latest_holder,): (Option<String>,) =
        sqlx::query_as("SELECT holder FROM scheduler_checkpoints ORDER BY generation DESC LIMIT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        latest_holder.as_deref(),
        Some(standby_id.as_str()),
        "the new leader finished the schedule"
    );

    worker.terminate(Duration::from_secs(10)).await;
    b.terminate(Duration::from_secs(10)).await;
    stop.cancel();
    conn.close().await.ok();
    drop_stores(&stores).await;
}
