//! How a batch out of attempts is resolved when the decision is made on a later delivery (after
//! a crash between recording its last failure and resolving it, or a lowered budget): the stored
//! failure decides, as it would have on the spot. A malformed answer splits the batch; an
//! endpoint outage fails it.

use std::sync::Arc;

use blockfill_activities::{
    BatchJob, BatchPolicy, BlockRange, ChainName, Resolution, SourceRegistry, db, run_batch,
    source::PoolSettings,
};
use blockfill_devnet::{DevnetChain, DevnetConfig, spawn_devnet};
use blockfill_tests::app::{TestApp, spawn_app, test_scheduler};
use blockfill_tests::devnet::ServedDevnet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A queued backfill batch `chain:0-99` of a fresh backfill.
async fn queued_batch(app: &TestApp, chain: &str) -> BatchJob {
    let backfill = Uuid::now_v7();
    sea_orm::sqlx::query(
        "INSERT INTO backfills (id, chain, mode, from_block, to_block, status) \
         VALUES ($1, $2, 'range', 0, 99, 'running')",
    )
    .bind(backfill)
    .bind(chain)
    .execute(&app.pool)
    .await
    .unwrap();
    let batch_id = format!("{chain}:0-99");
    sea_orm::sqlx::query(
        "INSERT INTO batches (id, chain, from_block, to_block, backfill_id, status, lane) \
         VALUES ($1, $2, 0, 99, $3, 'queued', 'backfill')",
    )
    .bind(&batch_id)
    .bind(chain)
    .bind(backfill)
    .execute(&app.pool)
    .await
    .unwrap();
    BatchJob {
        batch_id,
        chain: ChainName::parse(chain).unwrap(),
        range: BlockRange::new(0, 99).unwrap(),
        backfill_id: backfill,
        trace_context: None,
    }
}

fn budget(attempt_budget: i32) -> BatchPolicy {
    BatchPolicy {
        attempt_budget,
        ..BatchPolicy::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_batch_out_of_budget_is_resolved_by_its_stored_failure() {
    let app = spawn_app(test_scheduler()).await;
    let served = ServedDevnet::with_blocks(200).await;
    let (devnet, addr, stop) = (Arc::clone(&served.chain), served.addr, served.stop_token());
    devnet.set_malformed_blocks([50]);
    app.register_chain("stored", &format!("http://{addr}"), 100)
        .await;
    let conn = db::connect(&app.stores.database_url, 4).await.unwrap();
    let sources = SourceRegistry::new(conn, PoolSettings::default());

    // A malformed answer: the first attempt is recorded (budget left)...
    let job = queued_batch(&app, "stored").await;
    let first = run_batch(&app.pool, &sources, &job, "test", budget(2))
        .await
        .expect_err("block 50 is malformed");
    assert_eq!(first.resolution, Resolution::Retry);
    assert_eq!(first.attempts, 1);
    // ...and the next delivery finds the budget spent before fetching: the stored failure was a
    // malformed answer, so the batch is split, not failed.
    let second = run_batch(&app.pool, &sources, &job, "test", budget(1))
        .await
        .expect_err("out of budget");
    assert!(
        matches!(second.resolution, Resolution::Split(ref children) if children.len() == 2),
        "a stored malformed answer splits the batch: {:?} ({})",
        second.resolution,
        second.error
    );
    assert!(
        second.error.to_string().contains("malformed answer"),
        "the stored error is reported: {}",
        second.error
    );
    let status: (String,) = sea_orm::sqlx::query_as("SELECT status FROM batches WHERE id = $1")
        .bind(&job.batch_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(status.0, "split");
    stop.cancel();
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_batch_whose_endpoint_was_down_is_failed_not_split() {
    let app = spawn_app(test_scheduler()).await;
    let stop = CancellationToken::new();
    let devnet = Arc::new(DevnetChain::new(DevnetConfig {
        blocks: 200,
        ..DevnetConfig::default()
    }));
    let addr = spawn_devnet(devnet, "127.0.0.1:0".parse().unwrap(), stop.clone())
        .await
        .unwrap();
    app.register_chain("down", &format!("http://{addr}"), 100)
        .await;
    // The endpoint goes away: every attempt is an endpoint failure.
    stop.cancel();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the devnet still listens"
        );
        tokio::task::yield_now().await;
    }
    let conn = db::connect(&app.stores.database_url, 4).await.unwrap();
    let sources = SourceRegistry::new(conn, PoolSettings::default());
    let job = queued_batch(&app, "down").await;
    let first = run_batch(&app.pool, &sources, &job, "test", budget(2))
        .await
        .expect_err("the endpoint is down");
    assert_eq!(first.resolution, Resolution::Retry);
    let second = run_batch(&app.pool, &sources, &job, "test", budget(1))
        .await
        .expect_err("out of budget");
    assert_eq!(second.resolution, Resolution::Failed, "{}", second.error);
    app.teardown().await;
}
