//! Tests of the Anvil harness against real nodes: starting, mining, deterministic builds,
//! reorgs and RPC errors.

use std::time::Instant;

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};

use super::binary::is_executable;
use super::*;

fn block_field(block: &Value, field: &str) -> Result<u64> {
    parse_quantity(
        block
            .get(field)
            .with_context(|| format!("block without {field}"))?,
    )
}

fn str_field<'a>(value: &'a Value, field: &str) -> Result<&'a str> {
    value
        .get(field)
        .and_then(Value::as_str)
        .with_context(|| format!("no {field} in {value}"))
}

/// Checks that blocks `from..=to` link by parent hash (and to block `from - 1`).
async fn assert_chain_links(anvil: &Anvil, from: u64, to: u64) -> Result<()> {
    let first = from.saturating_sub(1);
    let calls: Vec<(&str, Value)> = (first..=to)
        .map(|n| ("eth_getBlockByNumber", json!([quantity(n), false])))
        .collect();
    let blocks = anvil.rpc_batch(&calls).await?;
    for pair in blocks.windows(2) {
        ensure!(
            str_field(&pair[1], "parentHash")? == str_field(&pair[0], "hash")?,
            "block {} does not link to its parent",
            block_field(&pair[1], "number")?
        );
    }
    Ok(())
}

#[test]
fn binary_is_found() -> Result<()> {
    let started = Instant::now();
    let path = anvil_binary()?;
    eprintln!(
        "anvil_binary: {} in {:?}",
        path.display(),
        started.elapsed()
    );
    ensure!(is_executable(&path));
    Ok(())
}

#[test]
fn runtime_is_the_tail_of_the_init_code() {
    // PUSH1 0x2d PUSH1 0x0c PUSH1 0 CODECOPY PUSH1 0x2d PUSH1 0 RETURN: returns the 45
    // bytes after the 12-byte constructor.
    assert_eq!(
        &LOG_CONTRACT_INIT_CODE[2 + 24..],
        &LOG_CONTRACT_RUNTIME[2..]
    );
    assert_eq!(LOG_CONTRACT_RUNTIME.len(), 2 + 2 * 0x2d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_20k_blocks() -> Result<()> {
    let started = Instant::now();
    let anvil = Anvil::start().await?;
    eprintln!("start: {:?}", started.elapsed());
    let spec = ChainSpec {
        blocks: 20_000,
        tx_every: 10,
        txs_per_block: 2,
    };
    let summary = anvil.build_chain(spec).await?;
    eprintln!("build_chain {spec:?}: {summary:?}");
    ensure!(
        summary.first_block == 1 && summary.head == 20_000,
        "{summary:?}"
    );
    ensure!(
        summary.transactions == 4_000 && summary.logs == 2_000,
        "{summary:?}"
    );
    ensure!(anvil.block_number().await? == 20_000);

    // Every block: number, timestamp, parent link, transaction count.
    let checked = Instant::now();
    let mut parent = String::new();
    let mut tx_count = 0;
    for start in (0..=20_000u64).step_by(500) {
        let end = (start + 499).min(20_000);
        let calls: Vec<(&str, Value)> = (start..=end)
            .map(|n| ("eth_getBlockByNumber", json!([quantity(n), false])))
            .collect();
        for (block, n) in anvil.rpc_batch(&calls).await?.iter().zip(start..) {
            ensure!(block_field(block, "number")? == n);
            ensure!(block_field(block, "timestamp")? == GENESIS_TIMESTAMP + n * BLOCK_TIME_SECS);
            if n > 0 {
                ensure!(
                    str_field(block, "parentHash")? == parent,
                    "block {n} parent"
                );
            }
            parent = str_field(block, "hash")?.to_owned();
            let txs = block["transactions"].as_array().map_or(0, Vec::len) as u64;
            let expected = if n > 0 && n % 10 == 0 { 2 } else { 0 };
            ensure!(
                txs == expected,
                "block {n} has {txs} transactions, expected {expected}"
            );
            tx_count += txs;
        }
    }
    ensure!(tx_count == 4_000);

    // Transaction blocks: a transfer then a call, from the rotating sender.
    let calls: Vec<(&str, Value)> = (1..=2_000u64)
        .map(|k| ("eth_getBlockByNumber", json!([quantity(k * 10), true])))
        .collect();
    let mut blocks = Vec::new();
    for chunk in calls.chunks(500) {
        blocks.extend(anvil.rpc_batch(chunk).await?);
    }
    for (block, k) in blocks.iter().zip(1u64..) {
        let txs = block["transactions"].as_array().context("transactions")?;
        let sender = &anvil.accounts()[(k % 10) as usize];
        for tx in txs {
            ensure!(str_field(tx, "from")? == sender);
        }
        ensure!(str_field(&txs[0], "input")? == "0x");
        ensure!(str_field(&txs[0], "to")? == anvil.accounts()[((k + 1) % 10) as usize]);
        ensure!(str_field(&txs[1], "to")? == LOG_CONTRACT);
    }

    // Logs: exactly one per transaction block, from the second transaction.
    let mut logs = Vec::new();
    for from in (0..=20_000u64).step_by(2_000) {
        let filter =
            json!({"fromBlock": quantity(from), "toBlock": quantity((from + 1_999).min(20_000))});
        let got = anvil.rpc("eth_getLogs", json!([filter])).await?;
        logs.extend(got.as_array().context("logs")?.iter().cloned());
    }
    ensure!(logs.len() == 2_000, "{} logs", logs.len());
    for (log, k) in logs.iter().zip(1u64..) {
        let n = k * 10;
        ensure!(block_field(log, "blockNumber")? == n);
        ensure!(block_field(log, "transactionIndex")? == 1);
        ensure!(str_field(log, "address")? == LOG_CONTRACT);
        ensure!(log["topics"][0] == TRANSFER_TOPIC);
        ensure!(str_field(log, "data")? == format!("0x{:064x}", u128::from(n) << 32 | 1));
        ensure!(str_field(log, "blockHash")? == str_field(&blocks[(k - 1) as usize], "hash")?);
    }
    eprintln!(
        "verified 20,001 blocks, 4,000 transactions, 2,000 logs in {:?}",
        checked.elapsed()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_are_deterministic() -> Result<()> {
    let spec = ChainSpec {
        blocks: 300,
        tx_every: 7,
        txs_per_block: 3,
    };
    let (a, b) = tokio::try_join!(Anvil::start(), Anvil::start())?;
    let (sa, sb) = tokio::try_join!(a.build_chain(spec), b.build_chain(spec))?;
    ensure!(
        sa.head == 300 && sa.transactions == 42 * 3 && sa.logs == 63,
        "{sa:?}"
    );
    ensure!(sa.transactions == sb.transactions && sa.logs == sb.logs);
    ensure!(a.block_hashes(300, 300).await? == b.block_hashes(300, 300).await?);
    // A second build continues the pattern relative to its own first block.
    let s2 = a
        .build_chain(ChainSpec {
            blocks: 25,
            tx_every: 5,
            txs_per_block: 1,
        })
        .await?;
    ensure!(
        s2.first_block == 301 && s2.head == 325 && s2.transactions == 5,
        "{s2:?}"
    );
    let block = a
        .rpc("eth_getBlockByNumber", json!([quantity(305), false]))
        .await?;
    ensure!(block["transactions"].as_array().map(Vec::len) == Some(1));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mine_and_mine_with_transaction() -> Result<()> {
    let anvil = Anvil::start().await?;
    ensure!(anvil.block_number().await? == 0);
    anvil.mine(5).await?;
    ensure!(anvil.block_number().await? == 5);
    anvil.mine_with_transaction().await?;
    anvil.mine_with_transaction().await?;
    ensure!(anvil.block_number().await? == 7);
    let hashes = anvil.block_hashes(6, 7).await?;
    ensure!(hashes[0] != hashes[1]);
    let receipts = anvil.rpc("eth_getBlockReceipts", json!(["0x6"])).await?;
    let receipts = receipts.as_array().context("receipts")?;
    ensure!(receipts.len() == 1);
    ensure!(receipts[0]["status"] == "0x1");
    ensure!(receipts[0]["logs"][0]["topics"][0] == TRANSFER_TOPIC);
    assert_chain_links(&anvil, 1, 7).await?;
    // Automine is off: a sent transaction waits for a mining call.
    let tx = json!({"from": anvil.accounts()[1], "to": anvil.accounts()[2], "value": "0x1"});
    anvil.rpc("eth_sendTransaction", json!([tx])).await?;
    ensure!(anvil.block_number().await? == 7);
    anvil.mine(1).await?;
    let block = anvil
        .rpc("eth_getBlockByNumber", json!(["0x8", false]))
        .await?;
    ensure!(block["transactions"].as_array().map(Vec::len) == Some(1));
    anvil.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_errors_carry_the_json_rpc_error() -> Result<()> {
    let anvil = Anvil::start().await?;
    let err = anvil
        .rpc("eth_getBlockByNumber", json!(["not-a-block", false]))
        .await
        .err()
        .context("expected an error")?;
    let rpc = err
        .downcast_ref::<RpcError>()
        .context("expected an RpcError")?;
    ensure!(
        rpc.method == "eth_getBlockByNumber" && rpc.code != 0,
        "{rpc:?}"
    );
    let err = anvil
        .rpc("no_such_method", json!([]))
        .await
        .err()
        .context("expected an error")?;
    ensure!(
        err.downcast_ref::<RpcError>()
            .is_some_and(|e| e.code == -32601),
        "{err:#}"
    );

    let ok = anvil
        .rpc_batch(&[("eth_chainId", json!([])), ("eth_blockNumber", json!([]))])
        .await?;
    ensure!(ok == vec![json!("0x7a69"), json!("0x0")], "{ok:?}");
    let err = anvil
        .rpc_batch(&[("eth_chainId", json!([])), ("no_such_method", json!([]))])
        .await
        .err()
        .context("expected an error")?;
    ensure!(format!("{err:#}").contains("batch element 1"), "{err:#}");
    ensure!(err.downcast_ref::<RpcError>().is_some(), "{err:#}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_code_deploys_the_same_contract() -> Result<()> {
    let anvil = Anvil::start().await?;
    let tx = json!({"from": anvil.accounts()[0], "data": LOG_CONTRACT_INIT_CODE});
    let hash = anvil.rpc("eth_sendTransaction", json!([tx])).await?;
    anvil.mine(1).await?;
    let receipt = anvil
        .rpc("eth_getTransactionReceipt", json!([hash]))
        .await?;
    let address = str_field(&receipt, "contractAddress")?;
    let deployed = anvil.rpc("eth_getCode", json!([address, "latest"])).await?;
    let preset = anvil
        .rpc("eth_getCode", json!([LOG_CONTRACT, "latest"]))
        .await?;
    ensure!(deployed == LOG_CONTRACT_RUNTIME && preset == LOG_CONTRACT_RUNTIME);
    Ok(())
}

async fn check_reorg(anvil: &Anvil, outcome: &ReorgOutcome, depth: u64) -> Result<()> {
    ensure!(
        outcome.fork_point + depth == outcome.old_head,
        "{outcome:?}"
    );
    ensure!(outcome.new_head == outcome.old_head + 1, "{outcome:?}");
    ensure!(outcome.old_hashes.len() as u64 == depth, "{outcome:?}");
    ensure!(outcome.new_hashes.len() as u64 == depth + 1, "{outcome:?}");
    for (old, new) in outcome.old_hashes.iter().zip(&outcome.new_hashes) {
        ensure!(old != new, "{outcome:?}");
    }
    ensure!(anvil.block_number().await? == outcome.new_head);
    ensure!(
        anvil
            .block_hashes(outcome.fork_point + 1, outcome.new_head)
            .await?
            == outcome.new_hashes
    );
    assert_chain_links(anvil, outcome.fork_point, outcome.new_head).await?;
    // The first new block holds the reorg transaction; its log names the replaced block.
    let filter = json!({"fromBlock": quantity(outcome.fork_point + 1), "toBlock": "latest"});
    let logs = anvil.rpc("eth_getLogs", json!([filter])).await?;
    let logs = logs.as_array().context("logs")?;
    let first = logs.first().context("no log in the new branch")?;
    ensure!(block_field(first, "blockNumber")? == outcome.fork_point + 1);
    ensure!(str_field(first, "data")? == outcome.old_hashes[0]);
    for log in logs {
        ensure!(
            outcome
                .new_hashes
                .iter()
                .any(|h| h == str_field(log, "blockHash").unwrap_or_default())
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reorg_with_anvil_reorg() -> Result<()> {
    let anvil = Anvil::start_with_args(&["--prune-history", "64"]).await?;
    let spec = ChainSpec {
        blocks: 2_000,
        tx_every: 10,
        txs_per_block: 2,
    };
    let summary = anvil.build_chain(spec).await?;
    eprintln!("build_chain on --prune-history 64: {summary:?}");
    for depth in [1, 5, 1, 32] {
        let started = Instant::now();
        let outcome = anvil.reorg(depth).await?;
        eprintln!("reorg({depth}) in {:?}", started.elapsed());
        check_reorg(&anvil, &outcome, depth).await?;
    }
    // Reorg a block that already holds the reorg transaction of the same sender.
    let outcome = anvil.reorg(1).await?;
    let again = anvil.reorg(1).await?;
    ensure!(outcome.new_hashes[0] != again.new_hashes[0]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reorg_needs_numbered_prune_history() -> Result<()> {
    let anvil = Anvil::start().await?;
    anvil.mine(10).await?;
    let err = anvil.reorg(1).await.err().context("expected an error")?;
    let text = format!("{err:#}");
    eprintln!("reorg on a default node: {text}");
    ensure!(text.contains("--prune-history N"), "{text}");
    ensure!(anvil.block_number().await? == 10);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reorg_from_snapshot_on_default_node() -> Result<()> {
    let anvil = Anvil::start().await?;
    let spec = ChainSpec {
        blocks: 1_000,
        tx_every: 10,
        txs_per_block: 2,
    };
    anvil.build_chain(spec).await?;
    for depth in [1u64, 5] {
        let id = anvil.snapshot().await?;
        let summary = anvil
            .build_chain(ChainSpec {
                blocks: depth,
                tx_every: 1,
                txs_per_block: 2,
            })
            .await?;
        let outcome = anvil.reorg_from_snapshot(&id, depth + 1).await?;
        ensure!(outcome.old_head == summary.head, "{outcome:?}");
        check_reorg(&anvil, &outcome, depth).await?;
        // The new branch has only the reorg transaction.
        let block = anvil
            .rpc(
                "eth_getBlockByNumber",
                json!([quantity(outcome.fork_point + 1), false]),
            )
            .await?;
        ensure!(block["transactions"].as_array().map(Vec::len) == Some(1));
        // A snapshot is used up by the revert.
        ensure!(anvil.reorg_from_snapshot(&id, 1).await.is_err());
    }
    // Snapshots taken in a row: revert to the older one.
    let old = anvil.snapshot().await?;
    anvil.mine(3).await?;
    let _newer = anvil.snapshot().await?;
    anvil.mine(3).await?;
    let outcome = anvil.reorg_from_snapshot(&old, 7).await?;
    check_reorg(&anvil, &outcome, 6).await?;
    // The chain keeps working after the reorgs.
    let summary = anvil.build_chain(spec).await?;
    assert_chain_links(&anvil, summary.first_block, summary.head).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_starts() -> Result<()> {
    let started = Instant::now();
    let nodes = futures_join_all(8).await?;
    eprintln!("8 parallel starts in {:?}", started.elapsed());
    let mut ports: Vec<u16> = nodes.iter().map(|a| a.port).collect();
    ports.sort_unstable();
    ports.dedup();
    ensure!(ports.len() == 8);
    for node in &nodes {
        ensure!(node.rpc("eth_chainId", json!([])).await? == "0x7a69");
    }
    Ok(())
}

async fn futures_join_all(n: usize) -> Result<Vec<Anvil>> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        set.spawn(Anvil::start());
    }
    let mut nodes = Vec::new();
    while let Some(node) = set.join_next().await {
        nodes.push(node??);
    }
    Ok(nodes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_with_args_refuses_port_flags() -> Result<()> {
    ensure!(Anvil::start_with_args(&["--port", "1"]).await.is_err());
    let anvil = Anvil::start_with_args(&["--chain-id", "1337"]).await?;
    ensure!(anvil.rpc("eth_chainId", json!([])).await? == "0x539");
    Ok(())
}
