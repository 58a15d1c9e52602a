//! Chain identity against real nodes (Anvil): registration reads every endpoint's chain id and
//! genesis and stores the genesis; and a chain's endpoint that starts serving another network (a
//! provider URL re-pointed, here a proxy whose upstream changes) is marked `wrong_chain` and never
//! trusted: the stored chain is neither unwound nor replaced by the other network's blocks.

use std::time::{Duration, Instant};

use blockfill_activities::{BlockRange, ChainName, EvmRpcSource, source::RpcSettings};
use blockfill_devnet::faults::FaultProfile;
use blockfill_orchestrator::verify::verify_range;
use blockfill_tests::{
    anvil::{Anvil, ChainSpec, GENESIS_TIMESTAMP},
    app::{TestApp, spawn_app, test_scheduler},
    proxy::FaultProxy,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn assert_verified(app: &TestApp, anvil: &Anvil, chain: &str, to: u64) {
    app.assert_verified(&anvil.url, chain, BlockRange::new(0, to).unwrap())
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_stores_the_genesis_and_refuses_endpoints_that_disagree_on_it() {
    let node = Anvil::start().await.expect("anvil");
    let same_node = FaultProxy::start(&node.url, FaultProfile::default())
        .await
        .expect("proxy");
    // Same chain id (31337), another genesis block.
    let other_genesis = GENESIS_TIMESTAMP + 60;
    let fork = Anvil::start_with_args(&["--timestamp", &other_genesis.to_string()])
        .await
        .expect("anvil with another genesis");
    let genesis = node.block_hashes(0, 0).await.expect("block 0").remove(0);
    assert_ne!(
        fork.block_hashes(0, 0).await.expect("block 0")[0],
        genesis,
        "the harness gives both nodes the same genesis"
    );

    let app = spawn_app(test_scheduler()).await;
    let (status, answer) = app
        .post(
            "/v1/chains",
            json!({"name": "forked", "rpc_urls": [node.url, fork.url], "live_sync": false}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let error = answer["error"].as_str().unwrap_or("");
    assert!(
        error.contains("genesis") && error.contains(&genesis),
        "{answer}"
    );

    let chain = app
        .register(
            json!({"name": "ident", "rpc_urls": [node.url, same_node.url], "live_sync": false}),
        )
        .await;
    assert_eq!(chain["chain_id"], json!(31_337), "{chain}");
    assert_eq!(chain["genesis_hash"], json!(genesis), "{chain}");
    let (_, shown) = app.get("/v1/chains/ident").await;
    assert_eq!(shown["genesis_hash"], json!(genesis), "{shown}");
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_re_pointed_at_another_chain_is_marked_wrong_chain_and_never_trusted() {
    const BLOCKS: u64 = 3_000;
    let a = Anvil::start().await.expect("anvil A");
    a.build_chain(ChainSpec {
        blocks: BLOCKS,
        tx_every: 3,
        txs_per_block: 2,
    })
    .await
    .expect("chain A");
    // The chain's second provider: the same node for now.
    let provider = FaultProxy::start(&a.url, FaultProfile::default())
        .await
        .expect("proxy");
    let mut app = spawn_app(test_scheduler()).await;
    app.register(json!({
        "name": "ident",
        "rpc_urls": [a.url, provider.url],
        "batch_size": 100,
        "live_sync": true,
    }))
    .await;
    app.spawn_inprocess_worker(4);
    let head = a.block_number().await.expect("head");
    let id = app.trigger_backfill("ident", 0, head).await;
    let view = app.wait_until_finished(&id, Duration::from_secs(120)).await;
    assert_eq!(view["status"], json!("completed"), "{view:#}");
    assert_verified(&app, &a, "ident", head).await;
    let stored = app
        .count("SELECT count(*) FROM blocks WHERE chain = 'ident'")
        .await;
    assert_eq!(stored, head as i64 + 1);

    // Another network, longer than A and with transactions of its own, starts answering at the
    // provider's URL.
    let b = Anvil::start_with_args(&["--chain-id", "999"])
        .await
        .expect("anvil B");
    b.build_chain(ChainSpec {
        blocks: BLOCKS + 500,
        tx_every: 2,
        txs_per_block: 1,
    })
    .await
    .expect("chain B");
    provider.set_upstream(&b.url);

    // About ten seconds of head polls (every 500 ms) and seam checks (every second). Every kind
    // of harm is noted the first time it is seen, and all of them are reported together.
    let watch_until = Instant::now() + Duration::from_secs(10);
    let mut harm: Vec<String> = Vec::new();
    let mut note = |kind: &str, what: String| {
        if !harm.iter().any(|h| h.starts_with(kind)) {
            harm.push(format!("{kind}: {what}"));
        }
    };
    let mut flagged: Option<Value> = None;
    let mut last_seen = Value::Null;
    while Instant::now() < watch_until {
        let (_, chain) = app.get("/v1/chains/ident").await;
        if chain["head"].as_u64() > Some(head) {
            note(
                "head",
                format!(
                    "the head tracker took {} (A's head is {head})",
                    chain["head"]
                ),
            );
        }
        let reorgs = app
            .count("SELECT count(*) FROM reorgs WHERE chain = 'ident'")
            .await;
        if reorgs > 0 {
            let (_, recorded) = app.get("/v1/chains/ident/reorgs").await;
            note(
                "reorgs",
                format!("{reorgs} recorded, the first: {}", recorded[0]),
            );
        }
        let count = app
            .count("SELECT count(*) FROM blocks WHERE chain = 'ident'")
            .await;
        if count < stored {
            note("unwound", format!("{count} of {stored} blocks left"));
        }
        let top = app
            .count("SELECT COALESCE(MAX(number), -1) FROM blocks WHERE chain = 'ident'")
            .await;
        if top > head as i64 {
            note(
                "foreign",
                format!("block {top} written above A's head {head}"),
            );
        }
        let (status, endpoints) = app.get("/v1/chains/ident/endpoints").await;
        assert_eq!(status, StatusCode::OK, "{endpoints}");
        if flagged.is_none() && endpoints["endpoints"][1]["identity"] == json!("wrong_chain") {
            flagged = Some(endpoints.clone());
        }
        last_seen = endpoints;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let source = EvmRpcSource::new(&a.url, RpcSettings::default()).expect("source");
    let report = verify_range(
        &app.pool,
        &ChainName::parse("ident").expect("name"),
        &source,
        BlockRange::new(0, head).expect("range"),
        500,
    )
    .await
    .expect("verify");
    if !report.is_clean() {
        note(
            "replaced",
            format!(
                "{} differences from A, the first: {}",
                report.mismatch_count,
                report.mismatches.first().map_or("", String::as_str)
            ),
        );
    }
    assert!(
        harm.is_empty(),
        "the other network was trusted:\n{}",
        harm.join("\n")
    );
    assert_eq!(
        app.count("SELECT count(*) FROM blocks WHERE chain = 'ident'")
            .await,
        stored
    );

    let endpoints = flagged
        .unwrap_or_else(|| panic!("the re-pointed endpoint was never flagged: {last_seen:#}"));
    let [honest, repointed] = [0, 1].map(|i| &endpoints["endpoints"][i]);
    assert_eq!(repointed["url"], json!(provider.url), "{endpoints:#}");
    let detail = repointed["identity_detail"].as_str().unwrap_or("");
    assert!(
        detail.contains("999") && detail.contains("31337"),
        "{repointed:#}"
    );
    assert_eq!(honest["identity"], json!("verified"), "{honest:#}");
    app.teardown().await;
}
