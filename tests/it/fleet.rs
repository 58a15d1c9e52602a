//! `GET /v1/chains/{name}/fleet`: the fleet's size follows the backlog and the measured rate
//! within the chain's `[min_workers, max_workers]`, with a capacity planner for a deadline.

use std::time::Duration;

use blockfill_tests::{
    app::{spawn_app, test_scheduler},
    devnet::ServedDevnet,
    process::Process,
    wait::wait_until,
};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_answer_follows_the_backlog_within_min_and_max() {
    let app = spawn_app(test_scheduler()).await;
    let devnet = ServedDevnet::with_blocks(20_000).await;
    app.register(json!({
        "name": "fleet", "rpc_urls": [devnet.url()], "batch_size": 100, "live_sync": false,
        "min_workers": 1, "max_workers": 3,
    }))
    .await;

    let (code, idle) = app.get("/v1/chains/fleet/fleet").await;
    assert_eq!(code, StatusCode::OK, "{idle}");
    assert_eq!(idle["running"], json!(0));
    assert_eq!(idle["backlog_blocks"], json!(0));
    assert_eq!(idle["desired"], json!(1), "no backlog: the minimum: {idle}");
    assert_eq!(idle["reason"], json!("no_backlog"));
    assert_eq!(
        (idle["min_workers"].clone(), idle["max_workers"].clone()),
        (json!(1), json!(3))
    );

    let (code, missing) = app.get("/v1/chains/nope/fleet").await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{missing}");
    let (code, bad) = app.get("/v1/chains/fleet/fleet?finish_by=tomorrow").await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");

    let mut worker = Process::worker(&app.stores, 2, &[], "fleet-worker").unwrap();
    let id = app.trigger_backfill("fleet", 0, 19_999).await;
    let finish_by = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let busy = wait_until("a measured backlog", Duration::from_secs(60), async || {
        let (_, fleet) = app
            .get(&format!(
                "/v1/chains/fleet/fleet?finish_by={}",
                urlencode(&finish_by)
            ))
            .await;
        let measured = fleet["per_worker_blocks_per_second"]
            .as_f64()
            .unwrap_or(0.0)
            > 0.0;
        if fleet["running"] == json!(1)
            && fleet["backlog_blocks"].as_u64().unwrap_or(0) > 0
            && measured
        {
            Ok(fleet)
        } else {
            Err(fleet)
        }
    })
    .await;
    let desired = busy["desired"].as_u64().unwrap();
    assert!((1..=3).contains(&desired), "within [min, max]: {busy}");
    assert!(busy["eta_seconds"].as_f64().unwrap() > 0.0, "{busy}");
    assert!(busy["backlog_blocks"].as_u64().unwrap() <= 20_000, "{busy}");
    assert!(
        busy["workers_to_finish_by"].as_u64().unwrap() >= 1,
        "{busy}"
    );

    app.wait_until_finished(&id, Duration::from_secs(180)).await;
    let done = wait_until("the backlog drained", Duration::from_secs(30), async || {
        let (_, fleet) = app.get("/v1/chains/fleet/fleet").await;
        if fleet["backlog_blocks"] == json!(0) {
            Ok(fleet)
        } else {
            Err(fleet)
        }
    })
    .await;
    assert_eq!(done["desired"], json!(1), "back to the minimum: {done}");
    assert_eq!(done["reason"], json!("no_backlog"));
    let metrics = app.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "blockfill_fleet_desired_workers{chain=\"fleet\"} 1"),
        "the gauge follows the answer"
    );
    worker.terminate(Duration::from_secs(20)).await;
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_keeps_the_desired_gauge_current_without_api_reads() {
    let app = spawn_app(test_scheduler()).await;
    let devnet = ServedDevnet::with_blocks(100).await;
    app.register(json!({
        "name": "gauge", "rpc_urls": [devnet.url()], "live_sync": false,
        "min_workers": 2, "max_workers": 5,
    }))
    .await;
    // Nobody asks for the fleet answer: the leader's fleet loop sets the gauge.
    wait_until(
        "the gauge at the minimum",
        Duration::from_secs(20),
        async || {
            let metrics = app
                .client
                .get(format!("http://{}/metrics", app.api))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let line = "blockfill_fleet_desired_workers{chain=\"gauge\"} 2";
            if metrics.lines().any(|l| l == line) {
                Ok(())
            } else {
                Err(format!("no line {line}"))
            }
        },
    )
    .await;
    app.teardown().await;
}

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}
