//! `GET /v1/workers`: real `blockfill-worker` processes report what they serve and how they are
//! doing; a worker that stops is gone at once, a killed one once its heartbeat is stale.

use std::time::Duration;

use blockfill_tests::{
    app::{spawn_app, test_scheduler},
    devnet::ServedDevnet,
    process::Process,
    wait::wait_until,
};
use serde_json::{Value, json};

async fn workers(app: &blockfill_tests::app::TestApp) -> Vec<Value> {
    let (code, body) = app.get("/v1/workers").await;
    assert_eq!(code, reqwest::StatusCode::OK, "{body}");
    body.as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_report_themselves_and_expire_when_they_stop_or_die() {
    let app = spawn_app(test_scheduler()).await;
    let devnet = ServedDevnet::with_blocks(3_000).await;
    app.register_chain("fleet", &devnet.url(), 100).await;
    let mut first = Process::worker(&app.stores, 4, &[], "workers-first").unwrap();
    let mut second = Process::worker(&app.stores, 3, &[], "workers-second").unwrap();

    let listed = wait_until(
        "two workers reporting",
        Duration::from_secs(30),
        async || {
            let listed = workers(&app).await;
            if listed.len() == 2 {
                Ok(listed)
            } else {
                Err(json!(listed))
            }
        },
    )
    .await;
    let mut concurrencies: Vec<i64> = listed
        .iter()
        .map(|w| w["concurrency"].as_i64().unwrap())
        .collect();
    concurrencies.sort_unstable();
    // Each serves both lanes: its backfill concurrency plus the live lane's reserve of 2.
    assert_eq!(concurrencies, vec![5, 6], "{listed:?}");
    for worker in &listed {
        assert_eq!(worker["lanes"], json!(["backfill", "live"]), "{worker}");
        assert_eq!(
            worker["chains"],
            Value::Null,
            "serves every chain: {worker}"
        );
        assert_eq!(worker["version"], json!(env!("CARGO_PKG_VERSION")));
        assert!(!worker["host"].as_str().unwrap().is_empty());
        assert!(
            worker["heartbeat_age_seconds"].as_f64().unwrap() < 10.0,
            "{worker}"
        );
    }

    // Work shows in the reports: every block is counted once, by the worker that wrote it.
    let id = app.trigger_backfill("fleet", 0, 2_999).await;
    app.wait_until_finished(&id, Duration::from_secs(120)).await;
    wait_until(
        "the reports to count 3,000 blocks",
        Duration::from_secs(20),
        async || {
            let listed = workers(&app).await;
            let blocks: i64 = listed
                .iter()
                .map(|w| w["blocks_done"].as_i64().unwrap_or(0))
                .sum();
            let batches: i64 = listed
                .iter()
                .map(|w| w["batches_done"].as_i64().unwrap_or(0))
                .sum();
            let in_flight: i64 = listed
                .iter()
                .map(|w| w["in_flight"].as_i64().unwrap_or(0))
                .sum();
            if blocks == 3_000 && batches == 30 && in_flight == 0 {
                Ok(())
            } else {
                Err(json!(listed))
            }
        },
    )
    .await;

    // A report nobody refreshes is not listed.
    sea_orm::sqlx::query(
        "INSERT INTO workers (id, host, version, lanes, concurrency, last_heartbeat) \
         VALUES ('gone', 'h', '0', '{backfill}', 1, now() - interval '1 minute')",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    assert_eq!(workers(&app).await.len(), 2);

    // A worker that stops removes its report at once; a killed one expires with its heartbeat.
    assert!(
        first.terminate(Duration::from_secs(20)).await,
        "the worker stops on SIGTERM"
    );
    let listed = workers(&app).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["concurrency"], json!(5));
    second.kill9().await;
    wait_until(
        "the killed worker to expire",
        Duration::from_secs(30),
        async || {
            let listed = workers(&app).await;
            if listed.is_empty() {
                Ok(())
            } else {
                Err(json!(listed))
            }
        },
    )
    .await;
    app.teardown().await;
}
