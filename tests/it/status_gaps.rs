//! Holes punched in the coverage show up exactly in the status and gaps answers; `mode: "gaps"`
//! fills exactly the holes.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use blockfill_activities::{BlockRange, ChainName, ChainSource, write::write_batch};
use blockfill_devnet::{DevnetChain, DevnetConfig, spawn_devnet};
use blockfill_tests::app::{TestApp, spawn_app, test_scheduler};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

async fn status_when_head_known(app: &TestApp, chain: &str, head: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = app.get(&format!("/v1/chains/{chain}/status")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["live"]["head"] == json!(head) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "head never reached {head}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holes_in_coverage_are_reported_field_by_field_and_gaps_mode_fills_them() {
    let mut app = spawn_app(test_scheduler()).await;
    let stop = CancellationToken::new();
    let config = DevnetConfig {
        blocks: 1_000,
        ..DevnetConfig::default()
    };
    let devnet = Arc::new(DevnetChain::new(config.clone()));
    let addr = spawn_devnet(
        Arc::clone(&devnet),
        "127.0.0.1:0".parse().unwrap(),
        stop.clone(),
    )
    .await
    .unwrap();
    app.register_chain("holes", &format!("http://{addr}"), 100)
        .await;

    // Nothing indexed yet: everything is one gap.
    let empty = status_when_head_known(&app, "holes", 999).await;
    assert_eq!(empty["live"]["last_indexed"], Value::Null);
    assert_eq!(empty["live"]["is_live_sync"], json!(false));
    // The historical range ends at the live target: the head itself may not be served yet.
    assert_eq!(empty["historical"]["to"], json!(998));
    assert_eq!(empty["historical"]["missing_blocks_count"], json!(999));
    assert_eq!(empty["historical"]["gap_ranges_count"], json!(1));

    // Index [0,99], [150,399] + [400,499] (adjacent: they merge), [700,749], [900,999].
    let chain = ChainName::parse("holes").unwrap();
    for (from, to) in [(0, 99), (150, 399), (400, 499), (700, 749), (900, 999)] {
        let range = BlockRange::new(from, to).unwrap();
        let bundle = devnet.fetch_range(range).await.unwrap();
        write_batch(&app.pool, &chain, range, None, &bundle)
            .await
            .unwrap();
    }
    let status = status_when_head_known(&app, "holes", 999).await;
    assert_eq!(status["chain"], json!("holes"));
    let live = &status["live"];
    assert_eq!(live["head"], json!(999));
    assert_eq!(live["safe_head"], json!(999));
    assert_eq!(live["last_indexed"], json!(999));
    assert_eq!(live["lag_blocks"], json!(0));
    assert_eq!(
        live["is_live_sync"],
        json!(true),
        "live-synced even with historical gaps: {status}"
    );
    assert!(live["head_updated_at"].is_string());
    let historical = &status["historical"];
    assert_eq!(historical["from"], json!(0));
    assert_eq!(historical["to"], json!(998));
    assert_eq!(historical["indexed_blocks"], json!(599));
    assert_eq!(historical["missing_blocks_count"], json!(400));
    assert_eq!(historical["gap_ranges_count"], json!(3));
    assert_eq!(historical["largest_gap_start"], json!(500));
    assert_eq!(historical["largest_gap_end"], json!(699));
    assert_eq!(historical["oldest_gap_start"], json!(100));
    assert_eq!(historical["percent_complete"], json!(59.96));
    assert_eq!(
        status["coverage"],
        json!([{"start": 0, "end": 99}, {"start": 150, "end": 499}, {"start": 700, "end": 749}, {"start": 900, "end": 998}])
    );
    assert_eq!(
        app.count("SELECT count(*) FROM coverage WHERE chain = 'holes'")
            .await,
        4,
        "coverage is kept merged"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM blocks WHERE chain = 'holes'")
            .await,
        600
    );

    // Paging through the gaps.
    let (code, first) = app.get("/v1/chains/holes/gaps?limit=2").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        first,
        json!({"gaps": [{"start": 100, "end": 149, "size": 50}, {"start": 500, "end": 699, "size": 200}], "next_after": 500})
    );
    let (_, second) = app.get("/v1/chains/holes/gaps?limit=2&after=500").await;
    assert_eq!(
        second,
        json!({"gaps": [{"start": 750, "end": 899, "size": 150}], "next_after": null})
    );
    // A block window: only the gaps within it, clipped to it, paged the same way.
    let (code, window) = app.get("/v1/chains/holes/gaps?from=120&to=600").await;
    assert_eq!(code, StatusCode::OK, "{window}");
    assert_eq!(
        window,
        json!({"gaps": [{"start": 120, "end": 149, "size": 30}, {"start": 500, "end": 600, "size": 101}], "next_after": null})
    );
    let (_, paged) = app
        .get("/v1/chains/holes/gaps?from=120&to=600&limit=1")
        .await;
    assert_eq!(
        paged,
        json!({"gaps": [{"start": 120, "end": 149, "size": 30}], "next_after": 120})
    );
    let (_, rest) = app
        .get("/v1/chains/holes/gaps?from=120&to=600&limit=1&after=120")
        .await;
    assert_eq!(
        rest,
        json!({"gaps": [{"start": 500, "end": 600, "size": 101}], "next_after": null})
    );
    let (_, covered) = app.get("/v1/chains/holes/gaps?from=700&to=749").await;
    assert_eq!(covered, json!({"gaps": [], "next_after": null}));
    let (_, beyond) = app.get("/v1/chains/holes/gaps?from=850&to=5000").await;
    assert_eq!(
        beyond,
        json!({"gaps": [{"start": 850, "end": 899, "size": 50}], "next_after": null}),
        "clipped to the historical range"
    );
    let (_, open_ended) = app.get("/v1/chains/holes/gaps?to=120").await;
    assert_eq!(
        open_ended,
        json!({"gaps": [{"start": 100, "end": 120, "size": 21}], "next_after": null})
    );
    for bad in [
        "limit=0",
        "limit=1001",
        "limit=x",
        "after=y",
        "color=red",
        "from=600&to=500",
        "from=z",
    ] {
        let (code, body) = app.get(&format!("/v1/chains/holes/gaps?{bad}")).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    let (code, _) = app.get("/v1/chains/nope/gaps").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, _) = app.get("/v1/chains/nope/status").await;
    assert_eq!(code, StatusCode::NOT_FOUND);

    // A gaps backfill plans only the holes and fills them.
    app.spawn_inprocess_worker(4);
    let (code, created) = app
        .post("/v1/backfills", json!({"chain": "holes", "mode": "gaps"}))
        .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{created}");
    let id = created["id"].as_str().unwrap();
    let view = app.wait_until_finished(id, Duration::from_secs(60)).await;
    assert_eq!(view["status"], json!("completed"), "{view}");
    assert_eq!(
        view["blocks_done"],
        json!(400),
        "only the missing blocks are fetched: {view}"
    );
    assert_eq!(view["mode"], json!("gaps"));
    let (_, after) = app.get("/v1/chains/holes/status").await;
    assert_eq!(
        after["historical"]["missing_blocks_count"],
        json!(0),
        "{after}"
    );
    assert_eq!(after["historical"]["gap_ranges_count"], json!(0));
    assert_eq!(after["historical"]["percent_complete"], json!(100.0));
    assert_eq!(after["coverage"], json!([{"start": 0, "end": 998}]));
    let (_, none) = app.get("/v1/chains/holes/gaps").await;
    assert_eq!(none, json!({"gaps": [], "next_after": null}));

    stop.cancel();
    app.teardown().await;
}
