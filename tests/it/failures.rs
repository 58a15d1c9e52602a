//! Failures end in a visible state and can be retried: a backfill above the safe head is refused;
//! a batch whose endpoint is down spends its attempt budget and is marked `failed` with its
//! error (never retried forever, never split: the blocks are not at fault); once the endpoint is
//! back, `retry-failed` completes the backfill.

use std::{sync::Arc, time::Duration};

use blockfill_devnet::{DevnetChain, DevnetConfig, spawn_devnet};
use blockfill_tests::{
    app::{spawn_app, test_scheduler},
    wait::wait_until,
};
use reqwest::StatusCode;
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_batches_keep_their_error_and_retry_failed_completes_the_backfill() {
    let mut app = spawn_app(test_scheduler()).await;
    let devnet = Arc::new(DevnetChain::new(DevnetConfig {
        blocks: 300,
        ..DevnetConfig::default()
    }));
    let first_life = CancellationToken::new();
    let addr = spawn_devnet(
        Arc::clone(&devnet),
        "127.0.0.1:0".parse().unwrap(),
        first_life.clone(),
    )
    .await
    .unwrap();
    app.register_chain("flaky", &format!("http://{addr}"), 50)
        .await;

    let (status, body) = app
        .post(
            "/v1/backfills",
            json!({"chain": "flaky", "from": 0, "to": 400}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("above the safe head"),
        "{body}"
    );

    // The endpoint dies before the backfill starts.
    first_life.cancel();
    wait_until(
        "the endpoint to refuse connections",
        Duration::from_secs(10),
        async || match tokio::net::TcpStream::connect(addr).await {
            Err(_) => Ok(()),
            Ok(_) => Err(format!("{addr} still accepts connections")),
        },
    )
    .await;
    // One batch per slot: every batch spends its budget at once.
    app.spawn_inprocess_worker(6);
    let id = app.trigger_backfill("flaky", 0, 299).await;
    let view = app.wait_until_finished(&id, Duration::from_secs(90)).await;
    assert_eq!(view["status"], json!("failed"), "{view}");
    assert_eq!(
        view["batches"],
        json!({"planned": 0, "queued": 0, "running": 0, "done": 0, "failed": 6, "cancelled": 0})
    );
    assert_eq!(
        view["split_batches"],
        json!(0),
        "an endpoint failure is not the blocks' fault"
    );
    assert_eq!(view["quarantined_blocks"], json!(0));
    assert_eq!(view["retried_batches"], json!(6));
    assert_eq!(
        view["failed_attempts"],
        json!(30),
        "5 attempts per batch, then failed"
    );
    assert!(
        view["last_errors"][0]
            .as_str()
            .unwrap()
            .contains("RPC transport error"),
        "{view}"
    );
    let (_, status_answer) = app.get("/v1/chains/flaky/status").await;
    assert_eq!(
        status_answer["work"]["failed_batches"],
        json!(6),
        "{status_answer}"
    );
    assert_eq!(status_answer["work"]["retried_batches"], json!(6));
    let (_, failed) = app.get("/v1/batches?status=failed&chain=flaky").await;
    assert_eq!(failed.as_array().unwrap().len(), 6);
    assert_eq!(failed[0]["attempts"], json!(5));
    // Nothing keeps retrying them: the 2 s without a new attempt are what is under test.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        app.count("SELECT SUM(attempts)::int8 FROM batches").await,
        30
    );

    // The endpoint is back: retry the failed batches.
    let second_life = CancellationToken::new();
    spawn_devnet(Arc::clone(&devnet), addr, second_life.clone())
        .await
        .unwrap();
    let (status, retried) = app
        .post(&format!("/v1/backfills/{id}/retry-failed"), json!({}))
        .await;
    assert_eq!((status, retried), (StatusCode::OK, json!({"retried": 6})));
    let view = app.wait_until_finished(&id, Duration::from_secs(60)).await;
    assert_eq!(view["status"], json!("completed"), "{view}");
    assert_eq!(view["blocks_done"], json!(300));
    assert_eq!(
        app.count("SELECT count(*) FROM blocks WHERE chain = 'flaky'")
            .await,
        300
    );
    let (status, _) = app.post("/v1/batches/flaky:0-49/retry", json!({})).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a done batch cannot be retried"
    );
    let (status, _) = app.post("/v1/batches/flaky:1-2/retry", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    second_life.cancel();
    app.teardown().await;
}
