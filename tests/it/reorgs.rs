//! Reorgs against a real node (Anvil): depth 1 and 5 at the tip found by the seam check, and a
//! reorg deeper than the confirmation depth found by a write whose first block does not link to
//! the stored block below it. Each time the rows above the common ancestor are unwound and
//! re-indexed, `verify` passes against the node's canonical chain, and the API reports the reorg.

use std::time::{Duration, Instant};

use blockfill_activities::BlockRange;
use blockfill_tests::{
    anvil::{Anvil, ChainSpec},
    app::{TestApp, spawn_app, test_scheduler},
};
use serde_json::json;

async fn assert_verified(app: &TestApp, anvil: &Anvil, chain: &str, to: u64) {
    app.assert_verified(&anvil.url, chain, BlockRange::new(0, to).unwrap())
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tip_reorgs_of_depth_1_and_5_are_found_unwound_and_reindexed() {
    let anvil = Anvil::start_with_args(&["--prune-history", "64"])
        .await
        .unwrap();
    anvil
        .build_chain(ChainSpec {
            blocks: 300,
            tx_every: 3,
            txs_per_block: 2,
        })
        .await
        .unwrap();
    let mut app = spawn_app(test_scheduler()).await;
    app.register_chain("tip", &anvil.url, 50).await;
    app.spawn_inprocess_worker(4);
    let head = anvil.block_number().await.unwrap();
    let id = app.trigger_backfill("tip", 0, head).await;
    assert_eq!(
        app.wait_until_finished(&id, Duration::from_secs(60)).await["status"],
        "completed"
    );
    assert_verified(&app, &anvil, "tip", head).await;

    for (round, depth) in [(1, 1u64), (2, 5)] {
        let stored_top = app
            .count("SELECT MAX(number) FROM blocks WHERE chain = 'tip'")
            .await as u64;
        let outcome = anvil.reorg(depth).await.unwrap();
        let status = app.wait_for_reorgs_repaired("tip", round).await;
        let last = &status["live"]["last_reorg"];
        assert_eq!(last["detected_by"], json!("seam"), "{status}");
        assert_eq!(
            last["common_ancestor"],
            json!(outcome.fork_point),
            "{status}"
        );
        assert_eq!(
            last["depth"],
            json!(stored_top - outcome.fork_point),
            "{status}"
        );
        let replaced = last["old_hashes"].as_array().unwrap();
        assert_eq!(
            replaced[0]["hash"],
            json!(outcome.old_hashes[0]),
            "the first replaced block is recorded"
        );
        assert_eq!(last["new_hashes"][0]["hash"], json!(outcome.new_hashes[0]));
        assert_verified(&app, &anvil, "tip", stored_top).await;
    }
    let (_, reorgs) = app.get("/v1/chains/tip/reorgs").await;
    assert_eq!(reorgs.as_array().unwrap().len(), 2, "{reorgs}");
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_deeper_than_the_confirmation_depth_is_found_by_the_next_write() {
    let anvil = Anvil::start().await.unwrap();
    anvil
        .build_chain(ChainSpec {
            blocks: 200,
            tx_every: 4,
            txs_per_block: 1,
        })
        .await
        .unwrap();
    let fork_point = anvil.block_number().await.unwrap();
    let snapshot = anvil.snapshot().await.unwrap();
    anvil
        .build_chain(ChainSpec {
            blocks: 100,
            tx_every: 4,
            txs_per_block: 1,
        })
        .await
        .unwrap();
    // The seam check is off here, so only the write path can notice the reorg.
    let mut scheduler = test_scheduler();
    scheduler.seam_check_interval = Duration::from_secs(3_600);
    let mut app = spawn_app(scheduler).await;
    let (status, chain) = app
        .post(
            "/v1/chains",
            json!({"name": "deep", "rpc_urls": [anvil.url], "batch_size": 25, "confirmations": 3, "live_sync": false}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{chain}");
    app.spawn_inprocess_worker(4);
    let indexed_to = fork_point + 40;
    let id = app.trigger_backfill("deep", 0, indexed_to).await;
    assert_eq!(
        app.wait_until_finished(&id, Duration::from_secs(60)).await["status"],
        "completed"
    );

    // 40 indexed blocks (more than the 3 confirmations) are replaced by a longer branch.
    let outcome = anvil.reorg_from_snapshot(&snapshot, 120).await.unwrap();
    assert_eq!(outcome.fork_point, fork_point);
    let new_head = anvil.block_number().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.get("/v1/chains/deep").await.1["head"] != json!(new_head) {
        assert!(
            Instant::now() < deadline,
            "head tracker never saw the new head"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let id = app
        .trigger_backfill("deep", indexed_to + 1, new_head - 3)
        .await;
    let view = app.wait_until_finished(&id, Duration::from_secs(60)).await;
    assert_eq!(view["status"], "completed", "{view}");
    let (_, status) = app.get("/v1/chains/deep/status").await;
    assert_eq!(status["live"]["reorgs_seen"], json!(1), "{status}");
    let last = &status["live"]["last_reorg"];
    assert_eq!(last["detected_by"], json!("write"), "{status}");
    assert_eq!(last["common_ancestor"], json!(fork_point));
    // 40 indexed blocks were replaced; blocks of the new branch written meanwhile may be unwound
    // and re-indexed with them.
    assert!(last["depth"].as_i64().unwrap() >= 40, "{status}");
    assert_eq!(
        status["historical"]["missing_blocks_count"],
        json!(0),
        "{status}"
    );
    assert_verified(&app, &anvil, "deep", new_head - 3).await;
    app.teardown().await;
}
