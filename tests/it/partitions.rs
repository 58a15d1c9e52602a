//! The index tables are partitioned by block number (spans of 1,000,000 blocks): writes make the
//! partitions they need, rows land in the partition of their block, and an unwind touches only
//! the partitions above its ancestor.

use std::{collections::BTreeSet, sync::Arc};

use blockfill_activities::{
    BlockRange, ChainName, ChainSource, store::repair::unwind_above, write::write_batch,
};
use blockfill_devnet::{DevnetChain, DevnetConfig};
use blockfill_tests::app::{spawn_app, test_scheduler};
use sea_orm::sqlx::{self, PgPool};

/// Rows of `table` per partition, by partition name.
async fn rows_by_partition(pool: &PgPool, table: &str) -> Vec<(String, i64)> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT tableoid::regclass::text, count(*) FROM {table} GROUP BY 1 ORDER BY 1"
    )))
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_make_their_partitions_and_an_unwind_touches_only_the_last_one() {
    let app = spawn_app(test_scheduler()).await;
    let partitions = |table: &'static str| {
        let pool = app.pool.clone();
        async move {
            let names: Vec<(String,)> = sqlx::query_as(
                "SELECT inhrelid::regclass::text FROM pg_inherits \
                 WHERE inhparent = $1::regclass ORDER BY 1",
            )
            .bind(table)
            .fetch_all(&pool)
            .await
            .unwrap();
            names.into_iter().map(|(n,)| n).collect::<Vec<_>>()
        }
    };
    assert!(
        partitions("blocks").await.is_empty(),
        "a fresh database has no partitions yet"
    );

    let devnet = Arc::new(DevnetChain::new(DevnetConfig {
        blocks: 2_100_000,
        ..DevnetConfig::default()
    }));
    sqlx::query("INSERT INTO chains (name, rpc_urls) VALUES ('parts', '[]')")
        .execute(&app.pool)
        .await
        .unwrap();
    let chain = ChainName::parse("parts").unwrap();
    // One range across the first partition boundary, one in the third partition.
    for (from, to) in [(999_900, 1_000_099), (2_000_000, 2_000_199)] {
        let range = BlockRange::new(from, to).unwrap();
        let bundle = devnet.fetch_range(range).await.unwrap();
        write_batch(&app.pool, &chain, range, None, &bundle)
            .await
            .unwrap();
    }
    for table in ["blocks", "transactions", "logs"] {
        assert_eq!(
            partitions(table).await,
            ["_p0000", "_p0001", "_p0002"]
                .map(|suffix| format!("{table}{suffix}"))
                .to_vec(),
            "the partitions of {table}"
        );
    }
    assert_eq!(
        rows_by_partition(&app.pool, "blocks").await,
        vec![
            ("blocks_p0000".to_owned(), 100),
            ("blocks_p0001".to_owned(), 100),
            ("blocks_p0002".to_owned(), 200),
        ]
    );
    let logs_before = rows_by_partition(&app.pool, "logs").await;
    assert_eq!(
        logs_before.len(),
        3,
        "devnet blocks carry logs: {logs_before:?}"
    );

    // A reorg unwind above block 2,000,099, in the repair's transaction: it locks (so reads or
    // writes) only the third partition of each table, and deletes only there.
    let mut tx = app.pool.begin().await.unwrap();
    unwind_above(&mut tx, "parts", 2_000_099).await.unwrap();
    let locked: Vec<(String,)> = sqlx::query_as(
        "SELECT relation::regclass::text FROM pg_locks \
         WHERE pid = pg_backend_pid() AND locktype = 'relation' \
           AND relation IN (SELECT i.inhrelid FROM pg_inherits i \
                            JOIN pg_class c ON c.oid = i.inhrelid WHERE c.relkind = 'r')",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    let locked: BTreeSet<String> = locked.into_iter().map(|(n,)| n).collect();
    assert_eq!(
        locked,
        ["blocks_p0002", "transactions_p0002", "logs_p0002"]
            .map(str::to_owned)
            .into(),
        "the partitions the unwind touched"
    );
    tx.commit().await.unwrap();
    assert_eq!(
        rows_by_partition(&app.pool, "blocks").await,
        vec![
            ("blocks_p0000".to_owned(), 100),
            ("blocks_p0001".to_owned(), 100),
            ("blocks_p0002".to_owned(), 100),
        ]
    );
    let logs_after = rows_by_partition(&app.pool, "logs").await;
    assert_eq!(logs_after[..2], logs_before[..2], "lower partitions kept");
    assert!(
        logs_after[2].1 < logs_before[2].1,
        "logs above 2,000,099 went"
    );
}
