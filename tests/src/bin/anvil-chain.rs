//! `anvil-chain`: starts the test harness's Anvil node, mines a chain of the given shape on it,
//! prints `anvil-chain: ready at URL ...`, and serves it until stdin closes or the process is
//! stopped. For benchmarks against a real node: `scripts/bench.sh` starts it, then points
//! `blockfill bench --rpc-url` at the URL.

use std::io::Write as _;

use anyhow::Context as _;
use blockfill_tests::anvil::{Anvil, ChainSpec};
use tokio::io::AsyncReadExt as _;

const USAGE: &str = "usage: anvil-chain BLOCKS TX_EVERY TXS_PER_BLOCK   (e.g. 750000 10 2: one block in ten with 2 transactions, every other one a log)";

fn arg(args: &[String], index: usize, name: &str) -> anyhow::Result<u64> {
    args.get(index)
        .with_context(|| format!("missing {name}\n{USAGE}"))?
        .replace('_', "")
        .parse()
        .with_context(|| format!("{name} must be a whole number\n{USAGE}"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let spec = ChainSpec {
        blocks: arg(&args, 0, "BLOCKS")?,
        tx_every: arg(&args, 1, "TX_EVERY")?,
        txs_per_block: arg(&args, 2, "TXS_PER_BLOCK")?,
    };
    let anvil = Anvil::start().await.context("starting anvil")?;
    let summary = anvil
        .build_chain(spec)
        .await
        .with_context(|| format!("building {spec:?}"))?;
    println!(
        "anvil-chain: ready at {} (head {}, {} transactions, {} logs, built in {:.1}s, {:.0} blocks/s)",
        anvil.url,
        summary.head,
        summary.transactions,
        summary.logs,
        summary.seconds,
        spec.blocks as f64 / summary.seconds
    );
    std::io::stdout().flush()?;
    // Serve until whoever started us closes our stdin (or stops us).
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    anvil.stop().await
}
