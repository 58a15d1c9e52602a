//! Live sync ahead of backfill, against Anvil: new blocks mined while a backfill runs are indexed
//! within a couple of blocks of the head; a live-synced chain missing old blocks reads as live
//! synced with a historical gap; a reorg at the tip is caught by the next live write.

use std::time::{Duration, Instant};

use blockfill_activities::BlockRange;
use blockfill_tests::{
    anvil::{Anvil, ChainSpec},
    app::{TestApp, spawn_app, test_scheduler},
    wait::wait_until,
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

fn live_scheduler() -> blockfill_orchestrator::settings::SchedulerArgs {
    let mut scheduler = test_scheduler();
    scheduler.head_poll_interval = Duration::from_millis(200);
    scheduler
}

async fn status(app: &TestApp, chain: &str) -> Value {
    app.get(&format!("/v1/chains/{chain}/status")).await.1
}

async fn wait_live_synced(app: &TestApp, chain: &str) -> Value {
    wait_until(
        &format!("chain {chain} live-synced"),
        Duration::from_secs(30),
        async || {
            let status = status(app, chain).await;
            if status["live"]["is_live_sync"] == json!(true) {
                Ok(status)
            } else {
                Err(status)
            }
        },
    )
    .await
}

async fn assert_verified(app: &TestApp, anvil: &Anvil, chain: &str, range: BlockRange) {
    app.assert_verified(&anvil.url, chain, range).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_lag_stays_bounded_while_a_backfill_runs_behind_it() {
    let anvil = Anvil::start().await.unwrap();
    anvil
        .build_chain(ChainSpec {
            blocks: 20_000,
            tx_every: 10,
            txs_per_block: 2,
        })
        .await
        .unwrap();
    let mut app = spawn_app(live_scheduler()).await;
    app.register(json!({"name": "both", "rpc_urls": [anvil.url], "batch_size": 100}))
        .await;
    app.spawn_inprocess_worker(4);
    let first = wait_live_synced(&app, "both").await;
    let live_start = first["live"]["last_indexed"].as_u64().unwrap();

    // Mine a block (with a transaction) every 250 ms while the backfill runs: a chain that keeps
    // growing at a steady rate is the workload, the sleep below its pace.
    let mining = CancellationToken::new();
    let miner = {
        let (url, stop) = (anvil.url.clone(), mining.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut mined = 0u64;
            while !stop.is_cancelled() {
                let _ = client
                    .post(&url)
                    .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "evm_mine", "params": []}))
                    .send()
                    .await;
                mined += 1;
                // The workload's pace, not a wait for anything.
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            mined
        })
    };
    let id = app.trigger_backfill("both", 0, live_start - 1).await;
    let started = Instant::now();
    // The live lag is sampled at every check while waiting for the backfill to end.
    let mut lags = Vec::new();
    let view = wait_until(
        &format!("backfill {id} to end"),
        Duration::from_secs(120),
        async || {
            let status = status(&app, "both").await;
            lags.push(status["live"]["lag_blocks"].as_i64().unwrap_or(i64::MAX));
            let (_, view) = app.get(&format!("/v1/backfills/{id}")).await;
            if view["status"] != "running" && view["status"] != "planned" {
                Ok(view)
            } else {
                Err(view)
            }
        },
    )
    .await;
    mining.cancel();
    let mined = miner.await.unwrap();
    assert_eq!(view["status"], json!("completed"), "{view}");
    let end = wait_live_synced(&app, "both").await;
    let live_end = end["live"]["last_live_block"].as_u64().unwrap();
    lags.sort_unstable();
    let max_lag = *lags.last().unwrap();
    let p95 = lags[lags.len() * 95 / 100];
    println!(
        "live lag during a {live_start}-block backfill ({:.1}s, {mined} blocks mined): max {max_lag}, p95 {p95}, samples {}",
        started.elapsed().as_secs_f64(),
        lags.len()
    );
    assert!(
        live_end >= live_start + mined.saturating_sub(2),
        "the live lane fell behind: {live_end} after {mined} mined from {live_start}"
    );
    // Confirmation depth 0 + 2 blocks; one more for a head read between two polls of the tracker.
    assert!(max_lag <= 3, "live lag reached {max_lag} blocks ({lags:?})");
    assert_eq!(end["historical"]["missing_blocks_count"], json!(0), "{end}");
    assert_verified(&app, &anvil, "both", BlockRange::new(0, live_end).unwrap()).await;
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_synced_chain_missing_old_blocks_reads_live_synced_with_a_gap() {
    let anvil = Anvil::start().await.unwrap();
    anvil
        .build_chain(ChainSpec {
            blocks: 5_000,
            tx_every: 50,
            txs_per_block: 1,
        })
        .await
        .unwrap();
    let mut app = spawn_app(live_scheduler()).await;
    app.register(json!({"name": "tipped", "rpc_urls": [anvil.url], "batch_size": 100}))
        .await;
    app.spawn_inprocess_worker(2);
    anvil.mine(3).await.unwrap();
    let status = wait_live_synced(&app, "tipped").await;
    let live = &status["live"];
    let historical = &status["historical"];
    let first_live = status["coverage"][0]["start"].as_i64().unwrap();
    assert!(
        first_live >= 4_999,
        "live sync started at the tip, not at genesis: {status}"
    );
    assert_eq!(live["is_live_sync"], json!(true));
    assert!(live["lag_blocks"].as_i64().unwrap() <= 2);
    assert_eq!(live["live_sync_enabled"], json!(true));
    assert_eq!(historical["gap_ranges_count"], json!(1), "{status}");
    assert_eq!(historical["largest_gap_start"], json!(0));
    assert_eq!(historical["largest_gap_end"], json!(first_live - 1));
    assert_eq!(historical["oldest_gap_start"], json!(0));
    assert_eq!(historical["missing_blocks_count"], json!(first_live));
    assert!(
        historical["percent_complete"].as_f64().unwrap() < 1.0,
        "{status}"
    );
    let (_, backfills) = app.get("/v1/backfills?chain=tipped").await;
    assert_eq!(
        backfills[0]["mode"],
        json!("live"),
        "live batches belong to the chain's live backfill"
    );

    let (code, created) = app
        .post("/v1/backfills", json!({"chain": "tipped", "mode": "gaps"}))
        .await;
    assert_eq!(code, reqwest::StatusCode::ACCEPTED, "{created}");
    let view = app
        .wait_until_finished(created["id"].as_str().unwrap(), Duration::from_secs(60))
        .await;
    assert_eq!(view["status"], json!("completed"), "{view}");
    let after = status_after_gaps(&app).await;
    assert_eq!(
        after["historical"]["missing_blocks_count"],
        json!(0),
        "{after}"
    );
    assert_eq!(after["live"]["is_live_sync"], json!(true));
    app.teardown().await;
}

async fn status_after_gaps(app: &TestApp) -> Value {
    status(app, "tipped").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tip_reorg_is_caught_by_the_next_live_write_and_repaired() {
    let anvil = Anvil::start_with_args(&["--prune-history", "64"])
        .await
        .unwrap();
    anvil
        .build_chain(ChainSpec {
            blocks: 200,
            tx_every: 2,
            txs_per_block: 1,
        })
        .await
        .unwrap();
    let mut scheduler = live_scheduler();
    scheduler.seam_check_interval = Duration::from_secs(3_600);
    let mut app = spawn_app(scheduler).await;
    app.register(json!({"name": "fork", "rpc_urls": [anvil.url], "batch_size": 10}))
        .await;
    app.spawn_inprocess_worker(2);
    // Five blocks, each written by the live lane before the next is mined.
    for _ in 0..5 {
        anvil.mine_with_transaction().await.unwrap();
        let head = anvil.block_number().await.unwrap();
        wait_until(
            &format!("the live lane to write up to block {}", head - 1),
            Duration::from_secs(30),
            async || {
                let status = status(&app, "fork").await;
                // The live target stays one below the head.
                if status["live"]["head"].as_u64() >= Some(head)
                    && status["live"]["last_live_block"].as_u64() >= Some(head - 1)
                {
                    Ok(())
                } else {
                    Err(status)
                }
            },
        )
        .await;
    }
    wait_live_synced(&app, "fork").await;
    let outcome = anvil.reorg(3).await.unwrap();
    anvil.mine_with_transaction().await.unwrap();
    // The unwind plans the re-index as a backfill of its own, which the worker that found the
    // reorg runs before its own batch; meanwhile another live job may write the next tip (live
    // sync with a gap below it), so "repaired" is that backfill completed.
    app.wait_for_reorgs_repaired("fork", 1).await;
    let status = wait_live_synced(&app, "fork").await;
    assert_eq!(status["live"]["reorgs_seen"], json!(1), "{status}");
    // Live sync started at the head: one covered stretch from there, the re-indexed blocks in it.
    assert_eq!(
        status["coverage"].as_array().map(Vec::len),
        Some(1),
        "{status}"
    );
    let last = &status["live"]["last_reorg"];
    assert_eq!(last["detected_by"], json!("write"), "{status}");
    assert_eq!(last["common_ancestor"], json!(outcome.fork_point));
    let from = status["coverage"][0]["start"].as_u64().unwrap();
    let to = status["live"]["last_indexed"].as_u64().unwrap();
    assert_verified(&app, &anvil, "fork", BlockRange::new(from, to).unwrap()).await;
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_head_subscription_indexes_new_blocks_long_before_the_next_poll() {
    let anvil = Anvil::start().await.unwrap();
    anvil
        .build_chain(ChainSpec {
            blocks: 100,
            tx_every: 10,
            txs_per_block: 1,
        })
        .await
        .unwrap();
    let mut scheduler = live_scheduler();
    // Polling alone would take a minute to see a new head.
    scheduler.head_poll_interval = Duration::from_secs(60);
    let mut app = spawn_app(scheduler).await;
    app.register(json!({"name": "pushed", "rpc_urls": [anvil.url], "batch_size": 10}))
        .await;
    app.spawn_inprocess_worker(2);
    // The first poll (at start) sets the live cursor; the subscription says on /metrics when it
    // is connected.
    let first = wait_live_synced(&app, "pushed").await;
    let start = first["live"]["head"].as_u64().unwrap();
    wait_until(
        "the new-head subscription to connect",
        Duration::from_secs(30),
        async || {
            let metrics = app.metrics().await;
            let subscribed = metrics.lines().any(|l| {
                l.starts_with("blockfill_new_heads_subscribed{chain=\"pushed\"}")
                    && l.ends_with(" 1")
            });
            if subscribed {
                Ok(())
            } else {
                Err("no blockfill_new_heads_subscribed{chain=\"pushed\"} 1".to_owned())
            }
        },
    )
    .await;
    for _ in 0..3 {
        anvil.mine_with_transaction().await.unwrap();
    }
    let mined_at = Instant::now();
    let target = start + 3 - 1; // the live target stays one below the head
    let status = wait_until(
        &format!("block {target} written by the live lane (not waiting for the next poll)"),
        Duration::from_secs(10),
        async || {
            let status = status(&app, "pushed").await;
            if status["live"]["last_live_block"].as_u64() >= Some(target) {
                Ok(status)
            } else {
                Err(status)
            }
        },
    )
    .await;
    println!(
        "3 new blocks indexed {:.2}s after they were mined (poll interval 60s)",
        mined_at.elapsed().as_secs_f64()
    );
    assert_eq!(status["live"]["head"], json!(start + 3), "{status}");
    app.teardown().await;
}
