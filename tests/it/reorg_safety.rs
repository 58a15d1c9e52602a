//! Reorgs when the world misbehaves, against Anvil: a reorg deeper than the chain's limit halts
//! live sync for an operator instead of unwinding; an unwind commits together with the batches
//! that re-index it, so a crash right after it leaves planned work, never a gap; blocks a node
//! does not have (yet) are never a reorg.

use std::time::{Duration, Instant};

use blockfill_activities::{
    BlockRange, ChainName, EvmRpcSource,
    reorg::{RepairRequest, repair_reorg},
    source::RpcSettings,
};
use blockfill_tests::{
    anvil::{Anvil, ChainSpec},
    app::{TestApp, spawn_app, test_scheduler},
};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn stored_hashes(app: &TestApp, chain: &str) -> Vec<(i64, String)> {
    sea_orm::sqlx::query_as("SELECT number, hash FROM blocks WHERE chain = $1 ORDER BY number")
        .bind(chain)
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

async fn assert_verified(app: &TestApp, anvil: &Anvil, chain: &str, to: u64) {
    app.assert_verified(&anvil.url, chain, BlockRange::new(0, to).unwrap())
        .await;
}

async fn wait_for<F: AsyncFn() -> Option<Value>>(what: &str, timeout: Duration, check: F) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "{what} within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn backfill_to_head(app: &TestApp, anvil: &Anvil, chain: &str) -> u64 {
    let head = anvil.block_number().await.unwrap();
    let id = app.trigger_backfill(chain, 0, head).await;
    let view = app.wait_until_finished(&id, Duration::from_secs(60)).await;
    assert_eq!(view["status"], "completed", "{view}");
    head
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_deeper_than_the_limit_halts_live_sync_until_an_operator_acts() {
    let anvil = Anvil::start().await.unwrap();
    anvil
        .build_chain(ChainSpec {
            blocks: 150,
            tx_every: 5,
            txs_per_block: 1,
        })
        .await
        .unwrap();
    let snapshot = anvil.snapshot().await.unwrap();
    anvil
        .build_chain(ChainSpec {
            blocks: 50,
            tx_every: 5,
            txs_per_block: 1,
        })
        .await
        .unwrap();
    let mut app = spawn_app(test_scheduler()).await;
    app.register(json!({
        "name": "deep", "rpc_urls": [anvil.url], "batch_size": 25, "live_sync": true,
        "max_reorg_depth": 10,
    }))
    .await;
    app.spawn_inprocess_worker(4);
    let head = backfill_to_head(&app, &anvil, "deep").await;
    let before = stored_hashes(&app, "deep").await;

    // A 50-block reorg (the node re-pointed at another fork, say): five times the limit.
    let outcome = anvil.reorg_from_snapshot(&snapshot, 60).await.unwrap();
    assert!(head - outcome.fork_point > 10);
    let status = wait_for("live sync halted", Duration::from_secs(30), async || {
        let (_, status) = app.get("/v1/chains/deep/status").await;
        (status["live"]["halted"] == json!(true)).then_some(status)
    })
    .await;
    let reason = status["live"]["halted_reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("max_reorg_depth") && reason.contains("10"),
        "the reason names the limit: {status}"
    );
    let after = stored_hashes(&app, "deep").await;
    assert!(
        after.len() >= before.len() && after[..before.len()] == before[..],
        "nothing stored was unwound or replaced"
    );
    assert_eq!(app.count("SELECT count(*) FROM reorgs").await, 0);
    let (_, chain) = app.get("/v1/chains/deep").await;
    assert_eq!(chain["live_halted"], json!(true), "{chain}");

    // The operator looks, decides the node is right, raises the limit and resumes.
    let (code, body) = app
        .post(
            "/v1/chains/deep/live/resume",
            json!({"max_reorg_depth": 100}),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["live_halted"], json!(false), "{body}");
    assert_eq!(body["max_reorg_depth"], json!(100), "{body}");
    let status = app.wait_for_reorgs_repaired("deep", 1).await;
    assert_eq!(status["live"]["halted"], json!(false), "{status}");
    assert_verified(&app, &anvil, "deep", outcome.new_head - 1).await;
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwind_commits_together_with_the_batches_that_reindex_it() {
    let anvil = Anvil::start_with_args(&["--prune-history", "64"])
        .await
        .unwrap();
    anvil
        .build_chain(ChainSpec {
            blocks: 120,
            tx_every: 4,
            txs_per_block: 1,
        })
        .await
        .unwrap();
    let mut scheduler = test_scheduler();
    // Only this test repairs: the seam check would race it.
    scheduler.seam_check_interval = Duration::from_secs(3_600);
    let mut app = spawn_app(scheduler).await;
    app.register_chain("durable", &anvil.url, 10).await;
    app.spawn_inprocess_worker(4);
    let stored_top = backfill_to_head(&app, &anvil, "durable").await;
    let outcome = anvil.reorg(5).await.unwrap();

    // Repair as the seam check does, then "crash": nothing else of the caller runs.
    let source = EvmRpcSource::new(&anvil.url, RpcSettings::default()).unwrap();
    let chain = ChainName::parse("durable").unwrap();
    let repair = repair_reorg(
        &app.pool,
        &source,
        RepairRequest {
            chain: &chain,
            suspect: outcome.fork_point + 1,
            detected_by: "seam",
            reindex_to: None,
            term: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(repair.common_ancestor, Some(outcome.fork_point));
    // PostgreSQL alone must say the unwound blocks will be indexed again.
    let uncovered = app
        .count(&format!(
            "SELECT count(*) FROM generate_series({}, {stored_top}) AS n \
             WHERE NOT EXISTS (SELECT 1 FROM blocks WHERE chain = 'durable' AND number = n) \
               AND NOT EXISTS (SELECT 1 FROM batches b JOIN backfills f ON f.id = b.backfill_id \
                 WHERE b.chain = 'durable' AND n BETWEEN b.from_block AND b.to_block \
                   AND b.status IN ('planned', 'queued', 'running') \
                   AND f.status IN ('planned', 'running'))",
            outcome.fork_point + 1
        ))
        .await;
    assert_eq!(
        uncovered, 0,
        "every unwound block is stored or planned for re-indexing by an open backfill"
    );
    // ... and the orchestrator finishes that work without being told.
    wait_for("the re-index", Duration::from_secs(60), async || {
        let (_, backfills) = app.get("/v1/backfills?chain=durable").await;
        let all = backfills.as_array()?;
        (all.len() >= 2 && all.iter().all(|b| b["status"] == "completed")).then_some(backfills)
    })
    .await;
    assert_verified(&app, &anvil, "durable", stored_top).await;
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_the_node_does_not_have_yet_are_not_a_reorg() {
    // `anvil_rollback` needs the recent states.
    let anvil = Anvil::start_with_args(&["--prune-history", "64"])
        .await
        .unwrap();
    anvil
        .build_chain(ChainSpec {
            blocks: 300,
            tx_every: 10,
            txs_per_block: 1,
        })
        .await
        .unwrap();
    let mut app = spawn_app(test_scheduler()).await;
    app.register_chain("lagging", &anvil.url, 50).await;
    app.spawn_inprocess_worker(4);
    let head = backfill_to_head(&app, &anvil, "lagging").await;
    let before = stored_hashes(&app, "lagging").await;

    // The node no longer has the top 3 stored blocks (a node behind the one we indexed from).
    anvil.rpc("anvil_rollback", json!([3])).await.unwrap();
    assert_eq!(anvil.block_number().await.unwrap(), head - 3);
    // Several seam checks (every second in tests) pass over it.
    let watch_until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < watch_until {
        assert_eq!(app.count("SELECT count(*) FROM reorgs").await, 0);
        assert_eq!(
            stored_hashes(&app, "lagging").await,
            before,
            "blocks the node has not (yet) are not unwound"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Once the node serves other blocks at those heights, that is a reorg, and it is repaired.
    for _ in 0..4 {
        anvil.mine_with_transaction().await.unwrap();
    }
    app.wait_for_reorgs_repaired("lagging", 1).await;
    assert_verified(&app, &anvil, "lagging", head).await;
    app.teardown().await;
}
