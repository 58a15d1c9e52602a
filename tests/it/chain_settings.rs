//! `PATCH /v1/chains/{name}`: only the fields in the body change, bad fields get a 422 that names
//! each one and change nothing, and every change takes effect without a restart (the fleet
//! answer, the next backfill's batches and safe head, live sync, and the endpoints of a worker
//! process that was already running).

use std::time::Duration;

use blockfill_devnet::DevnetConfig;
use blockfill_tests::{
    app::{TestApp, spawn_app, test_scheduler},
    devnet::ServedDevnet,
    process::Process,
    wait::wait_until,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The chain as `GET /v1/chains/{name}` shows it.
async fn chain(app: &TestApp, name: &str) -> Value {
    let (code, view) = app.get(&format!("/v1/chains/{name}")).await;
    assert_eq!(code, StatusCode::OK, "{view}");
    view
}

/// The live lane's cursor of the chain named `name` (-1: none yet).
async fn live_cursor(app: &TestApp, name: &str) -> i64 {
    app.count(&format!(
        "SELECT coalesce(live_cursor, -1) FROM chains WHERE name = '{name}'"
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_changes_get_422_naming_each_field_and_change_nothing() {
    let app = spawn_app(test_scheduler()).await;
    let devnet = ServedDevnet::with_blocks(100).await;
    let other_chain = ServedDevnet::start(DevnetConfig {
        blocks: 100,
        chain_id: 99,
        ..DevnetConfig::default()
    })
    .await;
    let other_genesis = ServedDevnet::start(DevnetConfig {
        blocks: 100,
        seed: 7,
        ..DevnetConfig::default()
    })
    .await;
    let registered = app
        .register(json!({
            "name": "tuned", "rpc_urls": [devnet.url()], "live_sync": false,
            "min_workers": 1, "max_workers": 3, "batch_size": 100,
        }))
        .await;
    let url = devnet.url();

    // (body, the fields the answer must name, a word of why for the first).
    let cases = [
        (
            json!({"min_workers": 5}),
            vec!["min_workers"],
            "max_workers (3",
        ),
        (
            json!({"min_workers": 5, "max_workers": 4}),
            vec!["min_workers"],
            "max_workers (4)",
        ),
        (
            json!({"max_workers": 0}),
            vec!["max_workers"],
            "between 1 and",
        ),
        (
            json!({"batch_size": 0}),
            vec!["batch_size"],
            "between 1 and 10000",
        ),
        (
            json!({"batch_size": 10_001}),
            vec!["batch_size"],
            "got 10001",
        ),
        (
            json!({"batch_size": "100"}),
            vec!["batch_size"],
            "whole number",
        ),
        (
            json!({"confirmations": -1}),
            vec!["confirmations"],
            "got -1",
        ),
        (
            json!({"max_reorg_depth": 0}),
            vec!["max_reorg_depth"],
            "between 1",
        ),
        (
            json!({"live_sync": "no"}),
            vec!["live_sync"],
            "true or false",
        ),
        (json!({"min_workers": null}), vec!["min_workers"], "null"),
        (json!({"surprise": 1}), vec!["surprise"], "unknown field"),
        (
            json!({"name": "renamed"}),
            vec!["name"],
            "after registration",
        ),
        (
            json!({"rpc_urls": []}),
            vec!["rpc_urls"],
            "at least one URL",
        ),
        (
            json!({"rpc_urls": ["ftp://x"]}),
            vec!["rpc_urls"],
            "http or https",
        ),
        (
            json!({"rpc_urls": [{"url": url, "rps": 0}]}),
            vec!["rpc_urls"],
            "rps of",
        ),
        (
            json!({"rpc_urls": [{"url": url, "weight": 3}]}),
            vec!["rpc_urls"],
            "unknown field `weight`",
        ),
        (
            json!({"rpc_urls": [url, {"url": url}]}),
            vec!["rpc_urls"],
            "listed twice",
        ),
        (
            json!({"rpc_urls": [other_chain.url()]}),
            vec!["rpc_urls"],
            "chain id 99",
        ),
        (
            json!({"rpc_urls": [other_genesis.url()]}),
            vec!["rpc_urls"],
            "genesis block",
        ),
        // One bad field refuses the whole change: the good one is not applied either.
        (
            json!({"max_workers": 9, "batch_size": 0, "live_sync": 3}),
            vec!["batch_size", "live_sync"],
            "between 1 and 10000",
        ),
    ];
    for (body, fields, why) in cases {
        let (code, answer) = app.patch("/v1/chains/tuned", body.clone()).await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body} -> {answer}");
        let named: Vec<&str> = answer["fields"]
            .as_object()
            .map(|f| f.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(named, fields, "{body} -> {answer}");
        assert!(
            answer["fields"][fields[0]]
                .as_str()
                .is_some_and(|w| w.contains(why)),
            "{body} -> {answer}"
        );
        assert!(
            answer["error"]
                .as_str()
                .is_some_and(|e| e.contains(fields[0])),
            "the error line names the field too: {answer}"
        );
    }

    let (code, answer) = app.patch("/v1/chains/tuned", json!({})).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("nothing to change")
    );
    let (code, answer) = app.patch("/v1/chains/tuned", json!([1])).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let response = app
        .client
        .patch(format!("http://{}/v1/chains/tuned", app.api))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let (code, answer) = app
        .patch("/v1/chains/nope", json!({"max_workers": 9}))
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("nope"));

    assert_eq!(
        chain(&app, "tuned").await,
        registered,
        "a refused change changed the chain"
    );
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raising_max_keeps_min_and_the_fleet_answer_shows_it_at_once() {
    let app = spawn_app(test_scheduler()).await;
    let devnet = ServedDevnet::with_blocks(100).await;
    app.register(json!({
        "name": "scaled", "rpc_urls": [devnet.url()], "live_sync": false,
        "min_workers": 3, "max_workers": 3,
    }))
    .await;
    let (_, before) = app.get("/v1/chains/scaled/fleet").await;
    assert_eq!(before["desired"], json!(3), "{before}");

    let (code, changed) = app
        .patch("/v1/chains/scaled", json!({"max_workers": 9}))
        .await;
    assert_eq!(code, StatusCode::OK, "{changed}");
    assert_eq!(changed["max_workers"], json!(9));
    assert_eq!(changed["min_workers"], json!(3), "min kept: {changed}");
    assert_eq!(
        changed["batch_size"],
        json!(100),
        "the rest kept: {changed}"
    );
    assert_eq!(
        changed,
        chain(&app, "scaled").await,
        "the answer is the updated chain"
    );
    let (_, fleet) = app.get("/v1/chains/scaled/fleet").await;
    assert_eq!(
        (fleet["min_workers"].clone(), fleet["max_workers"].clone()),
        (json!(3), json!(9)),
        "{fleet}"
    );
    assert!(
        fleet["desired"].as_u64().unwrap() >= 3,
        "raising max must not shrink the fleet: {fleet}"
    );

    let (code, changed) = app
        .patch("/v1/chains/scaled", json!({"min_workers": 5}))
        .await;
    assert_eq!(code, StatusCode::OK, "{changed}");
    assert_eq!(
        (
            changed["min_workers"].clone(),
            changed["max_workers"].clone()
        ),
        (json!(5), json!(9))
    );
    let (_, fleet) = app.get("/v1/chains/scaled/fleet").await;
    assert_eq!(fleet["min_workers"], json!(5), "{fleet}");
    assert_eq!(
        fleet["desired"],
        json!(5),
        "no backlog: the new minimum: {fleet}"
    );

    // Concurrent changes of one bound each are checked against the other with the row locked:
    // however they interleave, min never ends above max.
    let shared = &app;
    let changes = (0..16).map(|i| {
        let body = if i % 2 == 0 {
            json!({"min_workers": 8, "max_workers": 9})
        } else {
            json!({"max_workers": 6})
        };
        async move { shared.patch("/v1/chains/scaled", body).await.0 }
    });
    let codes = futures::future::join_all(changes).await;
    assert!(
        codes
            .iter()
            .all(|c| *c == StatusCode::OK || *c == StatusCode::UNPROCESSABLE_ENTITY),
        "{codes:?}"
    );
    let settled = chain(&app, "scaled").await;
    assert!(
        settled["min_workers"].as_u64() <= settled["max_workers"].as_u64(),
        "{settled}"
    );
    let (code, _) = app
        .patch(
            "/v1/chains/scaled",
            json!({"min_workers": 5, "max_workers": 9}),
        )
        .await;
    assert_eq!(code, StatusCode::OK);

    // Lowering max below the stored min is refused, naming max_workers.
    let (code, answer) = app
        .patch("/v1/chains/scaled", json!({"max_workers": 4}))
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(
        answer["fields"]["max_workers"]
            .as_str()
            .unwrap()
            .contains("min_workers (5"),
        "{answer}"
    );
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_size_and_confirmations_are_used_by_the_next_backfill() {
    let app = spawn_app(test_scheduler()).await;
    let devnet = ServedDevnet::with_blocks(1_000).await;
    app.register_chain("paced", &devnet.url(), 100).await;

    let first = app.trigger_backfill("paced", 0, 199).await;
    let planned = async |id: &str, batches: i64| {
        let sql = format!("SELECT count(*) FROM batches WHERE backfill_id = '{id}'");
        wait_until("a backfill planned", Duration::from_secs(30), async || {
            let planned = app.count(&sql).await;
            if planned == batches {
                Ok(())
            } else {
                Err(planned)
            }
        })
        .await;
    };
    // Batches are planned when the scheduler runs, not when the backfill is requested.
    planned(&first, 2).await;
    let (code, changed) = app
        .patch(
            "/v1/chains/paced",
            json!({"batch_size": 25, "confirmations": 100}),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{changed}");
    assert_eq!(
        (
            changed["batch_size"].clone(),
            changed["confirmations"].clone()
        ),
        (json!(25), json!(100))
    );
    let second = app.trigger_backfill("paced", 200, 399).await;
    planned(&second, 8).await;
    // Smallest and largest batch of a backfill, as one number: smallest * 100000 + largest.
    let size_of = |id: String| {
        format!(
            "SELECT min(to_block - from_block + 1) * 100000 + max(to_block - from_block + 1) \
             FROM batches WHERE backfill_id = '{id}'"
        )
    };
    assert_eq!(
        app.count(&size_of(first)).await,
        100 * 100_000 + 100,
        "planned before the change: 100 blocks a batch"
    );
    assert_eq!(
        app.count(&size_of(second)).await,
        25 * 100_000 + 25,
        "planned after the change: 25 blocks a batch"
    );

    // The safe head is now 100 blocks under the head (999).
    let (code, refused) = app
        .post(
            "/v1/backfills",
            json!({"chain": "paced", "from": 400, "to": 950}),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("(899"),
        "{refused}"
    );
    app.trigger_backfill("paced", 400, 899).await;
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_sync_off_stops_the_live_lane_and_on_resumes_it() {
    let app = spawn_app(test_scheduler()).await;
    let devnet = ServedDevnet::with_blocks(200).await;
    app.register(json!({
        "name": "follow", "rpc_urls": [devnet.url()], "batch_size": 10, "live_sync": true,
    }))
    .await;
    wait_until(
        "live sync at the tip",
        Duration::from_secs(30),
        async || {
            let at = live_cursor(&app, "follow").await;
            if at == 198 { Ok(()) } else { Err(at) }
        },
    )
    .await;

    let (code, changed) = app
        .patch("/v1/chains/follow", json!({"live_sync": false}))
        .await;
    assert_eq!(code, StatusCode::OK, "{changed}");
    assert_eq!(changed["live_sync"], json!(false));
    // A head poll that began before the change may still use the old setting: let two more
    // polls record the head, so every poll from here on began after it.
    head_polls(&app, "follow", 2).await;
    devnet.chain.advance(20);
    wait_until("the new head read", Duration::from_secs(30), async || {
        let (_, status) = app.get("/v1/chains/follow/status").await;
        if status["live"]["head"] == json!(219) {
            Ok(())
        } else {
            Err(status)
        }
    })
    .await;
    head_polls(&app, "follow", 1).await;
    assert_eq!(
        live_cursor(&app, "follow").await,
        198,
        "live sync is off: the live lane did not advance"
    );
    let (_, status) = app.get("/v1/chains/follow/status").await;
    assert_eq!(
        status["live"]["live_sync_enabled"],
        json!(false),
        "{status}"
    );

    let (code, _) = app
        .patch("/v1/chains/follow", json!({"live_sync": true}))
        .await;
    assert_eq!(code, StatusCode::OK);
    wait_until(
        "live sync back at the tip",
        Duration::from_secs(30),
        async || {
            let at = live_cursor(&app, "follow").await;
            if at == 218 { Ok(()) } else { Err(at) }
        },
    )
    .await;
    app.teardown().await;
}

/// Waits until the head tracker has recorded the chain's head `polls` more times.
async fn head_polls(app: &TestApp, chain: &str, polls: usize) {
    let read = async || {
        let (_, status) = app.get(&format!("/v1/chains/{chain}/status")).await;
        status["live"]["head_updated_at"].clone()
    };
    let mut last = read().await;
    for _ in 0..polls {
        last = wait_until("a head poll", Duration::from_secs(30), async || {
            let now = read().await;
            if now != last { Ok(now) } else { Err(now) }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_worker_uses_changed_endpoints_without_a_restart() {
    let app = spawn_app(test_scheduler()).await;
    let first = ServedDevnet::with_blocks(2_000).await;
    let second = ServedDevnet::with_blocks(2_000).await;
    app.register_chain("moved", &first.url(), 100).await;
    let mut worker = Process::worker(&app.stores, 4, &[], "chain-settings-worker").unwrap();
    let before = app.trigger_backfill("moved", 0, 499).await;
    let done = app
        .wait_until_finished(&before, Duration::from_secs(60))
        .await;
    assert_eq!(done["status"], json!("completed"), "{done}");

    let (code, changed) = app
        .patch(
            "/v1/chains/moved",
            json!({"rpc_urls": [{"url": second.url(), "rps": 500}]}),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{changed}");
    assert_eq!(changed["rpc_urls"], json!([second.url()]));
    assert_eq!(
        changed["endpoints"],
        json!([{"url": second.url(), "rps": 500}])
    );
    let old_url = first.url();
    drop(first);
    wait_until(
        "the first endpoint gone",
        Duration::from_secs(10),
        async || match reqwest::Client::new()
            .post(&old_url)
            .json(&json!({}))
            .send()
            .await
        {
            Err(e) => Ok(e),
            Ok(answer) => Err(answer.status()),
        },
    )
    .await;

    let after = app.trigger_backfill("moved", 500, 1_999).await;
    let done = app
        .wait_until_finished(&after, Duration::from_secs(120))
        .await;
    assert_eq!(
        done["status"],
        json!("completed"),
        "the worker started before the change fetched from the new endpoint: {done}"
    );
    assert!(
        worker.child.try_wait().unwrap().is_none(),
        "the same worker process, never restarted"
    );
    app.assert_verified(
        &second.url(),
        "moved",
        blockfill_activities::BlockRange::new(0, 1_999).unwrap(),
    )
    .await;
    let (_, endpoints) = app.get("/v1/chains/moved/endpoints").await;
    let listed: Vec<&str> = endpoints["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["url"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [second.url()], "{endpoints}");
    worker.terminate(Duration::from_secs(20)).await;
    app.teardown().await;
}
