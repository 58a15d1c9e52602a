//! `blockfill bench --rpc-url URL`: Blockfill against a real node, next to what the node alone
//! can serve. In one run:
//! 1. end to end: the first `--blocks` blocks through the scheduler, the Redis queue and
//!    `--workers` worker processes into a fresh database (batches of `--batch-size` blocks,
//!    grown by the scheduler where the chain is sparse);
//! 2. the node's raw rate: exactly the JSON-RPC requests phase 1 made (the batches it ran, the
//!    same calls per request, `workers x concurrency` batches in flight), answers read in full
//!    and thrown away: no parsing, no writes;
//! 3. the ratio of the two.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use blockfill_activities::{
    BlockRange, ChainSource as _, EvmRpcSource,
    source::{RpcSettings, range_request_bodies},
};
use futures::StreamExt as _;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::{
    Orchestrator,
    app::prepare_database,
    settings::{SchedulerArgs, ServeArgs},
    tools::{
        bench::{BenchArgs, cleanup, run_stores, spawn_bench_workers},
        cpu::{CpuSample, CpuSpent, ProcessGroup, end_to_end_groups, peak_memory_line},
        demo::{follow_backfill, request_backfill, upsert_chain},
        progress::ProgressSampler,
    },
};

/// What the node benchmark measured.
#[derive(Debug, Clone)]
pub struct NodeReport {
    /// Blocks fetched in each phase.
    pub blocks: u64,
    /// The node's raw serving rate for Blockfill's requests.
    pub raw_blocks_per_second: f64,
    /// Bytes the node answered in the raw phase.
    pub raw_bytes: u64,
    /// End-to-end rate.
    pub e2e_blocks_per_second: f64,
    /// Rows the end-to-end phase wrote.
    pub rows: u64,
    /// CPU seconds per process group during the end-to-end phase.
    pub cpu: CpuSpent,
}

/// How long one request of the raw phase may take.
const RAW_PHASE_TIMEOUT: Duration = Duration::from_secs(300);

/// The node's raw serving rate for Blockfill's requests.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NodeAlone {
    /// Blocks served a second.
    pub(crate) blocks_per_second: f64,
    /// Bytes answered.
    pub(crate) bytes: u64,
}

/// Sends `url` exactly the requests fetching `batches` takes (`workers x concurrency` batches in
/// flight, `scheduler.rpc.batch_size` calls a request), reads every answer in full and throws it
/// away; prints and returns the rate.
pub(crate) async fn node_alone(
    url: &str,
    batches: &[BlockRange],
    args: &BenchArgs,
    scheduler: &SchedulerArgs,
) -> anyhow::Result<NodeAlone> {
    let rpc_batch_size = scheduler.rpc.batch_size as usize;
    // Throughput, not latency: a request waits as long as the node needs (dense blocks on a
    // slow node take longer than the RPC timeout when many are in flight).
    let client = reqwest::Client::builder()
        .timeout(scheduler.rpc.timeout.max(RAW_PHASE_TIMEOUT))
        .build()?;
    let started = Instant::now();
    let in_flight = args.workers * args.concurrency;
    let mut answers = futures::stream::iter(batches.iter().copied())
        .map(|batch| {
            let client = client.clone();
            async move {
                // A batch's requests go out together, as `fetch_range` sends them.
                let sent = range_request_bodies(batch, rpc_batch_size)
                    .into_iter()
                    .map(|body| {
                        let client = client.clone();
                        async move {
                            let response = client.post(url).json(&body).send().await?;
                            let status = response.status();
                            let bytes = response.bytes().await?;
                            anyhow::ensure!(status.is_success(), "the node answered {status}");
                            Ok::<u64, anyhow::Error>(bytes.len() as u64)
                        }
                    });
                futures::future::try_join_all(sent)
                    .await
                    .map(|sizes| sizes.iter().sum::<u64>())
            }
        })
        .buffer_unordered(in_flight);
    let mut bytes = 0;
    while let Some(answer) = answers.next().await {
        bytes += answer?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let blocks: u64 = batches.iter().map(BlockRange::len).sum();
    let blocks_per_second = blocks as f64 / seconds;
    println!(
        "node alone (raw)      : {blocks_per_second:>9.0} blocks/s  ({seconds:.2}s, {:.1} MB answered, nothing parsed or written)",
        bytes as f64 / 1e6
    );
    Ok(NodeAlone {
        blocks_per_second,
        bytes,
    })
}

/// How many blocks the batches of a run held.
pub(crate) fn describe_batches(batches: &[BlockRange]) -> String {
    let sizes = batches.iter().map(BlockRange::len);
    let blocks: u64 = sizes.clone().sum();
    format!(
        "batches run           : {} (blocks a batch: min {}, mean {:.0}, max {})",
        batches.len(),
        sizes.clone().min().unwrap_or(0),
        blocks as f64 / batches.len().max(1) as f64,
        sizes.max().unwrap_or(0)
    )
}

/// Runs both phases against `url` and prints the figures.
pub async fn run(args: &BenchArgs, url: &str) -> anyhow::Result<NodeReport> {
    let scheduler = SchedulerArgs::default();
    let rpc_batch_size = scheduler.rpc.batch_size as usize;
    let source = EvmRpcSource::new(
        url,
        RpcSettings {
            batch_size: rpc_batch_size,
            ..RpcSettings::default()
        },
    )
    .with_context(|| format!("the node at {url}"))?;
    let chain_id = source.chain_id().await.context("eth_chainId")?;
    let head = source.head().await.context("eth_blockNumber")?;
    let blocks = args.blocks.min(head + 1);
    anyhow::ensure!(blocks > 0, "the node has no blocks");
    let range = BlockRange::new(0, blocks - 1)?;
    println!(
        "blockfill bench: node {} (chain id {chain_id}, head {head}), {blocks} blocks, batch_size {} \
         (grown by the scheduler on sparse chains), {} calls per request, {} workers x concurrency {}",
        blockfill_activities::redact_url(url),
        args.batch_size,
        rpc_batch_size,
        args.workers,
        args.concurrency
    );

    // Phase 1: end to end; phase 2: the node alone, sent exactly the batches phase 1 fetched.
    let shutdown = CancellationToken::new();
    let (stores, database) = run_stores(&args.stores, "bench_node")?;
    let db = prepare_database(&stores, 4).await?;
    let pool = db.get_postgres_connection_pool().clone();
    let orchestrator = Orchestrator::start(
        ServeArgs::on_loopback(stores.clone(), scheduler.clone()),
        shutdown.clone(),
    )
    .await?;
    upsert_chain(&pool, "bench-node", url, chain_id, args.batch_size as i32).await?;
    let workers = spawn_bench_workers(args, &stores, &[], 0)?;
    let api = orchestrator.api_addr;
    let groups = end_to_end_groups(
        &workers,
        "orchestrator",
        Some(ProcessGroup::Command {
            name: "anvil",
            command: "anvil",
        }),
    );
    let before = CpuSample::take(&groups);
    let sampler = ProgressSampler::start(pool.clone(), "bench-node");
    let started = Instant::now();
    let id = request_backfill(
        api,
        json!({"chain": "bench-node", "from": range.from, "to": range.to}),
    )
    .await?;
    let view = follow_backfill(api, &id, &shutdown).await?;
    let e2e_seconds = started.elapsed().as_secs_f64();
    let progress = sampler.finish().await;
    let cpu = CpuSample::take(&groups).since(&before, &groups);
    let memory = peak_memory_line(&groups);
    let (rows,): (i64,) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM blocks) + (SELECT count(*) FROM transactions) \
              + (SELECT count(*) FROM logs)",
    )
    .fetch_one(&pool)
    .await?;
    let batches: Vec<BlockRange> = sqlx::query_as::<_, (i64, i64)>(
        "SELECT from_block, to_block FROM batches \
         WHERE chain = 'bench-node' AND lane = 'backfill' AND status = 'done' ORDER BY from_block",
    )
    .fetch_all(&pool)
    .await?
    .into_iter()
    .filter_map(|(from, to)| BlockRange::new(from.max(0) as u64, to.max(0) as u64).ok())
    .collect();
    for worker in workers {
        worker.stop(Duration::from_secs(10)).await;
    }
    shutdown.cancel();
    let _ = orchestrator.wait().await;
    cleanup(
        &stores,
        &args.stores.database_url,
        &database,
        args.keep_database,
    )
    .await;
    anyhow::ensure!(
        view["status"] == "completed",
        "end-to-end backfill ended {}",
        view["status"]
    );
    let e2e_rate = blocks as f64 / e2e_seconds;
    println!("{}", describe_batches(&batches));
    let NodeAlone {
        blocks_per_second: raw_rate,
        bytes: raw_bytes,
    } = node_alone(url, &batches, args, &scheduler).await?;
    progress.plot_to(
        args.plot.as_deref(),
        &format!(
            "{} end to end: {blocks} blocks, {} workers",
            blockfill_activities::redact_url(url),
            args.workers
        ),
    )?;
    println!(
        "end to end (queue)    : {e2e_rate:>9.0} blocks/s  ({e2e_seconds:.2}s, {rows} rows, {:.0} rows/s)",
        rows as f64 / e2e_seconds
    );
    println!(
        "                        {}",
        cpu.per_unit(blocks as f64, 1e3, "1,000 blocks")
    );
    println!(
        "                        {}",
        cpu.per_unit(rows.max(1) as f64, 1e6, "million rows")
    );
    println!("                        {memory} (the orchestrator runs in this process)");
    println!("ratio end-to-end / node alone: {:.2}", e2e_rate / raw_rate);
    Ok(NodeReport {
        blocks,
        raw_blocks_per_second: raw_rate,
        raw_bytes,
        e2e_blocks_per_second: e2e_rate,
        rows: rows as u64,
        cpu,
    })
}
