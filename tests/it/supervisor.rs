//! `blockfill serve --supervise-workers` against the devnet: with no backlog the chain runs its
//! minimum of real `blockfill-worker` processes; a backlog grows the fleet towards the maximum and
//! never above it; once the backlog drains the fleet returns to the minimum, stopping workers
//! with SIGTERM, and it never stops a worker only to start one again (no flapping). Run with the
//! other long tests, one at a time (`scripts/test.sh` does).

use std::time::Duration;

use blockfill_tests::{
    app::{TestApp, spawn_app_with, test_scheduler},
    devnet::ServedDevnet,
    wait::wait_until,
};
use serde_json::{Value, json};

const MIN: u64 = 1;
const MAX: u64 = 3;

async fn supervisor(app: &TestApp) -> Value {
    let (code, body) = app.get("/v1/fleet/supervisor").await;
    assert_eq!(code, reqwest::StatusCode::OK, "{body}");
    body
}

fn supervised(view: &Value) -> u64 {
    view["chains"]["grow"]["workers"].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long and load-sensitive (up to 3 worker processes): run alone with `cargo test -p blockfill-tests --test it -- --ignored`"]
async fn the_supervisor_grows_the_fleet_with_the_backlog_within_max_and_returns_to_min() {
    let mut scheduler = test_scheduler();
    // Drain any backlog within a second: a devnet backlog of 60,000 blocks wants more workers
    // than the maximum.
    scheduler.fleet.fleet_target_drain = Duration::from_secs(1);
    scheduler.fleet.fleet_interval = Duration::from_millis(300);
    scheduler.fleet.fleet_scale_down_delay = Duration::from_secs(5);
    scheduler.fleet.supervise_workers = true;
    scheduler.fleet.supervised_worker_concurrency = 2;
    scheduler.fleet.supervised_worker_grace = Duration::from_secs(20);
    scheduler.fleet.supervised_worker_log_dir =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-logs/supervisor");
    let app = spawn_app_with(scheduler, |_| {}).await;
    let devnet = ServedDevnet::with_blocks(60_000).await;
    app.register(json!({
        "name": "grow", "rpc_urls": [devnet.url()], "batch_size": 200, "live_sync": false,
        "min_workers": MIN, "max_workers": MAX,
    }))
    .await;

    // No backlog: the minimum runs, and reports.
    wait_until("the minimum running", Duration::from_secs(30), async || {
        let (_, fleet) = app.get("/v1/chains/grow/fleet").await;
        let view = supervisor(&app).await;
        if supervised(&view) == MIN && fleet["running"] == json!(MIN) {
            Ok(())
        } else {
            Err(json!({"fleet": fleet, "supervisor": view}))
        }
    })
    .await;

    // A backlog: watch the fleet while it drains.
    let id = app.trigger_backfill("grow", 0, 59_999).await;
    let mut most_running = 0;
    let mut most_supervised = 0;
    let finished = wait_until(
        "the backfill finished",
        Duration::from_secs(240),
        async || {
            let (_, fleet) = app.get("/v1/chains/grow/fleet").await;
            let view = supervisor(&app).await;
            most_running = most_running.max(fleet["running"].as_u64().unwrap_or(0));
            most_supervised = most_supervised.max(supervised(&view));
            let (_, backfill) = app.get(&format!("/v1/backfills/{id}")).await;
            if backfill["status"] == json!("completed") {
                Ok(backfill)
            } else {
                Err(json!({"fleet": fleet, "backfill": backfill["status"]}))
            }
        },
    )
    .await;
    assert_eq!(finished["status"], json!("completed"));
    assert!(
        most_running <= MAX && most_supervised <= MAX,
        "never above the maximum: {most_running} reporting, {most_supervised} supervised"
    );

    // The backlog is gone: back to the minimum, after the scale-down delay.
    let at_rest = wait_until("back to the minimum", Duration::from_secs(60), async || {
        let (_, fleet) = app.get("/v1/chains/grow/fleet").await;
        let view = supervisor(&app).await;
        if supervised(&view) == MIN
            && fleet["running"] == json!(MIN)
            && fleet["desired"] == json!(MIN)
        {
            Ok(view)
        } else {
            Err(json!({"fleet": fleet, "supervisor": view}))
        }
    })
    .await;

    // The history: up to the maximum, then down to the minimum, never a start after a stop.
    let events = at_rest["events"].as_array().expect("events").clone();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().expect("an action"))
        .collect();
    assert!(
        !actions.contains(&"exited"),
        "no worker exited by itself: {events:?}"
    );
    let mut size = 0_i64;
    let mut sizes = Vec::new();
    for action in &actions {
        size += if *action == "started" { 1 } else { -1 };
        sizes.push(size);
    }
    eprintln!("supervisor history: {actions:?}, sizes {sizes:?}");
    let peak = sizes.iter().copied().max().unwrap_or(0);
    assert_eq!(peak, MAX as i64, "grew to the maximum: {actions:?}");
    assert_eq!(size, MIN as i64, "returned to the minimum: {actions:?}");
    let first_stop = actions.iter().position(|a| *a == "stopped");
    if let Some(first_stop) = first_stop {
        assert!(
            actions[first_stop..].iter().all(|a| *a == "stopped"),
            "no start after a stop (flapping): {actions:?}"
        );
    }
    for event in &events {
        assert_eq!(event["chain"], json!("grow"));
        assert!(event["target"].as_u64().unwrap() <= MAX, "{event}");
    }
    app.assert_verified(
        &devnet.url(),
        "grow",
        blockfill_activities::BlockRange {
            from: 0,
            to: 59_999,
        },
    )
    .await;
    app.teardown().await;
}
