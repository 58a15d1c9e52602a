//! The status and gaps answers cost the same on a chain with 200,000 batch rows as on a young
//! one: they read the rows that matter (failures, recent work, the newest live batch), never
//! every batch of the chain. Measured with PostgreSQL's own counters of the transaction the
//! answers' queries run in. Old done live batch rows are compacted away without changing what
//! the live backfill and the chain status count.

use blockfill_activities::entity::chains;
use blockfill_orchestrator::{
    api::{chain_status, gap_page, gap_summary},
    compaction::{KEEP_NEWEST_PER_CHAIN, KEEP_RECENT, MAX_ROWS_PER_CALL, compact_live_batches},
};
use blockfill_tests::{
    anvil::Anvil,
    app::{TestApp, spawn_app, test_scheduler},
};
use reqwest::StatusCode;
use sea_orm::{
    EntityTrait,
    sqlx::{self, PgPool, postgres::PgPoolOptions},
};
use serde_json::{Value, json};
use uuid::Uuid;

/// Batch rows of the aged chain.
const ROWS: i64 = 200_000;
/// Most tuples of `batches` one status or gaps answer may read.
const MAX_TUPLES: i64 = 2_000;

/// Inserts a range backfill and the chain's live backfill; returns their ids.
async fn backfills(app: &TestApp, chain: &str) -> (Uuid, Uuid) {
    let (range, live) = (Uuid::now_v7(), Uuid::now_v7());
    sqlx::query(
        "INSERT INTO backfills (id, chain, mode, from_block, to_block, status, started_at) VALUES \
           ($1, $3, 'range', 0, 1499999, 'running', now() - interval '3 days'), \
           ($2, $3, 'live', 1500000, 1999999, 'running', now() - interval '3 days')",
    )
    .bind(range)
    .bind(live)
    .bind(chain)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query("UPDATE chains SET live_backfill_id = $2 WHERE name = $1")
        .bind(chain)
        .bind(live)
        .execute(&app.pool)
        .await
        .unwrap();
    (range, live)
}

/// Tuples of `batches` read by `one`'s backend (a single-connection pool) since its statistics
/// were last flushed: sequentially, fetched through indexes, and index entries (index-only scans
/// read no heap). Nothing is flushed inside a transaction block, so the difference of two
/// readings in one block is what ran between them.
async fn batch_tuples_read(one: &PgPool) -> (i64, i64, i64) {
    sqlx::query_as(
        "SELECT COALESCE(seq_tup_read, 0)::int8, COALESCE(idx_tup_fetch, 0)::int8, \
                (SELECT COALESCE(SUM(pg_stat_get_xact_tuples_returned(indexrelid)), 0)::int8 \
                 FROM pg_index WHERE indrelid = 'batches'::regclass) \
         FROM pg_stat_xact_user_tables WHERE relname = 'batches'",
    )
    .fetch_one(one)
    .await
    .unwrap()
}

fn since(before: (i64, i64, i64), after: (i64, i64, i64)) -> (i64, i64, i64) {
    (after.0 - before.0, after.1 - before.1, after.2 - before.2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_gaps_read_a_bounded_number_of_batch_rows_on_an_aged_chain() {
    let app = spawn_app(test_scheduler()).await;
    let anvil = Anvil::start().await.unwrap();
    app.register_chain("aged", &anvil.url, 10).await;
    let (range, live) = backfills(&app, "aged").await;

    // 150,000 historical and 50,000 live batches of 10 blocks, finished over three days, the
    // last 200 seconds ago; 400 needed a retry, 200 a redelivery, 100 failed (three distinct
    // errors) and 50 were split.
    sqlx::query(
        "INSERT INTO batches (id, chain, from_block, to_block, backfill_id, status, lane, attempts, \
                              deliveries, last_error, planned_at, started_at, finished_at) \
         SELECT 'aged:' || i * 10 || '-' || (i * 10 + 9), 'aged', i * 10, i * 10 + 9, \
                CASE WHEN i >= 150000 THEN $2 ELSE $1 END, \
                CASE WHEN i % 2000 = 11 THEN 'failed' WHEN i % 4000 = 13 THEN 'split' ELSE 'done' END, \
                CASE WHEN i >= 150000 THEN 'live' ELSE 'backfill' END, \
                CASE WHEN i % 2000 = 11 OR i % 4000 = 13 THEN 5 WHEN i % 500 = 7 THEN 2 ELSE 0 END, \
                CASE WHEN i % 1000 = 3 THEN 2 ELSE 1 END, \
                CASE WHEN i % 2000 = 11 THEN 'boom ' || i % 3 WHEN i % 4000 = 13 THEN 'poison' END, \
                t - interval '2 seconds', t - interval '1 second', t \
         FROM generate_series(0, $3 - 1) i, \
         LATERAL (SELECT CASE WHEN i >= $3 - 200 THEN now() - interval '2 seconds' \
                              ELSE now() - interval '3 days' + i * interval '1 second' END AS t) x",
    )
    .bind(range)
    .bind(live)
    .bind(ROWS)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::raw_sql("VACUUM ANALYZE batches")
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        app.count("SELECT count(*) FROM batches WHERE chain = 'aged'")
            .await,
        ROWS
    );
    let chain = chains::Entity::find_by_id("aged")
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();

    // One connection, so the answers' queries share one transaction and its statistics. Six
    // runs first: from the sixth on, PostgreSQL may plan prepared statements generically.
    let one = PgPoolOptions::new()
        .max_connections(1)
        .connect(&app.stores.database_url)
        .await
        .unwrap();
    // Parallel workers count their reads in their own backends: plan without them.
    sqlx::raw_sql("SET max_parallel_workers_per_gather = 0")
        .execute(&one)
        .await
        .unwrap();
    for _ in 0..6 {
        chain_status(&one, &chain).await.unwrap();
    }
    sqlx::raw_sql("BEGIN").execute(&one).await.unwrap();
    let before = batch_tuples_read(&one).await;
    let status = chain_status(&one, &chain).await.unwrap();
    let status_reads = since(before, batch_tuples_read(&one).await);
    sqlx::raw_sql("ROLLBACK").execute(&one).await.unwrap();

    let from = status.historical.from;
    let to = status.historical.to.expect("the head is known");
    for _ in 0..6 {
        gap_summary(&one, "aged", from, to).await.unwrap();
        gap_page(&one, "aged", from, to, None, 101).await.unwrap();
    }
    sqlx::raw_sql("BEGIN").execute(&one).await.unwrap();
    let before = batch_tuples_read(&one).await;
    gap_summary(&one, "aged", from, to).await.unwrap();
    gap_page(&one, "aged", from, to, None, 101).await.unwrap();
    let gaps_reads = since(before, batch_tuples_read(&one).await);
    sqlx::raw_sql("ROLLBACK").execute(&one).await.unwrap();
    eprintln!(
        "batches tuples read (seq_tup_read, idx_tup_fetch, index entries): status {status_reads:?}, gaps {gaps_reads:?}"
    );

    // The answer is still right.
    let work = &status.work;
    assert_eq!(work.retried_batches, 550, "{work:?}");
    assert_eq!(work.redelivered_batches, 200, "{work:?}");
    assert_eq!(work.failed_batches, 100, "{work:?}");
    assert_eq!(work.split_batches, 50, "{work:?}");
    let mut errors = work.last_errors.clone();
    errors.sort();
    assert_eq!(errors, ["boom 0", "boom 1", "boom 2", "poison"], "{work:?}");
    assert_eq!(status.live.last_live_block, Some(ROWS * 10 - 1));

    let total = |(seq, fetched, entries): (i64, i64, i64)| seq + fetched + entries;
    assert!(
        total(status_reads) < MAX_TUPLES,
        "one status answer read {status_reads:?} (seq_tup_read, idx_tup_fetch, index entries) \
         of {ROWS} batch rows"
    );
    assert!(
        total(gaps_reads) < MAX_TUPLES,
        "one gaps answer read {gaps_reads:?} of {ROWS} batch rows"
    );

    one.close().await;
    anvil.stop().await.unwrap();
    app.teardown().await;
}

/// Inserts live batches `[i * 10, i * 10 + 9]` for `i` in `[first, last]` of `chain`, owned by
/// `backfill`, with `status`, finished (or planned, when unfinished) `age_sql` ago.
async fn live_rows(
    app: &TestApp,
    chain: &str,
    backfill: Uuid,
    (first, last): (i64, i64),
    status: &str,
    age_sql: &str,
) {
    sqlx::query(
        "INSERT INTO batches (id, chain, from_block, to_block, backfill_id, status, lane, attempts, \
                              deliveries, last_error, planned_at, started_at, finished_at) \
         SELECT $1 || ':' || i * 10 || '-' || (i * 10 + 9), $1, i * 10, i * 10 + 9, $2, $3, 'live', \
                CASE WHEN $3 = 'failed' THEN 5 WHEN i % 100 = 5 THEN 1 ELSE 0 END, \
                CASE WHEN i % 150 = 7 THEN 2 ELSE 1 END, \
                CASE WHEN $3 = 'failed' THEN 'head not served' END, \
                t, t, CASE WHEN $3 IN ('done', 'failed') THEN t END \
         FROM generate_series($4::int8, $5::int8) i, \
         LATERAL (SELECT now() - $6::interval + i * interval '1 millisecond' AS t) x",
    )
    .bind(chain)
    .bind(backfill)
    .bind(status)
    .bind(first)
    .bind(last)
    .bind(age_sql)
    .execute(&app.pool)
    .await
    .unwrap();
}

/// What the live backfill's view counts of finished work.
fn finished_counts(view: &Value) -> Value {
    json!({
        "done": view["batches"]["done"],
        "failed": view["batches"]["failed"],
        "unfinished": view["batches"]["planned"].as_i64().unwrap()
            + view["batches"]["queued"].as_i64().unwrap()
            + view["batches"]["running"].as_i64().unwrap(),
        "blocks_done": view["blocks_done"],
        "retried_batches": view["retried_batches"],
        "failed_attempts": view["failed_attempts"],
        "redeliveries": view["redeliveries"],
        "last_errors": view["last_errors"],
    })
}

/// What the chain status counts.
async fn status_counts(app: &TestApp, chain: &str) -> Value {
    let (code, status) = app.get(&format!("/v1/chains/{chain}/status")).await;
    assert_eq!(code, StatusCode::OK, "{status}");
    json!({"work": status["work"], "last_live_block": status["live"]["last_live_block"]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_deletes_old_done_live_rows_and_keeps_every_count() {
    let app = spawn_app(test_scheduler()).await;
    let anvil = Anvil::start().await.unwrap();
    app.register_chain("busy", &anvil.url, 10).await;
    app.register_chain("idle", &anvil.url, 10).await;
    let (busy_range, busy_live) = backfills(&app, "busy").await;
    let (_, idle_live) = backfills(&app, "idle").await;

    // busy: 12,000 live batches done two days ago (120 needed a retry, 80 a redelivery), 200
    // done five minutes ago, 20 unfinished and 5 failed for two hours, and 500 old historical
    // batches. idle: 150 live batches done two days ago, nothing since. (The reconciler may
    // re-feed the unfinished ones meanwhile: they are counted together.)
    live_rows(&app, "busy", busy_live, (0, 11_999), "done", "2 days").await;
    live_rows(
        &app,
        "busy",
        busy_live,
        (12_000, 12_199),
        "done",
        "5 minutes",
    )
    .await;
    live_rows(
        &app,
        "busy",
        busy_live,
        (12_200, 12_209),
        "queued",
        "2 hours",
    )
    .await;
    live_rows(
        &app,
        "busy",
        busy_live,
        (12_210, 12_219),
        "running",
        "2 hours",
    )
    .await;
    live_rows(
        &app,
        "busy",
        busy_live,
        (12_220, 12_224),
        "failed",
        "2 hours",
    )
    .await;
    live_rows(&app, "busy", busy_range, (20_000, 20_499), "done", "2 days").await;
    sqlx::query("UPDATE batches SET lane = 'backfill' WHERE backfill_id = $1")
        .bind(busy_range)
        .execute(&app.pool)
        .await
        .unwrap();
    live_rows(&app, "idle", idle_live, (0, 149), "done", "2 days").await;

    let view_path = format!("/v1/backfills/{busy_live}");
    let (code, before) = app.get(&view_path).await;
    assert_eq!(code, StatusCode::OK, "{before}");
    let counts_before = finished_counts(&before);
    assert_eq!(
        counts_before,
        json!({
            "done": 12_200, "failed": 5, "unfinished": 20, "blocks_done": 122_000,
            "retried_batches": 128, "failed_attempts": 148, "redeliveries": 82,
            "last_errors": ["head not served"],
        }),
        "{before}"
    );
    let busy_before = status_counts(&app, "busy").await;
    let idle_before = status_counts(&app, "idle").await;
    assert_eq!(busy_before["last_live_block"], json!(121_999));
    assert_eq!(idle_before["last_live_block"], json!(1_499));

    // 12,000 old rows of busy and 50 of idle (beyond its newest 100) are due: two calls.
    assert_eq!(KEEP_NEWEST_PER_CHAIN, 100);
    assert_eq!(MAX_ROWS_PER_CALL, 10_000);
    let first = compact_live_batches(&app.pool, KEEP_RECENT).await.unwrap();
    let second = compact_live_batches(&app.pool, KEEP_RECENT).await.unwrap();
    let third = compact_live_batches(&app.pool, KEEP_RECENT).await.unwrap();
    assert_eq!((first, second, third), (10_000, 2_050, 0));

    let left = |sql: &'static str| app.count(sql);
    assert_eq!(
        left("SELECT count(*) FROM batches WHERE chain = 'busy' AND lane = 'live' AND status = 'done'")
            .await,
        200,
        "the recent done live rows stay"
    );
    assert_eq!(
        left("SELECT count(*) FROM batches WHERE chain = 'busy' AND lane = 'live' AND status <> 'done'")
            .await,
        25,
        "unfinished and failed live rows stay, however old"
    );
    assert_eq!(
        left("SELECT count(*) FROM batches WHERE chain = 'busy' AND lane = 'backfill'").await,
        500,
        "historical rows are not compacted"
    );
    assert_eq!(
        left("SELECT count(*) FROM batches WHERE chain = 'idle'").await,
        100,
        "an idle chain keeps its newest live rows"
    );
    assert_eq!(
        left("SELECT min(to_block) FROM batches WHERE chain = 'idle'").await,
        509
    );

    let (code, after) = app.get(&view_path).await;
    assert_eq!(code, StatusCode::OK, "{after}");
    assert_eq!(
        finished_counts(&after),
        counts_before,
        "the live backfill counts what it finished, compacted or not: {after}"
    );
    assert_eq!(status_counts(&app, "busy").await, busy_before);
    assert_eq!(status_counts(&app, "idle").await, idle_before);

    anvil.stop().await.unwrap();
    app.teardown().await;
}
