//! The coverage SQL against its reference: the merge that `write::add_coverage` does in
//! PostgreSQL and the gap queries of the status answer are checked, on random ledgers, against
//! the plain interval arithmetic of `ranges::{merge, gaps}`.

use blockfill_activities::{BlockRange, ChainName, ranges, write::add_coverage};
use blockfill_orchestrator::{
    api::status::{gap_page, gap_summary},
    app::prepare_database,
};
use blockfill_tests::app::{drop_stores, fresh_stores};
use proptest::{prelude::*, test_runner::TestRunner};
use sea_orm::sqlx::{self, PgPool};

/// Blocks the random ledgers live in.
const SPAN: u64 = 300;

fn ranges_in_span() -> impl Strategy<Value = Vec<BlockRange>> {
    prop::collection::vec(
        (0..SPAN, 0..40u64).prop_map(|(from, len)| BlockRange {
            from,
            to: (from + len).min(SPAN - 1),
        }),
        0..25,
    )
}

fn window() -> impl Strategy<Value = BlockRange> {
    (0..SPAN + 20, 0..SPAN).prop_map(|(from, len)| BlockRange {
        from,
        to: from + len,
    })
}

async fn stored_coverage(pool: &PgPool, chain: &str) -> Vec<BlockRange> {
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT start_block, end_block FROM coverage WHERE chain = $1 ORDER BY start_block",
    )
    .bind(chain)
    .fetch_all(pool)
    .await
    .expect("read coverage");
    rows.into_iter()
        .map(|(s, e)| BlockRange {
            from: s as u64,
            to: e as u64,
        })
        .collect()
}

#[test]
fn coverage_merge_and_gap_sql_agree_with_the_reference() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let stores = fresh_stores();
    let conn = runtime
        .block_on(prepare_database(&stores, 4))
        .expect("database");
    let pool = conn.get_postgres_connection_pool().clone();
    let case = std::sync::atomic::AtomicU32::new(0);
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    });
    let outcome = runner.run(&(ranges_in_span(), window()), |(written, within)| {
        let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let chain = format!("prop{n}");
        runtime.block_on(async {
            let name = ChainName::parse(&chain).expect("chain name");
            sqlx::query("INSERT INTO chains (name, rpc_urls) VALUES ($1, '[]')")
                .bind(&chain)
                .execute(&pool)
                .await
                .expect("register the chain");
            // One transaction per range, as every batch write does.
            for range in &written {
                let mut tx = pool.begin().await.expect("begin");
                add_coverage(&mut tx, &name, *range).await.expect("merge");
                tx.commit().await.expect("commit");
            }
            let merged = ranges::merge(written.clone());
            let stored = stored_coverage(&pool, &chain).await;
            prop_assert_eq!(&stored, &merged, "the ledger after writing {:?}", written);

            let expected = ranges::gaps(&merged, within);
            let (from, to) = (within.from as i64, within.to as i64);
            let page = gap_page(&pool, &chain, from, to, None, 1_000)
                .await
                .expect("gap page");
            let page: Vec<BlockRange> = page
                .iter()
                .map(|g| BlockRange {
                    from: g.start as u64,
                    to: g.end as u64,
                })
                .collect();
            prop_assert_eq!(&page, &expected, "gaps of {:?} in {}", merged, within);
            // Paging after the first gap gives the rest.
            if let Some(first) = expected.first() {
                let rest = gap_page(&pool, &chain, from, to, Some(first.from as i64), 1_000)
                    .await
                    .expect("gap page");
                prop_assert_eq!(rest.len(), expected.len() - 1);
            }

            let summary = gap_summary(&pool, &chain, from, to)
                .await
                .expect("gap summary");
            let missing: u64 = expected.iter().map(BlockRange::len).sum();
            prop_assert_eq!(summary.missing as u64, missing);
            prop_assert_eq!(summary.indexed as u64, within.len() - missing);
            prop_assert_eq!(summary.gap_count as usize, expected.len());
            let largest = expected
                .iter()
                .max_by(|a, b| a.len().cmp(&b.len()).then(b.from.cmp(&a.from)))
                .map(|g| (g.from as i64, g.to as i64));
            prop_assert_eq!(summary.largest, largest);
            prop_assert_eq!(
                summary.oldest_start,
                expected.first().map(|g| g.from as i64)
            );
            Ok(())
        })
    });
    runtime.block_on(drop_stores(&stores));
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}
