//! PostgreSQL goes away in the middle of a backfill (new connections refused, every open one
//! terminated, for several seconds): workers and the orchestrator back off, come back, and the
//! backfill completes with every block exactly once and no batch half written.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use blockfill_activities::{BlockRange, ChainName};
use blockfill_devnet::{DevnetChain, DevnetConfig, spawn_devnet};
use blockfill_orchestrator::verify::verify_range;
use blockfill_tests::app::{base_urls, spawn_app, test_scheduler};
use sea_orm::{ConnectionTrait, sqlx};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const BLOCKS: u64 = 12_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_mid_backfill_delays_it_but_loses_and_duplicates_nothing() {
    let mut app = spawn_app(test_scheduler()).await;
    let stop = CancellationToken::new();
    let devnet = Arc::new(DevnetChain::new(DevnetConfig {
        blocks: BLOCKS,
        ..DevnetConfig::default()
    }));
    let addr = spawn_devnet(
        Arc::clone(&devnet),
        "127.0.0.1:0".parse().unwrap(),
        stop.clone(),
    )
    .await
    .unwrap();
    app.register_chain("outage", &format!("http://{addr}"), 50)
        .await;
    app.spawn_inprocess_worker(4);
    app.spawn_inprocess_worker(4);
    let id = app.trigger_backfill("outage", 0, BLOCKS - 1).await;

    let deadline = Instant::now() + Duration::from_secs(60);
    while app
        .count("SELECT count(*) FROM batches WHERE status = 'done'")
        .await
        < 30
    {
        assert!(Instant::now() < deadline, "no progress before the outage");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let done_before = app
        .count("SELECT count(*) FROM batches WHERE status = 'done'")
        .await;
    assert!(
        done_before < (BLOCKS / 50) as i64,
        "the backfill finished before the outage"
    );

    // The outage: this test's database refuses connections and loses every open one.
    let database = app
        .stores
        .database_url
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let admin = blockfill_activities::db::connect(&format!("{}/postgres", base_urls().0), 1)
        .await
        .unwrap();
    admin
        .execute_unprepared(&format!(
            "ALTER DATABASE \"{database}\" ALLOW_CONNECTIONS false"
        ))
        .await
        .unwrap();
    let outage = Instant::now();
    let mut terminated = 0;
    while outage.elapsed() < Duration::from_secs(6) {
        let killed = admin
            .query_all_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}' AND pid <> pg_backend_pid()"),
            ))
            .await
            .unwrap();
        terminated += killed.len();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    admin
        .execute_unprepared(&format!(
            "ALTER DATABASE \"{database}\" ALLOW_CONNECTIONS true"
        ))
        .await
        .unwrap();
    assert!(terminated > 0, "the outage cut no connection");
    println!("outage: 6s, {terminated} connections terminated");

    let view = app.wait_until_finished(&id, Duration::from_secs(180)).await;
    assert_eq!(view["status"], json!("completed"), "{view}");
    assert_eq!(view["blocks_done"], json!(BLOCKS));
    assert_eq!(
        app.count("SELECT count(*) FROM blocks WHERE chain = 'outage'")
            .await,
        BLOCKS as i64
    );
    assert_eq!(
        app.count("SELECT count(*) FROM coverage WHERE chain = 'outage'")
            .await,
        1
    );
    let (covered,): (i64,) =
        sqlx::query_as("SELECT end_block - start_block + 1 FROM coverage WHERE chain = 'outage'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(covered, BLOCKS as i64);
    let report = verify_range(
        &app.pool,
        &ChainName::parse("outage").unwrap(),
        devnet.as_ref(),
        BlockRange::new(0, BLOCKS - 1).unwrap(),
        1_000,
    )
    .await
    .unwrap();
    assert!(report.is_clean(), "{:?}", report.mismatches);
    // Every done batch's blocks are all there: no batch was half written.
    assert_eq!(
        app.count("SELECT count(*) FROM batches b WHERE status = 'done' AND (SELECT count(*) FROM blocks WHERE chain = b.chain AND number BETWEEN b.from_block AND b.to_block) <> b.to_block - b.from_block + 1").await,
        0
    );
    stop.cancel();
    admin.close().await.ok();
    app.teardown().await;
}
