//! Every push respects a bound: the live lane during a fleet outage, and the retry, re-feed and
//! requeue paths of the backfill lane. What does not fit waits as planned rows in PostgreSQL and
//! is fed as room frees; finished jobs of every queue leave Redis. Split children keep their
//! parent's lane; a backfill is completed only once its whole range is covered.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use blockfill_activities::{
    BatchJob, BatchPolicy, BlockRange, ChainName, Lane, Resolution, SourceRegistry, db,
    queue::{JobQueue, QueueDepth},
    run_batch,
    source::PoolSettings,
    types::lanes,
};
use blockfill_tests::devnet::ServedDevnet;
use blockfill_tests::{
    anvil::{Anvil, ChainSpec},
    app::{TestApp, batch_queue, spawn_app, test_scheduler},
};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

async fn depth(app: &TestApp, lane: Lane, chain: &str) -> QueueDepth {
    batch_queue(&app.stores, lane, chain)
        .await
        .depth()
        .await
        .unwrap()
}

async fn scheduler_depth(app: &TestApp) -> QueueDepth {
    JobQueue::<BatchJob>::connect(&app.stores.queue(), lanes::SCHEDULER)
        .await
        .unwrap()
        .depth()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long and load-sensitive (over a minute of single-block live batches): run alone with `cargo test -p blockfill-tests --test it -- --ignored`"]
async fn a_fleet_outage_leaves_live_work_planned_in_postgres_and_live_sync_recovers() {
    let anvil = Anvil::start().await.unwrap();
    anvil.mine(20).await.unwrap();
    let mut scheduler = test_scheduler();
    scheduler.head_poll_interval = Duration::from_millis(200);
    scheduler.max_queued_live_batches = 32;
    let mut app = spawn_app(scheduler).await;
    app.register(json!({"name": "outage", "rpc_urls": [anvil.url], "batch_size": 1}))
        .await;
    let live = batch_queue(&app.stores, Lane::Live, "outage").await;

    // The fleet is down while the chain moves on by 3,000 blocks, a batch each.
    let mut deepest = 0;
    for _ in 0..30 {
        anvil.mine(100).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        deepest = deepest.max(live.depth().await.unwrap().pending());
    }
    let settle = Instant::now() + Duration::from_secs(2);
    while Instant::now() < settle {
        deepest = deepest.max(live.depth().await.unwrap().pending());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        deepest <= 32,
        "the live queue holds at most its bound, held {deepest}"
    );
    let planned = app
        .count("SELECT count(*) FROM batches WHERE lane = 'live' AND status = 'planned'")
        .await;
    assert!(planned > 100, "the surplus waits in PostgreSQL: {planned}");

    // The fleet comes back: live sync catches up and keeps following the head.
    app.spawn_inprocess_worker(4);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, status) = app.get("/v1/chains/outage/status").await;
        if status["live"]["is_live_sync"] == json!(true) {
            break;
        }
        deepest = deepest.max(live.depth().await.unwrap().pending());
        assert!(
            Instant::now() < deadline,
            "live sync never recovered: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(deepest <= 32, "bound held while catching up: {deepest}");
    anvil.mine(5).await.unwrap();
    let head = anvil.block_number().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while app
        .count("SELECT COALESCE(MAX(number), 0) FROM blocks WHERE chain = 'outage'")
        .await
        < (head - 1) as i64
    {
        assert!(Instant::now() < deadline, "new blocks not indexed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Finished jobs leave Redis, in every queue.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (live, batches, scheduler) = (
            depth(&app, Lane::Live, "outage").await,
            depth(&app, Lane::Backfill, "outage").await,
            scheduler_depth(&app).await,
        );
        let finished = |d: QueueDepth| d.done + d.dead;
        if finished(live) + finished(batches) + finished(scheduler) < 10 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "finished jobs stay in Redis: live {live:?} batches {batches:?} scheduler {scheduler:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    app.teardown().await;
}

/// Inserts a backfill of `chain` over `[from, to]` with one batch row per `size` blocks in
/// `batch_status`; its scheduler checkpoint is past the end (everything is planned).
async fn insert_backfill(
    app: &TestApp,
    chain: &str,
    (from, to, size): (u64, u64, u64),
    status: &str,
    batch_status: &str,
) -> Uuid {
    let id = Uuid::now_v7();
    sea_orm::sqlx::query(
        "INSERT INTO backfills (id, chain, mode, from_block, to_block, status, started_at) \
         VALUES ($1, $2, 'range', $3, $4, $5, now())",
    )
    .bind(id)
    .bind(chain)
    .bind(from as i64)
    .bind(to as i64)
    .bind(status)
    .execute(&app.pool)
    .await
    .unwrap();
    sea_orm::sqlx::query(
        "INSERT INTO scheduler_checkpoints (backfill_id, generation, cursor_block, updated_at) \
         VALUES ($1, 0, $2, now() - interval '1 minute')",
    )
    .bind(id)
    .bind(to as i64 + 1)
    .execute(&app.pool)
    .await
    .unwrap();
    sea_orm::sqlx::query(
        "INSERT INTO batches (id, chain, from_block, to_block, backfill_id, status, attempts, \
           planned_at, queued_at) \
         SELECT $1 || ':' || f || '-' || (f + $5 - 1), $1, f, f + $5 - 1, $2, $6, \
           CASE WHEN $6 = 'failed' THEN 5 ELSE 0 END, now() - interval '1 minute', \
           now() - interval '1 minute' \
         FROM generate_series($3::int8, $4::int8, $5::int8) AS f",
    )
    .bind(chain)
    .bind(id)
    .bind(from as i64)
    .bind(to as i64)
    .bind(size as i64)
    .bind(batch_status)
    .execute(&app.pool)
    .await
    .unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_refeeds_and_requeues_respect_the_queue_bound() {
    let anvil = Anvil::start().await.unwrap();
    anvil.mine(2_100).await.unwrap();
    let mut scheduler = test_scheduler();
    scheduler.max_queued_batches = 16;
    scheduler.seam_check_interval = Duration::from_secs(3_600);
    let mut app = spawn_app(scheduler).await;
    app.register_chain("bound", &anvil.url, 10).await;
    let batches = batch_queue(&app.stores, Lane::Backfill, "bound").await;

    // No workers yet. A backfill fills the window up to the bound ...
    let first = app.trigger_backfill("bound", 0, 999).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while batches.depth().await.unwrap().pending() < 16 {
        assert!(Instant::now() < deadline, "the window never filled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // ... an operator retries 50 failed batches of an older backfill ...
    let failed = insert_backfill(&app, "bound", (1_000, 1_499, 10), "failed", "failed").await;
    let (code, body) = app
        .post(&format!("/v1/backfills/{failed}/retry-failed"), json!({}))
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    // ... and 50 batches PostgreSQL says are queued are missing from Redis (a flush).
    let lost = insert_backfill(&app, "bound", (1_500, 1_999, 10), "running", "queued").await;

    // The reconciler runs every 2 s and re-feeds after 5 s of grace: watch it for 9 s.
    let mut deepest = 0;
    let watch_until = Instant::now() + Duration::from_secs(9);
    while Instant::now() < watch_until {
        deepest = deepest.max(batches.depth().await.unwrap().pending());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        deepest <= 16,
        "the batch queue held {deepest} jobs, bound 16"
    );

    // Workers come back: what waited in PostgreSQL is fed as room frees, and everything ends.
    app.spawn_inprocess_worker(4);
    for id in [first, failed.to_string(), lost.to_string()] {
        let view = app.wait_until_finished(&id, Duration::from_secs(120)).await;
        assert_eq!(view["status"], "completed", "{view}");
    }
    assert_eq!(
        app.count("SELECT count(*) FROM blocks WHERE chain = 'bound'")
            .await,
        2_000
    );
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_children_of_a_live_batch_stay_in_the_live_lane() {
    let app = spawn_app(test_scheduler()).await;
    let served = ServedDevnet::with_blocks(200).await;
    let (devnet, addr, stop) = (Arc::clone(&served.chain), served.addr, served.stop_token());
    devnet.set_malformed_blocks([150]);
    app.register_chain("lanes", &format!("http://{addr}"), 100)
        .await;
    // A live batch of the chain's live backfill, as the live lane plans them.
    let live_backfill = Uuid::now_v7();
    sea_orm::sqlx::query(
        "INSERT INTO backfills (id, chain, mode, from_block, to_block, status) \
         VALUES ($1, 'lanes', 'live', 100, 199, 'running')",
    )
    .bind(live_backfill)
    .execute(&app.pool)
    .await
    .unwrap();
    sea_orm::sqlx::query(
        "INSERT INTO batches (id, chain, from_block, to_block, backfill_id, status, lane) \
         VALUES ('lanes:100-199', 'lanes', 100, 199, $1, 'queued', 'live')",
    )
    .bind(live_backfill)
    .execute(&app.pool)
    .await
    .unwrap();
    let conn = db::connect(&app.stores.database_url, 4).await.unwrap();
    let sources = SourceRegistry::new(conn, PoolSettings::default());
    let job = BatchJob {
        batch_id: "lanes:100-199".into(),
        chain: ChainName::parse("lanes").unwrap(),
        range: BlockRange::new(100, 199).unwrap(),
        backfill_id: live_backfill,
        trace_context: None,
    };
    let policy = BatchPolicy {
        attempt_budget: 1,
        ..BatchPolicy::default()
    };
    let failure = run_batch(&app.pool, &sources, &job, "test", policy)
        .await
        .expect_err("block 150 is malformed");
    assert!(
        matches!(failure.resolution, Resolution::Split(_)),
        "{:?}",
        failure.resolution
    );
    let lanes: Vec<(String, String)> = sea_orm::sqlx::query_as(
        "SELECT id, lane FROM batches WHERE parent_id = 'lanes:100-199' ORDER BY from_block",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(lanes.len(), 2, "{lanes:?}");
    assert!(
        lanes.iter().all(|(_, lane)| lane == "live"),
        "split children keep their parent's lane: {lanes:?}"
    );
    stop.cancel();
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_is_completed_only_once_its_whole_range_is_covered() {
    let anvil = Anvil::start().await.unwrap();
    anvil
        .build_chain(ChainSpec {
            blocks: 1_000,
            tx_every: 20,
            txs_per_block: 1,
        })
        .await
        .unwrap();
    let mut scheduler = test_scheduler();
    scheduler.seam_check_interval = Duration::from_secs(3_600);
    let mut app = spawn_app(scheduler).await;
    app.register_chain("overlap", &anvil.url, 50).await;

    // No workers: the first backfill's batches wait in the queue.
    let first = app.trigger_backfill("overlap", 0, 999).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while app
        .count(&format!(
            "SELECT count(*) FROM batches WHERE backfill_id = '{first}' AND status = 'queued'"
        ))
        .await
        < 20
    {
        assert!(Instant::now() < deadline, "first backfill never queued");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A second backfill over the same range has nothing of its own to plan.
    let second = app.trigger_backfill("overlap", 0, 999).await;
    let watch_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < watch_until {
        let (_, view) = app.get(&format!("/v1/backfills/{second}")).await;
        assert_ne!(
            view["status"], "completed",
            "nothing of its range is indexed yet: {view}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The first backfill's work fails for good (as if its endpoint died for it).
    sea_orm::sqlx::query(
        "UPDATE batches SET status = 'failed', last_error = 'endpoint gone', finished_at = now() \
         WHERE backfill_id = $1::uuid",
    )
    .bind(&first)
    .execute(&app.pool)
    .await
    .unwrap();
    // Workers come: the second backfill still covers its whole range.
    app.spawn_inprocess_worker(4);
    let view = app
        .wait_until_finished(&second, Duration::from_secs(90))
        .await;
    assert_eq!(view["status"], "completed", "{view}");
    let (_, status) = app.get("/v1/chains/overlap/status").await;
    let covered = app
        .count(
            "SELECT COALESCE(sum(end_block - start_block + 1), 0)::int8 FROM coverage \
             WHERE chain = 'overlap' AND start_block <= 999",
        )
        .await;
    assert!(covered >= 1_000, "[0, 999] is covered: {status}");
    app.teardown().await;
}
