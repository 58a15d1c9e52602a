//! A batch that keeps failing spends its attempt budget, is marked `failed` with its error, and
//! the backfill ends `failed` with the rest of the range written; nothing retries forever.

use std::{sync::Arc, time::Duration};

use blockfill_activities::{DevnetChain, DevnetConfig};
use blockfill_orchestrator::devnet_server::spawn_devnet;
use blockfill_tests::app::{spawn_app, test_scheduler};
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_out_of_attempts_fails_with_its_error_and_the_rest_completes() {
    let mut app = spawn_app(test_scheduler()).await;
    let stop = CancellationToken::new();
    // The node has blocks 0..=149: a backfill to 199 asks for 50 blocks it does not have.
    let devnet = Arc::new(DevnetChain::new(DevnetConfig {
        blocks: 150,
        ..DevnetConfig::default()
    }));
    let addr = spawn_devnet(devnet, "127.0.0.1:0".parse().unwrap(), stop.clone())
        .await
        .unwrap();
    app.register_chain("short", &format!("http://{addr}"), 50)
        .await;
    app.spawn_inprocess_worker(2);
    let id = app.trigger_backfill("short", 0, 199).await;
    let view = app.wait_until_finished(&id, Duration::from_secs(60)).await;

    assert_eq!(view["status"], json!("failed"), "{view}");
    assert_eq!(
        view["batches"],
        json!({"planned": 0, "queued": 0, "running": 0, "done": 3, "failed": 1})
    );
    assert_eq!(view["blocks_done"], json!(150));
    assert!(
        view["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("block 150 is not available"),
        "{view}"
    );
    let (attempts, deliveries, status, error): (i32, i32, String, Option<String>) = sea_orm::sqlx::query_as(
        "SELECT attempts, deliveries, status, last_error FROM batches WHERE id = 'short:150-199'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        (attempts, status.as_str()),
        (5, "failed"),
        "the budget is 5 attempts"
    );
    assert_eq!(deliveries, 5, "every attempt was counted as a delivery");
    assert!(error.unwrap_or_default().contains("not available"));
    // Nothing keeps retrying it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        app.count("SELECT attempts::int8 FROM batches WHERE id = 'short:150-199'")
            .await,
        5
    );
    assert_eq!(
        app.count("SELECT count(*) FROM blocks WHERE chain = 'short'")
            .await,
        150
    );
    stop.cancel();
    app.teardown().await;
}
