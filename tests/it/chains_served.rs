//! `blockfill-worker --chains`: each lane of each chain has its own Redis queue, so a worker
//! serves only the chains it is given, a chain nobody serves waits without holding up another,
//! and a worker serving every chain picks up a chain registered after it started.

use std::time::Duration;

use blockfill_tests::{
    app::{TestApp, spawn_app, test_scheduler},
    devnet::ServedDevnet,
    process::{Process, binaries},
    wait::wait_until,
};
use serde_json::{Value, json};

async fn blocks_of(app: &TestApp, chain: &str) -> i64 {
    app.count(&format!(
        "SELECT count(*) FROM blocks WHERE chain = '{chain}'"
    ))
    .await
}

async fn fleet(app: &TestApp, chain: &str) -> Value {
    let (code, body) = app.get(&format!("/v1/chains/{chain}/fleet")).await;
    assert_eq!(code, reqwest::StatusCode::OK, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_serves_only_its_chains_and_a_worker_for_all_picks_up_new_ones() {
    let mut scheduler = test_scheduler();
    // A bound smaller than one chain's backlog: the unserved chain fills its own queue only.
    scheduler.max_queued_batches = 8;
    let app = spawn_app(scheduler).await;
    let (alpha_chain, beta_chain) = (
        ServedDevnet::with_blocks(2_000).await,
        ServedDevnet::with_blocks(2_000).await,
    );
    app.register_chain("alpha", &alpha_chain.url(), 50).await;
    let mut alpha_only = Process::worker(
        &app.stores,
        2,
        &[("BLOCKFILL_WORKER_CHAINS", "alpha".to_owned())],
        "served-alpha",
    )
    .unwrap();

    // beta is registered after the worker started, and backfilled first: its queue fills to the
    // bound and stays there, nobody serves it; alpha's backfill still runs to the end.
    app.register_chain("beta", &beta_chain.url(), 50).await;
    let beta = app.trigger_backfill("beta", 0, 1_999).await;
    let alpha = app.trigger_backfill("alpha", 0, 1_999).await;
    app.wait_until_finished(&alpha, Duration::from_secs(120))
        .await;
    assert_eq!(blocks_of(&app, "alpha").await, 2_000);
    assert_eq!(
        blocks_of(&app, "beta").await,
        0,
        "a worker for alpha only never indexes beta"
    );
    let (code, workers) = app.get("/v1/workers").await;
    assert_eq!(code, reqwest::StatusCode::OK, "{workers}");
    assert_eq!(workers[0]["chains"], json!(["alpha"]), "{workers}");
    assert_eq!(fleet(&app, "alpha").await["running"], json!(1));
    assert_eq!(
        fleet(&app, "beta").await["running"],
        json!(0),
        "nobody serves beta"
    );

    // A worker for every chain finishes beta, and serves gamma, registered after it started.
    let mut every_chain = Process::worker(&app.stores, 2, &[], "served-all").unwrap();
    app.wait_until_finished(&beta, Duration::from_secs(120))
        .await;
    assert_eq!(blocks_of(&app, "beta").await, 2_000);
    let gamma_chain = ServedDevnet::with_blocks(500).await;
    app.register_chain("gamma", &gamma_chain.url(), 50).await;
    let gamma = app.trigger_backfill("gamma", 0, 499).await;
    app.wait_until_finished(&gamma, Duration::from_secs(120))
        .await;
    assert_eq!(blocks_of(&app, "gamma").await, 500);
    wait_until(
        "beta served by one worker",
        Duration::from_secs(20),
        async || {
            let fleet = fleet(&app, "beta").await;
            if fleet["running"] == json!(1) {
                Ok(())
            } else {
                Err(fleet)
            }
        },
    )
    .await;
    assert!(alpha_only.terminate(Duration::from_secs(20)).await);
    assert!(every_chain.terminate(Duration::from_secs(20)).await);
    app.teardown().await;
}

#[tokio::test]
async fn a_bad_chain_name_is_refused_before_the_worker_starts() {
    let binaries = binaries().unwrap();
    let output = tokio::process::Command::new(&binaries.worker)
        .args(["--chains", "alpha,Not A Chain"])
        .env("DATABASE_URL", "postgres://127.0.0.1:1/unused")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--chains") && stderr.contains("Not A Chain"),
        "{stderr}"
    );
}
