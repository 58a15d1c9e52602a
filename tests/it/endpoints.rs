//! RPC that bends and does not break, against Anvil behind fault proxies: a pool of a dead, a
//! flaky (503s and 429s) and a slow endpoint completes a backfill that verifies against the node,
//! and the endpoints answer shows the dead endpoint's breaker open; an endpoint that rejects
//! JSON-RPC batches is served with single requests.

use std::time::{Duration, Instant};

use blockfill_activities::BlockRange;
use blockfill_devnet::faults::FaultProfile;
use blockfill_tests::{
    anvil::{Anvil, ChainSpec},
    app::{TestApp, spawn_app, test_scheduler},
    proxy::{FaultProxy, dead_endpoint},
};
use serde_json::{Value, json};

async fn assert_verified(app: &TestApp, anvil: &Anvil, chain: &str, range: BlockRange) {
    app.assert_verified(&anvil.url, chain, range).await;
}

/// Polls the endpoints answer until `done` holds for it.
async fn endpoints_until(app: &TestApp, chain: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = app.get(&format!("/v1/chains/{chain}/endpoints")).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{body}");
        if done(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "endpoints never got there: {body:#}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_a_flaky_and_a_slow_endpoint_still_complete_a_verified_backfill() {
    const BLOCKS: u64 = 5_000;
    let anvil = Anvil::start().await.expect("anvil");
    anvil
        .build_chain(ChainSpec {
            blocks: BLOCKS,
            tx_every: 5,
            txs_per_block: 2,
        })
        .await
        .expect("chain");
    let dead = dead_endpoint().await;
    // The flaky endpoint starts well: registration reads every endpoint directly (outside any
    // pool), so a fault injected then would be counted by the proxy and by no endpoint view.
    let flaky = FaultProxy::start(&anvil.url, FaultProfile::default())
        .await
        .expect("flaky proxy");
    let slow = FaultProxy::start(
        &anvil.url,
        FaultProfile {
            latency: Duration::from_millis(150),
            ..FaultProfile::default()
        },
    )
    .await
    .expect("slow proxy");

    let mut app = spawn_app(test_scheduler()).await;
    let chain = app
        .register(json!({
            "name": "bent",
            "rpc_urls": [dead, flaky.url, {"url": slow.url, "max_concurrency": 32}],
            "batch_size": 50,
            "live_sync": false,
        }))
        .await;
    assert_eq!(chain["rpc_urls"], json!([dead, flaky.url, slow.url]));
    assert_eq!(chain["endpoints"][2]["max_concurrency"], json!(32));
    flaky
        .injector
        .set(FaultProfile {
            error_rate: 0.20,
            rate_limit_rate: 0.10,
            retry_after_secs: 1,
            ..FaultProfile::default()
        })
        .expect("flaky profile");
    app.spawn_inprocess_worker(4);
    app.spawn_inprocess_worker(4);
    let started = Instant::now();
    let id = app.trigger_backfill("bent", 0, BLOCKS - 1).await;
    let view = app.wait_until_finished(&id, Duration::from_secs(180)).await;
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(view["status"], json!("completed"), "{view:#}");
    assert_eq!(
        app.count("SELECT count(*) FROM blocks WHERE chain = 'bent'")
            .await,
        BLOCKS as i64
    );
    assert_verified(
        &app,
        &anvil,
        "bent",
        BlockRange::new(0, BLOCKS - 1).expect("range"),
    )
    .await;

    // Each process publishes its view of the endpoints once a second: wait for the last of it.
    let endpoints = endpoints_until(&app, "bent", |body| {
        let flaky_errors = &body["endpoints"][1]["errors"];
        body["endpoints"][0]["breaker"] == json!("open")
            && flaky_errors["http"].as_u64().unwrap_or(0) > 0
            && flaky_errors["rate_limited"].as_u64().unwrap_or(0) > 0
    })
    .await;
    let [dead_view, flaky_view, slow_view] = [0, 1, 2].map(|i| &endpoints["endpoints"][i]);
    println!(
        "backfill of {BLOCKS} blocks through a dead, a flaky and a slow endpoint: {seconds:.1}s; \
         requests dead {} flaky {} slow {}; flaky errors {}; slow p50 {} ms",
        dead_view["requests"],
        flaky_view["requests"],
        slow_view["requests"],
        flaky_view["errors"],
        slow_view["latency_p50_ms"]
    );
    assert_eq!(dead_view["url"], json!(dead));
    assert!(
        dead_view["errors"]["transport"].as_u64().unwrap_or(0) >= 1,
        "{dead_view:#}"
    );
    assert_eq!(dead_view["successes"], json!(0));
    assert!(
        dead_view["transitions"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["to"] == json!("open"))),
        "{dead_view:#}"
    );
    let injected = flaky.injector.injected();
    assert!(
        injected.errors > 0 && injected.rate_limited > 0,
        "{injected:?}"
    );
    assert!(
        flaky_view["errors"]["http"].as_u64().unwrap_or(0) > 0,
        "{flaky_view:#}"
    );
    assert!(
        flaky_view["errors"]["rate_limited"].as_u64().unwrap_or(0) > 0,
        "{flaky_view:#}"
    );
    assert!(
        flaky_view["successes"].as_u64().unwrap_or(0) > 0,
        "{flaky_view:#}"
    );
    assert!(
        slow_view["latency_p50_ms"].as_f64().unwrap_or(0.0) >= 150.0,
        "{slow_view:#}"
    );
    assert!(
        slow_view["reporters"].as_u64().unwrap_or(0) >= 2,
        "both workers report: {slow_view:#}"
    );
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_rejects_batches_is_served_with_single_requests() {
    const BLOCKS: u64 = 400;
    let anvil = Anvil::start().await.expect("anvil");
    anvil
        .build_chain(ChainSpec {
            blocks: BLOCKS,
            tx_every: 4,
            txs_per_block: 1,
        })
        .await
        .expect("chain");
    let unbatched = FaultProxy::start(
        &anvil.url,
        FaultProfile {
            reject_batches: true,
            ..FaultProfile::default()
        },
    )
    .await
    .expect("proxy");
    let mut app = spawn_app(test_scheduler()).await;
    app.register_chain("single", &unbatched.url, 50).await;
    app.spawn_inprocess_worker(2);
    let id = app.trigger_backfill("single", 0, BLOCKS - 1).await;
    let view = app.wait_until_finished(&id, Duration::from_secs(120)).await;
    assert_eq!(view["status"], json!("completed"), "{view:#}");
    assert_verified(
        &app,
        &anvil,
        "single",
        BlockRange::new(0, BLOCKS - 1).expect("range"),
    )
    .await;
    assert!(unbatched.injector.injected().batches_rejected >= 1);
    let endpoints = endpoints_until(&app, "single", |body| {
        body["endpoints"][0]["batches_accepted"] == json!(false)
    })
    .await;
    assert_eq!(endpoints["endpoints"][0]["breaker"], json!("closed"));
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_answers_are_never_written_and_are_asked_of_another_endpoint() {
    const BLOCKS: u64 = 3_000;
    let anvil = Anvil::start().await.expect("anvil");
    anvil
        .build_chain(ChainSpec {
            blocks: BLOCKS,
            tx_every: 3,
            txs_per_block: 2,
        })
        .await
        .expect("chain");
    // Wrong block numbers, missing hashes, broken parent links and cut-off bodies.
    let liar = FaultProxy::start(
        &anvil.url,
        FaultProfile {
            malform_rate: 0.3,
            ..FaultProfile::default()
        },
    )
    .await
    .expect("corrupting proxy");
    let honest = FaultProxy::start(&anvil.url, FaultProfile::default())
        .await
        .expect("proxy");
    let mut app = spawn_app(test_scheduler()).await;
    app.register(json!({
        "name": "lies",
        "rpc_urls": [liar.url, honest.url],
        "batch_size": 25,
        "live_sync": false,
    }))
    .await;
    app.spawn_inprocess_worker(4);
    let id = app.trigger_backfill("lies", 0, BLOCKS - 1).await;
    let view = app.wait_until_finished(&id, Duration::from_secs(120)).await;
    assert_eq!(view["status"], json!("completed"), "{view:#}");
    assert_eq!(
        view["quarantined_blocks"].as_u64().unwrap_or(0),
        0,
        "{view:#}"
    );
    assert!(
        liar.injector.injected().malformed > 0,
        "{:?}",
        liar.injector.injected()
    );
    assert_verified(
        &app,
        &anvil,
        "lies",
        BlockRange::new(0, BLOCKS - 1).expect("range"),
    )
    .await;
    assert_eq!(
        app.count("SELECT count(*) FROM reorgs WHERE chain = 'lies'")
            .await,
        0,
        "a corrupted answer passed for a reorg"
    );
    // Bad answers count against the endpoint: malformed ones, and cut-off bodies as transport
    // errors.
    let endpoints = endpoints_until(&app, "lies", |body| {
        let errors = &body["endpoints"][0]["errors"];
        errors["malformed"].as_u64().unwrap_or(0) + errors["transport"].as_u64().unwrap_or(0) > 0
    })
    .await;
    println!(
        "corrupting endpoint: {} malformed answers injected; errors seen {}",
        liar.injector.injected().malformed,
        endpoints["endpoints"][0]["errors"]
    );
    app.teardown().await;
}
