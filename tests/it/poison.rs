//! A block whose answer is always malformed: its batch spends its budget, is split in halves until
//! the block is isolated, the block is quarantined with its error and reported, and the rest of
//! the range completes. Once the source is fixed, retrying the quarantined batch fills the block.

use std::{sync::Arc, time::Duration};

use blockfill_activities::{BlockRange, ChainName};
use blockfill_orchestrator::verify::verify_range;
use blockfill_tests::app::{spawn_app, test_scheduler};
use blockfill_tests::devnet::ServedDevnet;
use reqwest::StatusCode;
use serde_json::json;

const POISON: u64 = 1_234;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_block_is_isolated_quarantined_reported_and_filled_after_a_fix() {
    let mut app = spawn_app(test_scheduler()).await;
    let served = ServedDevnet::with_blocks(3_000).await;
    let (devnet, addr, stop) = (Arc::clone(&served.chain), served.addr, served.stop_token());
    devnet.set_malformed_blocks([POISON]);
    app.register_chain("poison", &format!("http://{addr}"), 100)
        .await;
    app.spawn_inprocess_worker(4);
    let id = app.trigger_backfill("poison", 0, 2_999).await;
    let view = app.wait_until_finished(&id, Duration::from_secs(180)).await;

    assert_eq!(
        view["status"],
        json!("completed"),
        "quarantine does not fail the backfill: {view}"
    );
    assert_eq!(view["quarantined_blocks"], json!(1), "{view}");
    assert_eq!(view["blocks_done"], json!(2_999));
    assert!(
        view["split_batches"].as_i64().unwrap() >= 6,
        "100 blocks halve at least 6 times down to one: {view}"
    );
    assert!(
        view["last_errors"].to_string().contains("malformed answer"),
        "{view}"
    );
    let (code, quarantined) = app.get("/v1/quarantine?chain=poison").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(quarantined.as_array().unwrap().len(), 1, "{quarantined}");
    assert_eq!(quarantined[0]["number"], json!(POISON));
    assert_eq!(
        quarantined[0]["batch_id"],
        json!(format!("poison:{POISON}-{POISON}"))
    );
    assert_eq!(quarantined[0]["attempts"], json!(5));
    assert!(
        quarantined[0]["error"]
            .as_str()
            .unwrap()
            .contains("malformed answer"),
        "{quarantined}"
    );
    let (_, status) = app.get("/v1/chains/poison/status").await;
    assert_eq!(
        status["historical"]["missing_blocks_count"],
        json!(1),
        "{status}"
    );
    assert_eq!(status["historical"]["largest_gap_start"], json!(POISON));
    assert_eq!(status["historical"]["largest_gap_end"], json!(POISON));
    assert_eq!(status["work"]["quarantined_blocks"], json!(1));
    assert_eq!(
        app.count("SELECT count(*) FROM blocks WHERE chain = 'poison'")
            .await,
        2_999
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM blocks WHERE chain = 'poison' AND number = {POISON}"
        ))
        .await,
        0
    );
    let (_, split) = app.get("/v1/batches?chain=poison&status=split").await;
    assert!(
        split
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["from"].as_i64().unwrap() <= POISON as i64
                && POISON as i64 <= b["to"].as_i64().unwrap()),
        "only batches holding the poison block were split: {split}"
    );

    // The source is fixed; retry the quarantined batch.
    devnet.set_malformed_blocks([]);
    let (code, retried) = app
        .post(
            &format!("/v1/batches/poison:{POISON}-{POISON}/retry"),
            json!({}),
        )
        .await;
    assert_eq!((code, retried), (StatusCode::OK, json!({"retried": 1})));
    let view = app.wait_until_finished(&id, Duration::from_secs(60)).await;
    assert_eq!(view["status"], json!("completed"), "{view}");
    assert_eq!(view["quarantined_blocks"], json!(0));
    let (_, quarantined) = app.get("/v1/quarantine?chain=poison").await;
    assert_eq!(quarantined, json!([]));
    assert_eq!(
        app.count("SELECT count(*) FROM blocks WHERE chain = 'poison'")
            .await,
        3_000
    );
    let report = verify_range(
        &app.pool,
        &ChainName::parse("poison").unwrap(),
        devnet.as_ref(),
        BlockRange::new(0, 2_999).unwrap(),
        1_000,
    )
    .await
    .unwrap();
    assert!(report.is_clean(), "{:?}", report.mismatches);
    stop.cancel();
    app.teardown().await;
}
