//! `GET /v1/backfills/{id}/progress`: a backfill's blocks per time bucket add up to its blocks
//! done, by default and at any bucket width; the buckets are zero-filled and bounded.

use std::time::Duration;

use blockfill_tests::{
    app::{spawn_app, test_scheduler},
    devnet::ServedDevnet,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn bucket_sum(progress: &Value, key: &str) -> i64 {
    progress["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b[key].as_i64().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_buckets_of_a_backfills_progress_add_up_to_its_blocks_done() {
    let mut app = spawn_app(test_scheduler()).await;
    let devnet = ServedDevnet::with_blocks(3_000).await;
    app.register_chain("paced", &devnet.url(), 100).await;
    app.spawn_inprocess_worker(4);
    let id = app.trigger_backfill("paced", 0, 2_499).await;
    let view = app.wait_until_finished(&id, Duration::from_secs(90)).await;
    assert_eq!(view["status"], json!("completed"), "{view}");
    assert_eq!(view["blocks_done"], json!(2_500));

    let (code, progress) = app.get(&format!("/v1/backfills/{id}/progress")).await;
    assert_eq!(code, StatusCode::OK, "{progress}");
    assert_eq!(progress["backfill_id"], json!(id));
    assert_eq!(progress["blocks_done"], json!(2_500), "{progress}");
    assert_eq!(progress["batches_done"], json!(25));
    assert_eq!(progress["truncated"], json!(false));
    assert_eq!(bucket_sum(&progress, "blocks"), 2_500, "{progress}");
    assert_eq!(bucket_sum(&progress, "batches"), 25, "{progress}");
    assert!(progress["first_finished_at"].is_string());
    assert!(progress["last_finished_at"].is_string());
    // A backfill of seconds gets one-second buckets by default.
    assert_eq!(progress["bucket_seconds"], json!(1), "{progress}");
    let buckets = progress["buckets"].as_array().unwrap();
    assert!(!buckets.is_empty() && buckets.len() <= 500);
    for b in buckets {
        assert_eq!(
            b["blocks_per_second"].as_f64().unwrap(),
            b["blocks"].as_f64().unwrap(),
            "one-second buckets: {b}"
        );
    }
    // Zero-filled and consecutive: each bucket starts one width after the one before.
    let starts: Vec<i64> = buckets
        .iter()
        .map(|b| {
            chrono::DateTime::parse_from_rfc3339(b["start"].as_str().unwrap())
                .unwrap()
                .timestamp()
        })
        .collect();
    assert!(starts.windows(2).all(|w| w[1] - w[0] == 1), "{starts:?}");

    // Any width: the same total; a width wider than the backfill's life is one or two buckets.
    for width in [2, 7, 60, 86_400] {
        let (code, wide) = app
            .get(&format!(
                "/v1/backfills/{id}/progress?bucket_seconds={width}"
            ))
            .await;
        assert_eq!(code, StatusCode::OK, "{wide}");
        assert_eq!(wide["bucket_seconds"], json!(width));
        assert_eq!(bucket_sum(&wide, "blocks"), 2_500, "width {width}: {wide}");
        let first = &wide["buckets"][0];
        let rate = first["blocks_per_second"].as_f64().unwrap();
        let expected = first["blocks"].as_f64().unwrap() / width as f64;
        assert!((rate - expected).abs() < 1e-9, "{rate} != {expected}");
    }
    let (_, day) = app
        .get(&format!("/v1/backfills/{id}/progress?bucket_seconds=86400"))
        .await;
    assert!(day["buckets"].as_array().unwrap().len() <= 2, "{day}");

    for bad in [
        "bucket_seconds=0",
        "bucket_seconds=86401",
        "bucket_seconds=x",
        "color=red",
    ] {
        let (code, body) = app.get(&format!("/v1/backfills/{id}/progress?{bad}")).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    let (code, _) = app.get("/v1/backfills/not-a-uuid/progress").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    let (code, _) = app
        .get("/v1/backfills/00000000-0000-0000-0000-000000000000/progress")
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);

    // A backfill with no done batch yet: zero blocks, still a bounded answer.
    let (code, fresh) = app
        .post(
            "/v1/backfills",
            json!({"chain": "paced", "from": 2_500, "to": 2_500}),
        )
        .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{fresh}");
    let (code, early) = app
        .get(&format!(
            "/v1/backfills/{}/progress",
            fresh["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(code, StatusCode::OK, "{early}");
    assert!(early["buckets"].as_array().unwrap().len() <= 500);
    assert_eq!(
        bucket_sum(&early, "blocks"),
        early["blocks_done"].as_i64().unwrap()
    );
    app.teardown().await;
}
