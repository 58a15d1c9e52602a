//! A backfill request beyond the recorded head reads the head first: the recorded head is only as
//! fresh as the head tracker's last read, and an answer must not depend on that race (a demo run
//! again with more blocks was refused with the previous run's head).

use std::time::Duration;

use blockfill_tests::{
    app::{spawn_app, test_scheduler},
    devnet::ServedDevnet,
};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_beyond_a_stale_recorded_head_reads_the_head_first() {
    let mut scheduler = test_scheduler();
    // The head tracker reads heads once, at start: the recorded head goes stale.
    scheduler.head_poll_interval = Duration::from_secs(3_600);
    let app = spawn_app(scheduler).await;
    let devnet = ServedDevnet::with_blocks(1_000).await;
    app.register(json!({
        "name": "stale", "rpc_urls": [devnet.url()], "confirmations": 0, "live_sync": false,
    }))
    .await;
    sea_orm::sqlx::query("UPDATE chains SET head_block = 10 WHERE name = 'stale'")
        .execute(&app.pool)
        .await
        .unwrap();

    let (code, created) = app
        .post(
            "/v1/backfills",
            json!({"chain": "stale", "from": 0, "to": 900}),
        )
        .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{created}");
    let (_, chain) = app.get("/v1/chains/stale").await;
    assert_eq!(
        chain["head"],
        json!(999),
        "the head read is recorded: {chain}"
    );

    // Beyond the node's head: refused, naming the head just read.
    let (code, refused) = app
        .post(
            "/v1/backfills",
            json!({"chain": "stale", "from": 0, "to": 1_500}),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap_or_default()
            .contains("(999"),
        "{refused}"
    );
    app.teardown().await;
}
