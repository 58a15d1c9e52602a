//! Writing a batch twice leaves identical rows; `verify` finds tampered, missing and extra rows.

use std::sync::Arc;

use blockfill_activities::{BlockRange, ChainName, ChainSource, write::write_batch};
use blockfill_devnet::{DevnetChain, DevnetConfig};
use blockfill_orchestrator::verify::verify_range;
use blockfill_tests::app::{spawn_app, test_scheduler};

async fn fingerprint(pool: &sea_orm::sqlx::PgPool) -> (String, String, String) {
    let q = |table: &str, order: &str| {
        format!("SELECT md5(string_agg(t::text, '|' ORDER BY {order})) FROM {table} t")
    };
    let mut out = Vec::new();
    for (table, order) in [
        ("blocks", "number"),
        ("transactions", "block_number, tx_index"),
        ("logs", "block_number, log_index"),
    ] {
        let (hash,): (Option<String>,) =
            sea_orm::sqlx::query_as(sea_orm::sqlx::AssertSqlSafe(q(table, order)))
                .fetch_one(pool)
                .await
                .unwrap();
        out.push(hash.unwrap_or_default());
    }
    (out[0].clone(), out[1].clone(), out[2].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writing_twice_changes_nothing_and_verify_catches_every_difference() {
    let app = spawn_app(test_scheduler()).await;
    let devnet = Arc::new(DevnetChain::new(DevnetConfig {
        blocks: 500,
        ..DevnetConfig::default()
    }));
    sea_orm::sqlx::query("INSERT INTO chains (name, rpc_urls) VALUES ('w', '[]')")
        .execute(&app.pool)
        .await
        .unwrap();
    let chain = ChainName::parse("w").unwrap();
    let range = BlockRange::new(0, 499).unwrap();
    let bundle = devnet.fetch_range(range).await.unwrap();
    let first = write_batch(&app.pool, &chain, range, None, &bundle)
        .await
        .unwrap();
    assert_eq!(first.blocks_inserted, 500);
    assert!(first.transactions_inserted > 0 && first.logs_inserted > 0);
    let before = fingerprint(&app.pool).await;
    // Overlapping and repeated writes.
    let again = write_batch(&app.pool, &chain, range, None, &bundle)
        .await
        .unwrap();
    assert_eq!(
        (
            again.blocks_inserted,
            again.transactions_inserted,
            again.logs_inserted
        ),
        (0, 0, 0)
    );
    let part = BlockRange::new(100, 199).unwrap();
    write_batch(
        &app.pool,
        &chain,
        part,
        None,
        &devnet.fetch_range(part).await.unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(
        fingerprint(&app.pool).await,
        before,
        "a second write changed rows"
    );
    assert_eq!(app.count("SELECT count(*) FROM coverage").await, 1);

    let clean = verify_range(&app.pool, &chain, devnet.as_ref(), range, 128)
        .await
        .unwrap();
    assert!(clean.is_clean(), "{:?}", clean.mismatches);
    assert_eq!(clean.blocks_checked, 500);
    assert_eq!(
        clean.transactions_checked as usize,
        bundle.transactions.len()
    );
    assert_eq!(clean.logs_checked as usize, bundle.logs.len());

    // Tamper: a wrong hash, a lost log, a lost block, an extra transaction.
    let log = &bundle.logs[0];
    for sql in [
        "UPDATE blocks SET hash = '0xbad' WHERE chain = 'w' AND number = 5".to_owned(),
        format!("DELETE FROM logs WHERE chain = 'w' AND block_number = {} AND log_index = {}", log.block_number, log.log_index),
        "DELETE FROM blocks WHERE chain = 'w' AND number = 300".to_owned(),
        "INSERT INTO transactions SELECT chain, block_number, tx_index + 100, hash, from_address, to_address, value, nonce, gas, gas_price, input, tx_type FROM transactions WHERE chain = 'w' LIMIT 1".to_owned(),
    ] {
        sea_orm::sqlx::query(sea_orm::sqlx::AssertSqlSafe(sql)).execute(&app.pool).await.unwrap();
    }
    let dirty = verify_range(&app.pool, &chain, devnet.as_ref(), range, 128)
        .await
        .unwrap();
    assert_eq!(dirty.mismatch_count, 4, "{:#?}", dirty.mismatches);
    assert!(
        dirty
            .mismatches
            .iter()
            .any(|m| m.starts_with("block 5: hash 0xbad"))
    );
    assert!(
        dirty
            .mismatches
            .iter()
            .any(|m| m.contains("block 300: missing"))
    );
    assert!(dirty.mismatches.iter().any(|m| m.contains("log 0 missing")));
    assert!(
        dirty
            .mismatches
            .iter()
            .any(|m| m.contains("but not on the node"))
    );
    app.teardown().await;
}

/// The rows of `chain` in each index table, without the chain column, hashed in key order.
async fn chain_fingerprint(pool: &sea_orm::sqlx::PgPool, chain: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for (table, order) in [
        ("blocks", "number"),
        ("transactions", "block_number, tx_index"),
        ("logs", "block_number, log_index"),
    ] {
        let sql = format!(
            "SELECT md5(string_agg((to_jsonb(t) - 'chain')::text, '|' ORDER BY {order})) \
             FROM {table} t WHERE chain = $1"
        );
        let (hash,): (Option<String>,) = sea_orm::sqlx::query_as(sea_orm::sqlx::AssertSqlSafe(sql))
            .bind(chain)
            .fetch_one(pool)
            .await
            .unwrap();
        out.push(hash);
    }
    out
}

/// Batches written in any order, overlapping and repeated (re-deliveries, a second run), leave
/// exactly the rows and the coverage of writing each block once.
#[test]
fn writes_in_any_order_and_any_number_leave_the_rows_of_one_write() {
    use blockfill_orchestrator::app::prepare_database;
    use blockfill_tests::app::{drop_stores, fresh_stores};
    use proptest::{prelude::*, test_runner::TestRunner};

    const BLOCKS: u64 = 120;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let stores = fresh_stores();
    let conn = runtime.block_on(prepare_database(&stores, 4)).unwrap();
    let pool = conn.get_postgres_connection_pool().clone();
    let devnet = DevnetChain::new(DevnetConfig {
        blocks: BLOCKS,
        ..DevnetConfig::default()
    });
    let whole = BlockRange::new(0, BLOCKS - 1).unwrap();
    let reference = runtime.block_on(async {
        sea_orm::sqlx::query("INSERT INTO chains (name, rpc_urls) VALUES ('once', '[]')")
            .execute(&pool)
            .await
            .unwrap();
        let bundle = devnet.fetch_range(whole).await.unwrap();
        let chain = ChainName::parse("once").unwrap();
        write_batch(&pool, &chain, whole, None, &bundle)
            .await
            .unwrap();
        chain_fingerprint(&pool, "once").await
    });
    let case = std::sync::atomic::AtomicU32::new(0);
    let batches = prop::collection::vec(
        (0..BLOCKS, 1..30u64).prop_map(|(from, len)| (from, (from + len - 1).min(BLOCKS - 1))),
        1..20,
    );
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 24,
        ..ProptestConfig::default()
    });
    let outcome = runner.run(&batches, |batches| {
        let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("many{n}");
        runtime.block_on(async {
            sea_orm::sqlx::query("INSERT INTO chains (name, rpc_urls) VALUES ($1, '[]')")
                .bind(&name)
                .execute(&pool)
                .await
                .unwrap();
            let chain = ChainName::parse(&name).unwrap();
            // The random batches, then every block once more (so the whole range is written):
            // a second run over what the first wrote.
            let mut ranges: Vec<BlockRange> = batches
                .iter()
                .map(|(from, to)| BlockRange::new(*from, *to).unwrap())
                .collect();
            ranges.push(whole);
            ranges.extend(ranges.clone());
            for range in &ranges {
                let bundle = devnet.fetch_range(*range).await.unwrap();
                write_batch(&pool, &chain, *range, None, &bundle)
                    .await
                    .unwrap();
            }
            prop_assert_eq!(chain_fingerprint(&pool, &name).await, reference.clone());
            let coverage: Vec<(i64, i64)> = sea_orm::sqlx::query_as(
                "SELECT start_block, end_block FROM coverage WHERE chain = $1",
            )
            .bind(&name)
            .fetch_all(&pool)
            .await
            .unwrap();
            prop_assert_eq!(coverage, vec![(0, BLOCKS as i64 - 1)]);
            Ok(())
        })
    });
    runtime.block_on(drop_stores(&stores));
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

/// Deliveries of one batch running at once (a re-delivery while the first still writes) take
/// turns: every one succeeds, one of them inserts the rows, and the rows are there once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_of_one_range_take_turns_and_leave_one_copy() {
    let app = spawn_app(test_scheduler()).await;
    let devnet = DevnetChain::new(DevnetConfig {
        blocks: 400,
        transactions_per_block: Some(20),
        logs_per_transaction: Some(2),
        ..DevnetConfig::default()
    });
    for name in ["once", "racing"] {
        sea_orm::sqlx::query("INSERT INTO chains (name, rpc_urls) VALUES ($1, '[]')")
            .bind(name)
            .execute(&app.pool)
            .await
            .unwrap();
    }
    let range = BlockRange::new(100, 299).unwrap();
    let bundle = devnet.fetch_range(range).await.unwrap();
    write_batch(
        &app.pool,
        &ChainName::parse("once").unwrap(),
        range,
        None,
        &bundle,
    )
    .await
    .unwrap();
    let racing = ChainName::parse("racing").unwrap();
    let outcomes = futures::future::join_all(
        (0..6).map(|_| write_batch(&app.pool, &racing, range, None, &bundle)),
    )
    .await;
    let inserted: Vec<u64> = outcomes
        .into_iter()
        .map(|o| o.expect("every delivery succeeds").blocks_inserted)
        .collect();
    assert_eq!(
        inserted.iter().filter(|n| **n == 200).count(),
        1,
        "{inserted:?}"
    );
    assert_eq!(inserted.iter().sum::<u64>(), 200, "{inserted:?}");
    assert_eq!(
        chain_fingerprint(&app.pool, "racing").await,
        chain_fingerprint(&app.pool, "once").await
    );
    assert_eq!(
        app.count("SELECT count(*) FROM logs WHERE chain = 'racing'")
            .await,
        200 * 20 * 2
    );
    app.teardown().await;
}
