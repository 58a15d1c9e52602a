//! `blockfill verify`: compares the index tables with the node, block by block: hash, parent
//! hash, transaction count and hashes, log count and identities. Any difference is a mismatch.
//!
//! [`run`] is the command (flags in [`VerifyArgs`]); [`verify_range`] is the comparison, which
//! the tests also call.

use std::{collections::BTreeMap, time::Duration};

use anyhow::Context as _;
use blockfill_activities::{
    BlockRange, ChainName, ChainSource,
    backoff::Backoff,
    db,
    entity::chains,
    ranges::aligned_batches,
    settings::StoreArgs,
    source::{EndpointConfig, EndpointPool, PoolSettings},
    store::{self, indexed},
};
use clap::Args;
use sea_orm::sqlx::PgPool;

/// Flags of `blockfill verify`.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// PostgreSQL and Redis.
    #[command(flatten)]
    pub stores: StoreArgs,
    /// Chain name.
    #[arg(long)]
    pub chain: String,
    /// First block.
    #[arg(long)]
    pub from: u64,
    /// Last block (inclusive).
    #[arg(long)]
    pub to: u64,
    /// RPC URL to compare with (default: the chain's first RPC URL).
    #[arg(long)]
    pub rpc_url: Option<String>,
}

/// `blockfill verify`: compares the chain's range in the database with the node (the chain's
/// endpoints, or `--rpc-url`), prints one `MISMATCH` line per difference and a summary line.
/// Returns whether the database equals the node.
pub async fn run(args: VerifyArgs) -> anyhow::Result<bool> {
    let VerifyArgs {
        stores,
        chain,
        from,
        to,
        rpc_url,
    } = args;
    let chain = ChainName::parse(&chain)?;
    let range = BlockRange::new(from, to)?;
    let conn = db::connect(&stores.database_url, 4).await?;
    let row = store::chains::find(&conn, chain.as_str()).await?;
    // The node must serve the registered chain (a node of another chain would only report
    // mismatches).
    let expected = row
        .as_ref()
        .map(chains::Model::identity)
        .unwrap_or_default();
    let endpoints = match rpc_url {
        Some(url) => vec![EndpointConfig::new(url)],
        None => row
            .with_context(|| format!("chain {chain} is not registered"))?
            .endpoints(),
    };
    anyhow::ensure!(!endpoints.is_empty(), "chain {chain} has no RPC URL");
    let url = endpoints
        .iter()
        .map(|e| e.url.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let source = EndpointPool::connect(
        chain.as_str(),
        &endpoints,
        expected,
        PoolSettings::default(),
    )?;
    let report = verify_range(
        conn.get_postgres_connection_pool(),
        &chain,
        &source,
        range,
        1_000,
    )
    .await?;
    for line in &report.mismatches {
        println!("MISMATCH {line}");
    }
    println!(
        "verified chain {chain} blocks {range} against {url}: {} blocks, {} transactions, {} logs, {} mismatches",
        report.blocks_checked,
        report.transactions_checked,
        report.logs_checked,
        report.mismatch_count
    );
    Ok(report.is_clean())
}

/// What a verification found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Blocks compared.
    pub blocks_checked: u64,
    /// Transactions compared.
    pub transactions_checked: u64,
    /// Logs compared.
    pub logs_checked: u64,
    /// One line per difference (at most the first 1,000).
    pub mismatches: Vec<String>,
    /// Number of differences.
    pub mismatch_count: u64,
}

impl VerifyReport {
    fn mismatch(&mut self, line: String) {
        self.mismatch_count += 1;
        if self.mismatches.len() < 1_000 {
            self.mismatches.push(line);
        }
    }

    /// True when the database equals the node over the range.
    pub fn is_clean(&self) -> bool {
        self.mismatch_count == 0
    }
}

/// Compares `range` of `chain` in the database with `source`, `chunk` blocks at a time.
pub async fn verify_range(
    pool: &PgPool,
    chain: &ChainName,
    source: &dyn ChainSource,
    range: BlockRange,
    chunk: u64,
) -> anyhow::Result<VerifyReport> {
    let mut report = VerifyReport::default();
    for part in aligned_batches(range, chunk.max(1)) {
        let node = fetch_with_retries(source, part).await?;
        let db_blocks = indexed::blocks(pool, chain, part).await?;
        let db_txs = indexed::transactions(pool, chain, part).await?;
        let db_logs = indexed::logs(pool, chain, part).await?;

        for block in &node.blocks {
            report.blocks_checked += 1;
            let n = block.number as i64;
            match db_blocks.get(&n) {
                None => report.mismatch(format!("block {n}: missing from the database")),
                Some((hash, parent, txs, logs)) => {
                    if *hash != block.hash {
                        report.mismatch(format!(
                            "block {n}: hash {hash} in the database, {} on the node",
                            block.hash
                        ));
                    }
                    if *parent != block.parent_hash {
                        report.mismatch(format!(
                            "block {n}: parent hash {parent} in the database, {} on the node",
                            block.parent_hash
                        ));
                    }
                    if *txs as u32 != block.tx_count {
                        report.mismatch(format!(
                            "block {n}: tx_count {txs} in the database, {} on the node",
                            block.tx_count
                        ));
                    }
                    if *logs as u32 != block.log_count {
                        report.mismatch(format!(
                            "block {n}: log_count {logs} in the database, {} on the node",
                            block.log_count
                        ));
                    }
                }
            }
        }
        let node_txs: BTreeMap<(i64, i32), &str> = node
            .transactions
            .iter()
            .map(|t| ((t.block_number as i64, t.tx_index as i32), t.hash.as_str()))
            .collect();
        report.transactions_checked += node_txs.len() as u64;
        compare_rows(
            &mut report,
            "transaction",
            &node_txs,
            &db_txs.iter().map(|(k, v)| (*k, v.as_str())).collect(),
        );
        let node_logs: BTreeMap<(i64, i32), (&str, &str)> = node
            .logs
            .iter()
            .map(|l| {
                (
                    (l.block_number as i64, l.log_index as i32),
                    (l.tx_hash.as_str(), l.address.as_str()),
                )
            })
            .collect();
        report.logs_checked += node_logs.len() as u64;
        compare_rows(
            &mut report,
            "log",
            &node_logs,
            &db_logs
                .iter()
                .map(|(k, (t, a))| (*k, (t.as_str(), a.as_str())))
                .collect(),
        );
    }
    Ok(report)
}

fn compare_rows<V: PartialEq + std::fmt::Debug>(
    report: &mut VerifyReport,
    what: &str,
    node: &BTreeMap<(i64, i32), V>,
    db: &BTreeMap<(i64, i32), V>,
) {
    for (key, value) in node {
        match db.get(key) {
            None => report.mismatch(format!(
                "block {}: {what} {} missing from the database",
                key.0, key.1
            )),
            Some(stored) if stored != value => report.mismatch(format!(
                "block {}: {what} {} is {stored:?} in the database, {value:?} on the node",
                key.0, key.1
            )),
            Some(_) => {}
        }
    }
    for key in db.keys().filter(|k| !node.contains_key(k)) {
        report.mismatch(format!(
            "block {}: {what} {} is in the database but not on the node",
            key.0, key.1
        ));
    }
}

/// Fetches `range`, retrying transient failures (a busy node must not fail a verification).
/// How verify retries a failed fetch: four retries, from 250 ms doubling.
const FETCH_BACKOFF: Backoff =
    Backoff::new(Duration::from_millis(250), Duration::from_secs(2)).with_retries(4);

async fn fetch_with_retries(
    source: &dyn ChainSource,
    range: BlockRange,
) -> Result<blockfill_activities::BlockBundle, blockfill_activities::source::SourceError> {
    let mut delays = FETCH_BACKOFF.delays();
    loop {
        match source.fetch_range(range).await {
            Ok(bundle) => return Ok(bundle),
            Err(e) => match delays.next() {
                Some(retry_in) => {
                    tracing::warn!(target: "blockfill::verify", %range, error = %e, ?retry_in, "fetch failed; retrying");
                    tokio::time::sleep(retry_in).await;
                }
                None => return Err(e),
            },
        }
    }
}
