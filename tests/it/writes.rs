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
