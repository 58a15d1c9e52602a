//! `blockfill bench --dense`: rows per second on mainnet-like blocks, where the node is not the
//! limit. A devnet whose every block carries `--dense-transactions` transactions, each with
//! `--dense-logs` logs, is served by a `blockfill devnet` process of its own (so its CPU time is
//! the node's, not Blockfill's). In one run:
//! 1. the node alone: exactly Blockfill's requests, answers read and thrown away
//!    ([`super::node_bench::node_alone`]);
//! 2. the database's ceiling: the same rows (rendered beforehand, untimed) streamed with plain
//!    `COPY` into the same tables, `--workers` streams at once, 1,000 blocks a transaction;
//! 3. end to end: the scheduler, the Redis queue and `--workers` worker processes, from
//!    `POST /v1/backfills` to `completed`, and the row count checked;
//! 4. the ratios, and the CPU seconds of each process group per 1,000 blocks and per million rows;
//!    the write rate over the first and the last million rows.
//!
//! `--dense-long` runs phase 3 alone (a 50M-row run's rows do not fit in memory for phase 2).

use std::{
    net::{Ipv4Addr, SocketAddr, TcpListener},
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use blockfill_activities::{
    BlockRange, ChainSource as _, EvmRpcSource,
    ranges::aligned_batches,
    source::RpcSettings,
    write::{copy_in, copy_text, ensure_partitions},
};
use blockfill_devnet::{DevnetChain, DevnetConfig};
use futures::TryStreamExt as _;
use serde_json::json;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use crate::{
    Orchestrator,
    app::prepare_database,
    settings::{SchedulerArgs, ServeArgs},
    tools::{
        bench::{BenchArgs, cleanup, run_stores, spawn_bench_workers},
        cpu::{CpuSample, CpuSpent, POSTGRES, ProcessGroup, end_to_end_groups},
        demo::{follow_backfill, request_backfill, upsert_chain},
        node_bench::node_alone,
        progress::ProgressSampler,
    },
};

/// Blocks a `COPY` transaction of the ceiling phase carries.
const CEILING_CHUNK: u64 = 1_000;

/// What the density benchmark measured.
#[derive(Debug, Clone)]
pub struct DensityReport {
    /// Blocks backfilled.
    pub blocks: u64,
    /// Rows those blocks make (blocks, transactions and logs).
    pub rows: u64,
    /// The node's raw serving rate, blocks a second (not measured with `--dense-long`).
    pub node_blocks_per_second: Option<f64>,
    /// Plain `COPY` of the same rows, rows a second (not measured with `--dense-long`).
    pub copy_rows_per_second: Option<f64>,
    /// End to end, rows a second.
    pub e2e_rows_per_second: f64,
    /// CPU seconds per group during the end-to-end phase.
    pub e2e_cpu: CpuSpent,
    /// CPU seconds per group during the ceiling phase (not measured with `--dense-long`).
    pub copy_cpu: Option<CpuSpent>,
}

/// The dense devnet, served by a process of its own.
pub(crate) struct DevnetProcess {
    pub(crate) child: Child,
    pub(crate) url: String,
}

/// A free loopback port (bound, read, released).
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
    Ok(listener.local_addr()?.port())
}

/// Starts `blockfill devnet` with `config`'s density and waits until it answers.
pub(crate) async fn spawn_devnet_process(config: &DevnetConfig) -> anyhow::Result<DevnetProcess> {
    let port = free_port()?;
    let log_dir = PathBuf::from("target/bench-logs");
    std::fs::create_dir_all(&log_dir)?;
    let log = std::fs::File::create(log_dir.join("devnet.log"))?;
    let mut command = Command::new(std::env::current_exe().context("the blockfill binary")?);
    command
        .args(["devnet", "--addr", &format!("127.0.0.1:{port}")])
        .args(["--blocks", &config.blocks.to_string()]);
    if let Some(n) = config.transactions_per_block {
        command.args(["--transactions-per-block", &n.to_string()]);
    }
    if let Some(n) = config.logs_per_transaction {
        command.args(["--logs-per-transaction", &n.to_string()]);
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .context("cannot start `blockfill devnet`")?;
    let url = format!("http://127.0.0.1:{port}");
    let source = EvmRpcSource::new(&url, RpcSettings::default())?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while source.head().await.is_err() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the devnet at {url} did not answer within 20 s (see target/bench-logs/devnet.log)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(DevnetProcess { child, url })
}

/// Runs the phases and prints the figures.
pub async fn run(args: &BenchArgs) -> anyhow::Result<DensityReport> {
    let config = DevnetConfig {
        blocks: args.dense_blocks,
        transactions_per_block: Some(args.dense_transactions),
        logs_per_transaction: Some(args.dense_logs),
        seed: 14,
        ..DevnetConfig::default()
    };
    let blocks = config.blocks;
    let rows = blocks * (1 + args.dense_transactions * (1 + args.dense_logs));
    let range = BlockRange::new(0, blocks.saturating_sub(1))?;
    let scheduler = SchedulerArgs::default();
    println!(
        "blockfill bench --dense: {blocks} devnet blocks x {} transactions x {} logs each ({rows} rows), \
         batch {} blocks, {} workers x concurrency {}",
        args.dense_transactions, args.dense_logs, args.batch_size, args.workers, args.concurrency
    );
    let devnet = spawn_devnet_process(&config).await?;
    let node = ProcessGroup::Pids {
        name: "node",
        pids: devnet.child.id().into_iter().collect(),
    };

    let (stores, database) = run_stores(&args.stores, "bench_dense")?;
    let db = prepare_database(&stores, (args.workers * args.concurrency) as u32 + 4).await?;
    let pool = db.get_postgres_connection_pool().clone();
    // The partitions the rows land in, as the write path makes them (outside any timing).
    ensure_partitions(&pool, range).await?;
    let baselines = if args.dense_long {
        println!("baselines             : skipped (--dense-long)");
        None
    } else {
        Some(baselines(args, &config, range, &devnet, &scheduler, &pool).await?)
    };
    // Phase 3: end to end.
    let shutdown = CancellationToken::new();
    let orchestrator = Orchestrator::start(
        ServeArgs::on_loopback(stores.clone(), scheduler),
        shutdown.clone(),
    )
    .await?;
    upsert_chain(&pool, "dense", &devnet.url, 1337, args.batch_size as i32).await?;
    let workers = spawn_bench_workers(args, &stores, &[], 0)?;
    let groups = end_to_end_groups(&workers, "orchestrator", Some(node));
    let before = CpuSample::take(&groups);
    let sampler = ProgressSampler::start(pool.clone(), "dense");
    let started = Instant::now();
    let api = orchestrator.api_addr;
    let id = request_backfill(
        api,
        json!({"chain": "dense", "from": range.from, "to": range.to}),
    )
    .await?;
    let view = follow_backfill(api, &id, &shutdown).await?;
    let e2e_seconds = started.elapsed().as_secs_f64();
    let e2e_cpu = CpuSample::take(&groups).since(&before, &groups);
    let progress = sampler.finish().await;
    for worker in workers {
        worker.stop(Duration::from_secs(10)).await;
    }
    anyhow::ensure!(
        view["status"] == "completed",
        "end-to-end backfill ended {}",
        view["status"]
    );
    let (stored,): (i64,) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM blocks WHERE chain = 'dense') \
              + (SELECT count(*) FROM transactions WHERE chain = 'dense') \
              + (SELECT count(*) FROM logs WHERE chain = 'dense')",
    )
    .fetch_one(&pool)
    .await?;
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
        stored as u64 == rows,
        "end to end stored {stored} rows, expected {rows}"
    );
    let e2e_rate = rows as f64 / e2e_seconds;
    progress.plot_to(
        args.plot.as_deref(),
        &format!(
            "Dense devnet end to end: {blocks} blocks x {} transactions x {} logs, {} workers",
            args.dense_transactions, args.dense_logs, args.workers
        ),
    )?;
    println!(
        "end to end (queue)    : {e2e_rate:>9.0} rows/s  ({e2e_seconds:.2}s, {:.0} blocks/s, {stored} rows checked)",
        blocks as f64 / e2e_seconds
    );
    println!(
        "                        {}",
        e2e_cpu.per_unit(blocks as f64, 1e3, "1,000 blocks")
    );
    println!(
        "                        {}",
        e2e_cpu.per_unit(rows as f64, 1e6, "million rows")
    );
    // From committed blocks (every block of this devnet has the same rows), starting at the
    // first block written: the time before it is the start-up, not the write rate.
    let rows_per_block = 1 + args.dense_transactions * (1 + args.dense_logs);
    let million_rows_of_blocks = 1_000_000_u64.div_ceil(rows_per_block);
    let covered = progress.points.last().map_or(0, |p| p.blocks);
    let first_written = progress
        .points
        .iter()
        .map(|p| p.blocks)
        .find(|b| *b > 0)
        .unwrap_or(0);
    let window = million_rows_of_blocks;
    if let (Some(first), Some(second), Some(last)) = (
        progress.blocks_per_second_between(first_written, first_written + window),
        progress.blocks_per_second_between(first_written + window, first_written + 2 * window),
        progress.blocks_per_second_between(covered.saturating_sub(window), covered),
    ) && covered >= first_written + 3 * window
    {
        let rows = |blocks_per_second: f64| blocks_per_second * rows_per_block as f64;
        let (first, second, last) = (rows(first), rows(second), rows(last));
        println!(
            "write rate            : first million rows {first:.0} rows/s, second million {second:.0}, last million {last:.0} (last / first {:.2}, last / second {:.2}; committed blocks x {rows_per_block} rows, from the first reading with blocks written)",
            last / first,
            last / second
        );
    }
    if let Some(b) = &baselines {
        println!(
            "ratio end-to-end / COPY ceiling: {:.2}; end-to-end / node alone (blocks/s): {:.2}",
            e2e_rate / b.copy_rows_per_second,
            blocks as f64 / e2e_seconds / b.node_blocks_per_second
        );
    }
    Ok(DensityReport {
        blocks,
        rows,
        node_blocks_per_second: baselines.as_ref().map(|b| b.node_blocks_per_second),
        copy_rows_per_second: baselines.as_ref().map(|b| b.copy_rows_per_second),
        e2e_rows_per_second: e2e_rate,
        e2e_cpu,
        copy_cpu: baselines.map(|b| b.copy_cpu),
    })
}

/// What the node alone and a plain `COPY` of the same rows manage (phases 1 and 2).
struct Baselines {
    node_blocks_per_second: f64,
    copy_rows_per_second: f64,
    copy_cpu: CpuSpent,
}

/// Phases 1 and 2: the node alone, then the rows streamed with plain `COPY` (the tables are
/// emptied afterwards).
async fn baselines(
    args: &BenchArgs,
    config: &DevnetConfig,
    range: BlockRange,
    devnet: &DevnetProcess,
    scheduler: &SchedulerArgs,
    pool: &sqlx::PgPool,
) -> anyhow::Result<Baselines> {
    let rows = range.len() * (1 + args.dense_transactions * (1 + args.dense_logs));
    // Phase 1: the node alone.
    let batches: Vec<BlockRange> = aligned_batches(range, args.batch_size).collect();
    let node_rate = node_alone(&devnet.url, &batches, args, scheduler).await?;

    // Phase 2: the database's ceiling.
    let rendered = render_copy_payloads(config, range).await?;
    let copy_groups = [POSTGRES];
    let before = CpuSample::take(&copy_groups);
    let started = Instant::now();
    futures::stream::iter(rendered.into_iter().map(Ok::<_, anyhow::Error>))
        .try_for_each_concurrent(args.workers.max(1), |payload| {
            let pool = pool.clone();
            async move {
                let mut tx = pool.begin().await?;
                copy_in(&mut tx, "blocks", copy_text::BLOCK_COLUMNS, payload.blocks).await?;
                copy_in(
                    &mut tx,
                    "transactions",
                    copy_text::TRANSACTION_COLUMNS,
                    payload.transactions,
                )
                .await?;
                copy_in(&mut tx, "logs", copy_text::LOG_COLUMNS, payload.logs).await?;
                tx.commit().await?;
                Ok(())
            }
        })
        .await?;
    let copy_seconds = started.elapsed().as_secs_f64();
    let copy_cpu = CpuSample::take(&copy_groups).since(&before, &copy_groups);
    let copy_rate = rows as f64 / copy_seconds;
    println!(
        "plain COPY (ceiling)  : {copy_rate:>9.0} rows/s  ({copy_seconds:.2}s, {} streams, {CEILING_CHUNK} blocks a transaction)",
        args.workers
    );
    println!(
        "                        {}",
        copy_cpu.per_unit(rows as f64, 1e6, "million rows")
    );
    // The end-to-end phase starts from empty tables, as the ceiling did.
    sqlx::query("TRUNCATE blocks, transactions, logs")
        .execute(pool)
        .await?;
    Ok(Baselines {
        node_blocks_per_second: node_rate.blocks_per_second,
        copy_rows_per_second: copy_rate,
        copy_cpu,
    })
}

/// One `COPY` transaction's rows, in the text format.
struct CopyPayload {
    blocks: Vec<u8>,
    transactions: Vec<u8>,
    logs: Vec<u8>,
}

/// Renders the rows of `range` (the devnet's, generated in-process: the same rows the end-to-end
/// phase fetches) in chunks of [`CEILING_CHUNK`] blocks.
async fn render_copy_payloads(
    config: &DevnetConfig,
    range: BlockRange,
) -> anyhow::Result<Vec<CopyPayload>> {
    let chain = DevnetChain::new(config.clone());
    let mut payloads = Vec::new();
    for chunk in aligned_batches(range, CEILING_CHUNK) {
        let bundle = chain.fetch_range(chunk).await?;
        payloads.push(CopyPayload {
            blocks: copy_text::blocks("dense", &bundle.blocks),
            transactions: copy_text::transactions("dense", &bundle.transactions),
            logs: copy_text::logs("dense", &bundle.logs),
        });
    }
    Ok(payloads)
}
