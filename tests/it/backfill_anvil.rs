//! The first whole capability against a real node: Anvil with 20,000+ blocks carrying
//! transactions and logs, backfilled through the real `blockfill serve`, the Redis queue and two
//! `blockfill-worker` processes; `blockfill verify` passes; a second backfill changes no row;
//! `verify` fails once a row is tampered with.

use std::{
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
use sea_orm::sqlx::{self, PgPool};
use serde_json::{Value, json};

async fn table_fingerprint(pool: &PgPool) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for (table, order) in [
        ("blocks", "number"),
        ("transactions", "block_number, tx_index"),
        ("logs", "block_number, log_index"),
    ] {
        let sql = format!(
            "SELECT count(*), md5(string_agg(t::text, '|' ORDER BY {order})) FROM {table} t WHERE chain = 'anvil'"
        );
        let row: (i64, Option<String>) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_one(pool)
            .await
            .unwrap();
        // xmin changes when a row is rewritten, even with identical values.
        let xmin = format!(
            "SELECT COALESCE(md5(string_agg(xmin::text, ',' ORDER BY {order})), '') FROM {table} WHERE chain = 'anvil'"
        );
        let versions: (String,) = sqlx::query_as(sqlx::AssertSqlSafe(xmin))
            .fetch_one(pool)
            .await
            .unwrap();
        out.push((
            row.0,
            format!("{}:{}", row.1.unwrap_or_default(), versions.0),
        ));
    }
    out
}

async fn backfill(client: &reqwest::Client, api: SocketAddr, to: u64) -> Value {
    let created: Value = client
        .post(format!("http://{api}/v1/backfills"))
        .json(&json!({"chain": "anvil", "from": 0, "to": to}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id: {created}"))
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let view: Value = client
            .get(format!("http://{api}/v1/backfills/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if matches!(view["status"].as_str(), Some("completed" | "failed")) {
            return view;
        }
        assert!(Instant::now() < deadline, "backfill did not finish: {view}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn run_verify(stores: &blockfill_activities::settings::StoreArgs, to: u64) -> (bool, String) {
    let bins = binaries().unwrap();
    let output = tokio::process::Command::new(&bins.blockfill)
        .args([
            "verify",
            "--chain",
            "anvil",
            "--from",
            "0",
            "--to",
            &to.to_string(),
        ])
        .env("DATABASE_URL", &stores.database_url)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anvil_backfill_through_real_binaries_verifies_and_is_idempotent() {
    init_test_logging();
    let anvil = Anvil::start().await.expect("anvil starts");
    let summary = anvil
        .build_chain(ChainSpec {
            blocks: 20_000,
            tx_every: 10,
            txs_per_block: 2,
        })
        .await
        .expect("chain built");
    let head = summary.head;
    assert!(
        head >= 20_000 && summary.transactions >= 4_000 && summary.logs >= 2_000,
        "{summary:?}"
    );

    let stores = fresh_stores();
    let bins = binaries().expect("binaries built");
    let port = free_port();
    let api: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut env = store_env(&stores);
    env.push(("BLOCKFILL_API_ADDR", api.to_string()));
    // The default sizing (batches grown on this sparse chain), with a queue bound small enough
    // that most batches are planned after the first ones measured the density.
    env.push(("BLOCKFILL_BATCH_TARGET_ROWS", "10000".to_owned()));
    env.push(("BLOCKFILL_MAX_QUEUED_BATCHES", "16".to_owned()));
    let mut orchestrator =
        Process::start(&bins.blockfill, &["serve"], &env, "anvil-orchestrator").unwrap();
    wait_healthy(api, Duration::from_secs(30))
        .await
        .expect("orchestrator healthy");
    // Four batches at a time each, so one worker cannot take every batch of the small queue.
    let mut worker_env = store_env(&stores);
    worker_env.push(("BLOCKFILL_WORKER_CONCURRENCY", "4".to_owned()));
    let mut workers: Vec<Process> = (0..2)
        .map(|i| {
            Process::start(&bins.worker, &[], &worker_env, &format!("anvil-worker-{i}")).unwrap()
        })
        .collect();
    let client = reqwest::Client::new();
    let chain: Value = client
        .post(format!("http://{api}/v1/chains"))
        .json(&json!({"name": "anvil", "rpc_urls": [anvil.url], "batch_size": 100, "live_sync": false}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(chain["chain_id"], json!(31337), "{chain}");

    let started = Instant::now();
    let first = backfill(&client, api, head).await;
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(first["status"], "completed", "{first}");
    assert_eq!(first["blocks_done"], json!(head + 1));
    println!(
        "anvil backfill: {} blocks in {seconds:.1}s ({:.0} blocks/s)",
        head + 1,
        (head + 1) as f64 / seconds
    );

    let conn = blockfill_activities::db::connect(&stores.database_url, 2)
        .await
        .unwrap();
    let pool = conn.get_postgres_connection_pool().clone();
    let before = table_fingerprint(&pool).await;
    assert_eq!(before[0].0, (head + 1) as i64, "one row per block");
    assert_eq!(
        before[1].0, summary.transactions as i64,
        "one row per transaction"
    );
    assert_eq!(before[2].0, summary.logs as i64, "one row per log");
    // The first batches were planned at the chain's batch_size; once they measured the chain
    // (about 1.3 rows a block), the scheduler planned batches of ten times that, aligned.
    let (smallest, largest, misaligned): (i64, i64, i64) = sqlx::query_as(
        "SELECT min(to_block - from_block + 1) FILTER (WHERE to_block <> $1), \
                max(to_block - from_block + 1), \
                count(*) FILTER (WHERE (to_block - from_block + 1) % 100 <> 0 AND to_block <> $1) \
         FROM batches WHERE lane = 'backfill'",
    )
    .bind(head as i64)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((smallest, largest), (100, 1_000), "batch sizes");
    assert_eq!(misaligned, 0, "batches stay multiples of batch_size");
    let workers_used: (i64,) = sqlx::query_as("SELECT count(DISTINCT worker) FROM batches")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(workers_used.0 >= 2, "both worker processes took batches");

    let (ok, out) = run_verify(&stores, head).await;
    assert!(ok, "verify failed:\n{out}");
    assert!(out.contains(" 0 mismatches"), "{out}");

    let second = backfill(&client, api, head).await;
    assert_eq!(second["status"], "completed", "{second}");
    assert_eq!(
        second["blocks_done"],
        json!(head + 1),
        "the second backfill fetched every block again"
    );
    assert_eq!(
        table_fingerprint(&pool).await,
        before,
        "the second backfill changed rows"
    );

    sqlx::query("UPDATE transactions SET hash = '0x00' WHERE chain = 'anvil' AND tx_index = 0 AND block_number = (SELECT MIN(block_number) FROM transactions WHERE chain = 'anvil')")
        .execute(&pool).await.unwrap();
    let (ok, out) = run_verify(&stores, head).await;
    assert!(!ok, "verify passed over a tampered row:\n{out}");
    assert!(
        out.contains("MISMATCH") && out.contains(" 1 mismatches"),
        "{out}"
    );

    for worker in &mut workers {
        assert!(
            worker.terminate(Duration::from_secs(15)).await,
            "worker did not stop on SIGTERM"
        );
    }
    assert!(
        orchestrator.terminate(Duration::from_secs(15)).await,
        "orchestrator did not stop on SIGTERM"
    );
    conn.close().await.ok();
    drop_stores(&stores).await;
}
