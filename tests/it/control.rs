//! Backfill control (issue 12): pause, resume, cancel and priority, with a real orchestrator and
//! workers against a devnet slowed by injected latency (so a backfill lasts long enough to be
//! steered mid-way).

use std::{sync::Arc, time::Duration};

use blockfill_activities::{BlockRange, Lane};
use blockfill_devnet::{
    DevnetChain, DevnetConfig, FaultInjector, FaultProfile, spawn_devnet_with_faults,
};
use blockfill_tests::{
    app::{TestApp, batch_queue, spawn_app, test_scheduler},
    wait::wait_until,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const CHAIN: &str = "ctl";

/// A devnet of `blocks` blocks answering every request after `latency`; stopped when dropped.
struct SlowDevnet {
    url: String,
    stop: CancellationToken,
}

impl Drop for SlowDevnet {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn slow_devnet(blocks: u64, latency: Duration) -> SlowDevnet {
    let chain = Arc::new(DevnetChain::new(DevnetConfig {
        blocks,
        ..DevnetConfig::default()
    }));
    let injector = FaultInjector::new(FaultProfile {
        latency,
        ..FaultProfile::default()
    })
    .unwrap();
    let stop = CancellationToken::new();
    let addr = spawn_devnet_with_faults(
        chain,
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        injector,
        stop.clone(),
    )
    .await
    .unwrap();
    SlowDevnet {
        url: format!("http://{addr}"),
        stop,
    }
}

/// An app with one chain on a slow devnet and a worker of 4.
async fn setup(blocks: u64) -> (TestApp, SlowDevnet) {
    let devnet = slow_devnet(blocks, Duration::from_millis(20)).await;
    let mut app = spawn_app(test_scheduler()).await;
    app.register_chain(CHAIN, &devnet.url, 10).await;
    app.spawn_inprocess_worker(4);
    (app, devnet)
}

async fn backfill(app: &TestApp, id: &str) -> Value {
    let (status, view) = app.get(&format!("/v1/backfills/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    view
}

async fn control(app: &TestApp, id: &str, action: &str) -> (StatusCode, Value) {
    app.post(&format!("/v1/backfills/{id}/{action}"), Value::Null)
        .await
}

async fn wait_blocks_done(app: &TestApp, id: &str, at_least: i64) {
    wait_until(
        &format!("backfill {id} to write {at_least} blocks"),
        Duration::from_secs(60),
        async || {
            let view = backfill(app, id).await;
            if view["blocks_done"].as_i64() >= Some(at_least) {
                Ok(())
            } else {
                Err(view)
            }
        },
    )
    .await;
}

async fn count_batches(app: &TestApp, id: &str, statuses: &str) -> i64 {
    app.count(&format!(
        "SELECT count(*) FROM batches WHERE backfill_id = '{id}' AND status IN ({statuses})"
    ))
    .await
}

/// Waits until no batch of backfill `id` is queued or running and the chain's Redis queue holds
/// nothing.
async fn wait_quiet(app: &TestApp, id: &str) {
    let queue = batch_queue(&app.stores, Lane::Backfill, CHAIN).await;
    wait_until(
        "no batch of the backfill queued or running, and its queue empty",
        Duration::from_secs(15),
        async || {
            let busy = count_batches(app, id, "'queued', 'running'").await;
            let pending = queue.depth().await.unwrap().pending();
            if busy == 0 && pending == 0 {
                Ok(())
            } else {
                Err(format!("{busy} queued or running, {pending} in Redis"))
            }
        },
    )
    .await;
}

async fn indexed_blocks(app: &TestApp) -> i64 {
    app.count(&format!(
        "SELECT count(*) FROM blocks WHERE chain = '{CHAIN}'"
    ))
    .await
}

/// Waits out a short quiet period and checks nothing more was written meanwhile (a negative
/// check: there is nothing to poll for).
async fn assert_blocks_stay(app: &TestApp, blocks: i64) {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(indexed_blocks(app).await, blocks, "blocks kept growing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pause_withdraws_queued_batches_and_resume_completes_every_block_once() {
    const BLOCKS: u64 = 4_000;
    let (app, devnet) = setup(BLOCKS).await;
    let id = app.trigger_backfill(CHAIN, 0, BLOCKS - 1).await;
    wait_blocks_done(&app, &id, 300).await;

    let (status, paused) = control(&app, &id, "pause").await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    assert_eq!(paused["status"], "paused");
    assert!(paused["paused_at"].is_string(), "{paused}");
    assert_eq!(paused["priority"], 0);
    wait_quiet(&app, &id).await;
    let blocks = indexed_blocks(&app).await;
    assert!(blocks < BLOCKS as i64, "it finished before the pause took");
    assert_blocks_stay(&app, blocks).await;
    let view = backfill(&app, &id).await;
    assert_eq!(view["status"], "paused");
    assert!(view["batches"]["planned"].as_i64() > Some(0), "{view}");
    let (_, status) = app.get(&format!("/v1/chains/{CHAIN}/status")).await;
    assert_eq!(status["work"]["paused_backfills"], 1, "{status}");
    // The batch answers show withdrawn batches as planned.
    let (_, planned) = app
        .get(&format!("/v1/batches?backfill={id}&status=planned&limit=5"))
        .await;
    assert_eq!(planned.as_array().map(Vec::len), Some(5), "{planned}");

    // Pausing again changes nothing.
    let (status, again) = control(&app, &id, "pause").await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["paused_at"], paused["paused_at"]);

    let (status, resumed) = control(&app, &id, "resume").await;
    assert_eq!(status, StatusCode::OK, "{resumed}");
    assert_eq!(resumed["status"], "running");
    assert!(resumed["paused_at"].is_null(), "{resumed}");
    let done = app.wait_until_finished(&id, Duration::from_secs(120)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(indexed_blocks(&app).await, BLOCKS as i64);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM (SELECT number FROM blocks WHERE chain = '{CHAIN}' \
             GROUP BY number HAVING count(*) > 1) d"
        ))
        .await,
        0
    );
    app.assert_verified(&devnet.url, CHAIN, BlockRange::new(0, BLOCKS - 1).unwrap())
        .await;
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_ends_the_backfill_and_nothing_of_it_runs_again() {
    const BLOCKS: u64 = 4_000;
    let (app, _devnet) = setup(BLOCKS).await;
    let id = app.trigger_backfill(CHAIN, 0, BLOCKS - 1).await;
    wait_blocks_done(&app, &id, 300).await;

    let (status, cancelled) = control(&app, &id, "cancel").await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert!(cancelled["cancelled_at"].is_string(), "{cancelled}");
    wait_quiet(&app, &id).await;
    let blocks = indexed_blocks(&app).await;
    assert_blocks_stay(&app, blocks).await;
    // Every batch it planned is done (written, also those running at the cancel) or cancelled.
    assert_eq!(
        count_batches(&app, &id, "'planned', 'queued', 'running'").await,
        0
    );
    assert!(count_batches(&app, &id, "'cancelled'").await > 0);
    let view = backfill(&app, &id).await;
    assert_eq!(view["status"], "cancelled");
    assert!(view["batches"]["cancelled"].as_i64() > Some(0), "{view}");
    let (_, listed) = app
        .get(&format!(
            "/v1/batches?backfill={id}&status=cancelled&limit=1"
        ))
        .await;
    assert_eq!(listed[0]["status"], "cancelled", "{listed}");

    // Cancelling again is a no-op; nothing brings it back.
    assert_eq!(control(&app, &id, "cancel").await.0, StatusCode::OK);
    assert_eq!(control(&app, &id, "resume").await.0, StatusCode::CONFLICT);
    assert_eq!(control(&app, &id, "pause").await.0, StatusCode::CONFLICT);
    assert_eq!(
        app.patch(&format!("/v1/backfills/{id}"), json!({"priority": 5}))
            .await
            .0,
        StatusCode::CONFLICT
    );
    assert_blocks_stay(&app, blocks).await;
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pause_survives_an_orchestrator_restart() {
    const BLOCKS: u64 = 3_000;
    let (mut app, devnet) = setup(BLOCKS).await;
    let id = app.trigger_backfill(CHAIN, 0, BLOCKS - 1).await;
    wait_blocks_done(&app, &id, 200).await;
    assert_eq!(control(&app, &id, "pause").await.0, StatusCode::OK);
    wait_quiet(&app, &id).await;

    app.restart_orchestrator(test_scheduler()).await;
    // The new leader's recovery and a few reconciler passes (every 2 s, 5 s grace) must leave
    // it paused.
    let blocks = indexed_blocks(&app).await;
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(backfill(&app, &id).await["status"], "paused");
    assert_eq!(count_batches(&app, &id, "'queued', 'running'").await, 0);
    assert_eq!(indexed_blocks(&app).await, blocks, "it resumed by itself");

    assert_eq!(control(&app, &id, "resume").await.0, StatusCode::OK);
    let done = app.wait_until_finished(&id, Duration::from_secs(120)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(indexed_blocks(&app).await, BLOCKS as i64);
    app.assert_verified(&devnet.url, CHAIN, BlockRange::new(0, BLOCKS - 1).unwrap())
        .await;
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_urgent_backfill_runs_before_a_bulk_one() {
    const BULK: u64 = 8_000;
    const URGENT: u64 = 600;
    let (app, _devnet) = setup(BULK + URGENT).await;
    let bulk = app.trigger_backfill(CHAIN, 0, BULK - 1).await;
    wait_blocks_done(&app, &bulk, 200).await;
    let (status, created) = app
        .post(
            "/v1/backfills",
            json!({"chain": CHAIN, "from": BULK, "to": BULK + URGENT - 1, "priority": 50}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let urgent = created["id"].as_str().unwrap().to_owned();
    assert_eq!(backfill(&app, &urgent).await["priority"], 50);
    let done = app
        .wait_until_finished(&urgent, Duration::from_secs(120))
        .await;
    assert_eq!(done["status"], "completed", "{done}");

    // Until the urgent one's last batch was queued, the bulk one queued (almost) nothing new:
    // the jobs already in the queue ran, and then the urgent one's took every slot that freed.
    // (Once all of the urgent one's batches are queued, the bulk one fills the room left.)
    let bulk_queued_meanwhile = app
        .count(&format!(
            "SELECT count(*) FROM batches WHERE backfill_id = '{bulk}' \
               AND queued_at > (SELECT requested_at FROM backfills WHERE id = '{urgent}') \
               AND queued_at < (SELECT max(queued_at) FROM batches WHERE backfill_id = '{urgent}')"
        ))
        .await;
    assert!(
        bulk_queued_meanwhile <= 8,
        "the bulk backfill queued {bulk_queued_meanwhile} batches before the urgent one's were"
    );
    let bulk_view = backfill(&app, &bulk).await;
    assert!(
        bulk_view["blocks_done"].as_i64().unwrap() < BULK as i64 / 2,
        "the bulk backfill was mostly done: {bulk_view}"
    );
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn control_answers_404_409_and_422() {
    let (app, _devnet) = setup(2_000).await;
    let unknown = "0190d4a2-0000-7000-8000-000000000000";
    for action in ["pause", "resume", "cancel"] {
        assert_eq!(
            control(&app, unknown, action).await.0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            control(&app, "not-a-uuid", action).await.0,
            StatusCode::BAD_REQUEST
        );
    }
    assert_eq!(
        app.patch(&format!("/v1/backfills/{unknown}"), json!({"priority": 1}))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    // Priority out of range: named in the 422's fields.
    let (status, body) = app
        .post(
            "/v1/backfills",
            json!({"chain": CHAIN, "from": 0, "to": 99, "priority": 101}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["fields"]["priority"].is_string(), "{body}");

    let id = app.trigger_backfill(CHAIN, 0, 99).await;
    let (status, body) = app
        .patch(&format!("/v1/backfills/{id}"), json!({"priority": -101}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["fields"]["priority"].is_string(), "{body}");
    let done = app.wait_until_finished(&id, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "completed");
    // A finished backfill cannot be paused, resumed or cancelled.
    for action in ["pause", "resume", "cancel"] {
        assert_eq!(
            control(&app, &id, action).await.0,
            StatusCode::CONFLICT,
            "{action}"
        );
    }

    // A running one: resume is a no-op; priority changes.
    let running = app.trigger_backfill(CHAIN, 100, 1_999).await;
    let (status, body) = control(&app, &running, "resume").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .patch(&format!("/v1/backfills/{running}"), json!({"priority": 7}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["priority"], 7);
    assert_eq!(backfill(&app, &running).await["priority"], 7);

    // The live lane's backfill cannot be paused or cancelled.
    app.patch(&format!("/v1/chains/{CHAIN}"), json!({"live_sync": true}))
        .await;
    let live = wait_until(
        "the live lane's backfill",
        Duration::from_secs(30),
        async || {
            let (_, all) = app.get(&format!("/v1/backfills?chain={CHAIN}")).await;
            all.as_array()
                .and_then(|all| all.iter().find(|b| b["mode"] == "live"))
                .and_then(|b| b["id"].as_str().map(str::to_owned))
                .ok_or(all)
        },
    )
    .await;
    for action in ["pause", "cancel"] {
        assert_eq!(
            control(&app, &live, action).await.0,
            StatusCode::CONFLICT,
            "{action}"
        );
    }
    app.teardown().await;
}
