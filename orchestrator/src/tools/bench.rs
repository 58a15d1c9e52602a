//! `blockfill bench`: backfills N devnet blocks twice in one run, into a fresh database:
//! 1. the raw loop: the same batch activity (`run_batch`: delivery count, fetch over JSON-RPC,
//!    one-transaction write) driven directly with bounded concurrency, no queue;
//! 2. end to end: the scheduler, the Redis queue and worker processes, from `POST /v1/backfills`
//!    to `completed`;
//! 3. live lag: a growing devnet followed by live sync while a full backfill of its history runs;
//! 4. far endpoint: end to end against a devnet that answers every request after `--rtt`
//!    (100 ms), next to the ideal `workers x concurrency x batch / RTT` for the same settings;
//! 5. the cost of tracing: end to end with fresh workers, untraced, then exporting their spans
//!    over OTLP to a loopback collector with `--trace-sample` (0.1) of traces kept, then all.
//!
//! It prints the rates and their ratios, and the largest queue depth seen against its bound.
//! With `--rpc-url` it benchmarks that node instead ([`super::node_bench`]); with `--dense`,
//! mainnet-like blocks in rows/s against the database's `COPY` ceiling ([`super::density_bench`]).

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use blockfill_activities::{
    BatchId, BatchJob, BatchPolicy, BlockRange, ChainName, SourceRegistry,
    ranges::aligned_batches,
    run_batch,
    settings::StoreArgs,
    store::{BackfillMode, Lane, backfills, batches},
};
use blockfill_devnet::{
    DevnetChain, DevnetConfig, FaultInjector, FaultProfile, spawn_devnet, spawn_devnet_with_faults,
};
use clap::Args;
use futures::StreamExt;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    Orchestrator,
    app::prepare_database,
    fleet::{WorkerProcess, spawn_worker, worker_binary},
    settings::{SchedulerArgs, ServeArgs},
    tools::{
        cpu::{CpuSample, end_to_end_groups},
        demo::{follow_backfill, request_backfill, upsert_chain},
        otlp_sink::OtlpSink,
        progress::ProgressSampler,
    },
};

/// Settings of `blockfill bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// PostgreSQL and Redis (a fresh database and Redis prefix are derived from these).
    #[command(flatten)]
    pub stores: StoreArgs,
    /// Blocks to backfill in each phase.
    #[arg(long, default_value_t = 100_000)]
    pub blocks: u64,
    /// Worker processes in the end-to-end phase.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Batches each worker runs at once (the raw loop runs workers x concurrency at once).
    #[arg(long, default_value_t = blockfill_activities::settings::DEFAULT_WORKER_CONCURRENCY)]
    pub concurrency: usize,
    /// Blocks per batch.
    #[arg(long, default_value_t = 100)]
    pub batch_size: u64,
    /// Round-trip time the far-endpoint phase injects in front of every devnet answer.
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    pub rtt: Duration,
    /// Blocks of the far-endpoint phase (0 skips it).
    #[arg(long, default_value_t = 100_000)]
    pub rtt_blocks: u64,
    /// Sampling ratio of the traced run of the tracing-cost phase (`parentbased_traceidratio`);
    /// the phase also runs untraced and with every trace kept. Negative skips the phase.
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    pub trace_sample: f64,
    /// Benchmark this node instead of a devnet: its raw serving rate for exactly Blockfill's
    /// requests over the first `--blocks` blocks, then end to end, and the ratio.
    #[arg(long)]
    pub rpc_url: Option<String>,
    /// Benchmark mainnet-like density instead: a devnet of `--dense-blocks` blocks, each with
    /// `--dense-transactions` transactions of `--dense-logs` logs, end to end in rows/s next to
    /// the node alone and a plain `COPY` of the same rows ([`super::density_bench`]).
    #[arg(long)]
    pub dense: bool,
    /// Blocks of the dense devnet.
    #[arg(long, default_value_t = 20_000)]
    pub dense_blocks: u64,
    /// Transactions in every block of the dense devnet.
    #[arg(long, default_value_t = 100)]
    pub dense_transactions: u64,
    /// Logs of every transaction of the dense devnet.
    #[arg(long, default_value_t = 1)]
    pub dense_logs: u64,
    /// With `--dense`: the end-to-end phase only, without the node-alone and `COPY` baselines
    /// (the ceiling renders every row in memory first, which tens of millions of rows do not
    /// fit); for long runs that compare the write rate over the first and the last million rows.
    #[arg(long, requires = "dense")]
    pub dense_long: bool,
    /// Draw the main end-to-end phase's blocks/s and rows/s over time into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Keep the benchmark database afterwards (of a run that finishes: a failed or interrupted
    /// run drops its stores).
    #[arg(long)]
    pub keep_database: bool,
}

/// What the benchmark measured.
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// Blocks per phase.
    pub blocks: u64,
    /// Raw loop rate.
    pub raw_blocks_per_second: f64,
    /// End-to-end rate.
    pub e2e_blocks_per_second: f64,
    /// Largest pending batch count seen in Redis.
    pub max_queue_depth: u64,
    /// The queue bound.
    pub queue_bound: u64,
    /// Live lag in blocks sampled while a full backfill ran: (max, p50, p99).
    pub live_lag: (i64, i64, i64),
    /// End-to-end rate against the far endpoint, and the ideal for the same settings.
    pub far_endpoint: Option<(f64, f64)>,
    /// End-to-end rates with worker tracing off, sampled and all kept (with the spans exported).
    pub tracing_cost: Option<Vec<TracedRun>>,
}

/// One run of the tracing-cost phase.
#[derive(Debug, Clone)]
pub struct TracedRun {
    /// `None`: tracing off; else the sampling ratio.
    pub sample: Option<f64>,
    /// End-to-end rate.
    pub blocks_per_second: f64,
    /// Spans the collector received.
    pub spans: u64,
}

/// Fresh stores for one benchmark run of `kind`: a new database (named `blockfill_{kind}_…`,
/// returned too) on the same server and a new Redis prefix.
/// Registers them for [`cleanup_abandoned`] until [`cleanup`] runs.
pub(crate) fn run_stores(stores: &StoreArgs, kind: &str) -> anyhow::Result<(StoreArgs, String)> {
    let run_id = Uuid::now_v7().simple().to_string();
    let mut url = url::Url::parse(&stores.database_url).context("DATABASE_URL")?;
    let database = format!("blockfill_{kind}_{}", &run_id[run_id.len() - 12..]);
    url.set_path(&format!("/{database}"));
    let run = StoreArgs {
        database_url: url.to_string(),
        redis_url: stores.redis_url.clone(),
        redis_prefix: format!("blockfill-{kind}-{run_id}"),
    };
    tracing::info!(target: "blockfill::bench", database, redis_prefix = %run.redis_prefix, "benchmark stores");
    open_runs().push(OpenRun {
        stores: run.clone(),
        admin_url: stores.database_url.clone(),
        database: database.clone(),
    });
    Ok((run, database))
}

/// A benchmark run's stores not yet cleaned up.
struct OpenRun {
    stores: StoreArgs,
    admin_url: String,
    database: String,
}

/// The runs of this process whose stores [`cleanup`] has not dropped yet.
fn open_runs() -> std::sync::MutexGuard<'static, Vec<OpenRun>> {
    static OPEN_RUNS: std::sync::Mutex<Vec<OpenRun>> = std::sync::Mutex::new(Vec::new());
    OPEN_RUNS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Drops the database and Redis keys of every run that did not reach its own [`cleanup`]: a
/// benchmark that failed or was interrupted leaves nothing behind (`--keep-database` keeps the
/// database of a run that finishes).
pub async fn cleanup_abandoned() {
    let abandoned = std::mem::take(&mut *open_runs());
    for run in abandoned {
        tracing::warn!(target: "blockfill::bench", database = %run.database, "dropping the stores of an unfinished benchmark run");
        cleanup(&run.stores, &run.admin_url, &run.database, false).await;
    }
}

/// Runs both phases and prints the figures.
pub async fn run(args: BenchArgs) -> anyhow::Result<BenchReport> {
    let shutdown = CancellationToken::new();
    let (stores, database) = run_stores(&args.stores, "bench")?;
    let devnet = Arc::new(DevnetChain::new(DevnetConfig {
        blocks: args.blocks,
        ..DevnetConfig::default()
    }));
    let devnet_addr = spawn_devnet(devnet, "127.0.0.1:0".parse()?, shutdown.clone()).await?;
    let rpc_url = format!("http://{devnet_addr}");
    // Batches of exactly --batch-size end to end, as the raw loop runs them (the scheduler's
    // growing of sparse batches is measured against real nodes by `--rpc-url`).
    let scheduler = SchedulerArgs {
        batch_target_rows: 0,
        ..SchedulerArgs::default()
    };
    let queue_bound = scheduler.max_queued_batches;
    let range = BlockRange::new(0, args.blocks.saturating_sub(1))?;
    println!(
        "blockfill bench: {} devnet blocks, batch {} blocks, {} workers x concurrency {}",
        args.blocks, args.batch_size, args.workers, args.concurrency
    );
    // The raw loop runs before the orchestrator starts, so its reconciler does not take the
    // loop's batches for lost work and queue them.
    let raw_db = prepare_database(&stores, (args.workers * args.concurrency) as u32 + 4).await?;
    let pool = raw_db.get_postgres_connection_pool().clone();

    // Phase 1: the raw loop.
    upsert_chain(&pool, "bench-raw", &rpc_url, 1337, args.batch_size as i32).await?;
    let raw_chain = ChainName::parse("bench-raw")?;
    let backfill_id =
        backfills::create(&pool, &raw_chain, BackfillMode::Range, range.from, range.to).await?;
    let jobs: Vec<BatchJob> = aligned_batches(range, args.batch_size)
        .map(|r| BatchJob {
            batch_id: BatchId::new(&raw_chain, r).to_string(),
            chain: raw_chain.clone(),
            range: r,
            backfill_id,
            trace_context: None,
        })
        .collect();
    // The raw loop's batches, planned and marked queued as the gate would (no queue here).
    let mut tx = pool.begin().await?;
    let ranges: Vec<BlockRange> = jobs.iter().map(|j| j.range).collect();
    batches::plan(
        &mut tx,
        &raw_chain,
        backfill_id,
        Lane::Backfill,
        &ranges,
        false,
    )
    .await?;
    let ids: Vec<String> = jobs.iter().map(|j| j.batch_id.clone()).collect();
    batches::mark_queued(&mut tx, &ids).await?;
    tx.commit().await?;
    let sources = SourceRegistry::new(raw_db.clone(), scheduler.rpc.pool_settings());
    let started = Instant::now();
    let failures = futures::stream::iter(jobs.iter())
        .map(|job| run_batch(&pool, &sources, job, "bench-raw", BatchPolicy::default()))
        .buffer_unordered(args.workers * args.concurrency)
        .filter(|r| std::future::ready(r.is_err()))
        .count()
        .await;
    let raw_seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(failures == 0, "{failures} batches failed in the raw loop");
    let raw_rate = args.blocks as f64 / raw_seconds;
    println!(
        "raw loop (no queue)   : {:>9.0} blocks/s  ({raw_seconds:.2}s)",
        raw_rate
    );

    // Phase 2: end to end.
    let orchestrator = Orchestrator::start(
        ServeArgs::on_loopback(stores.clone(), scheduler),
        shutdown.clone(),
    )
    .await?;
    upsert_chain(&pool, "bench-e2e", &rpc_url, 1337, args.batch_size as i32).await?;
    let workers = spawn_bench_workers(&args, &stores, &[], 0)?;
    let api = orchestrator.api_addr;
    let depth_probe = orchestrator
        .context
        .queues
        .get(Lane::Backfill, &ChainName::parse("bench-e2e")?);
    let probe_stop = CancellationToken::new();
    let probe_token = probe_stop.clone();
    let probe = tokio::spawn(async move {
        let mut max = 0;
        while !probe_token.is_cancelled() {
            if let Ok(depth) = depth_probe.depth().await {
                max = max.max(depth.pending());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        max
    });
    let groups = end_to_end_groups(&workers, "orchestrator+devnet", None);
    let before = CpuSample::take(&groups);
    let sampler = ProgressSampler::start(pool.clone(), "bench-e2e");
    let started = Instant::now();
    let id = request_backfill(
        api,
        json!({"chain": "bench-e2e", "from": range.from, "to": range.to}),
    )
    .await?;
    let view = follow_backfill(api, &id, &shutdown).await?;
    let e2e_seconds = started.elapsed().as_secs_f64();
    sampler.finish().await.plot_to(
        args.plot.as_deref(),
        &format!(
            "Devnet end to end: {} blocks, {} workers",
            args.blocks, args.workers
        ),
    )?;
    probe_stop.cancel();
    let max_queue_depth = probe.await.unwrap_or(0);
    anyhow::ensure!(
        view["status"] == "completed",
        "end-to-end backfill ended {}",
        view["status"]
    );
    let e2e_rate = args.blocks as f64 / e2e_seconds;
    println!(
        "end to end (queue)    : {:>9.0} blocks/s  ({e2e_seconds:.2}s)",
        e2e_rate
    );
    println!(
        "                        {}",
        CpuSample::take(&groups).since(&before, &groups).per_unit(
            args.blocks as f64,
            1e3,
            "1,000 blocks"
        )
    );
    println!("ratio end-to-end / raw: {:>9.2}", e2e_rate / raw_rate);
    println!("max queue depth       : {max_queue_depth} (bound {queue_bound})");

    // Phase 3: live lag while a full backfill of the same chain runs.
    let live_lag = live_lag_phase(&orchestrator, &shutdown, args.blocks).await?;

    // Phase 4: the same fleet against a far endpoint.
    let far_endpoint = if args.rtt_blocks > 0 {
        let (rate, ideal) = far_endpoint_phase(&orchestrator, &shutdown, &args).await?;
        println!(
            "far / local end to end: {:>8.2} (the local rate is the ceiling these 2 cores set)",
            rate / e2e_rate
        );
        Some((rate, ideal))
    } else {
        None
    };

    for worker in workers {
        worker.stop(Duration::from_secs(10)).await;
    }

    // Phase 5: the cost of tracing, end to end with fresh workers: off, sampled, all kept.
    let tracing_cost = if args.trace_sample >= 0.0 {
        let mut runs = Vec::new();
        for sample in [None, Some(args.trace_sample.min(1.0)), Some(1.0)] {
            let run = traced_run(
                &orchestrator,
                &shutdown,
                &args,
                &stores,
                &rpc_url,
                sample,
                runs.len(),
            )
            .await?;
            runs.push(run);
        }
        let off = runs[0].blocks_per_second;
        for run in &runs[1..] {
            println!(
                "traced / untraced     : {:>9.2} (sample {}, {} spans exported)",
                run.blocks_per_second / off,
                run.sample.unwrap_or_default(),
                run.spans
            );
        }
        Some(runs)
    } else {
        None
    };
    shutdown.cancel();
    let _ = orchestrator.wait().await;
    cleanup(
        &stores,
        &args.stores.database_url,
        &database,
        args.keep_database,
    )
    .await;
    Ok(BenchReport {
        blocks: args.blocks,
        raw_blocks_per_second: raw_rate,
        e2e_blocks_per_second: e2e_rate,
        max_queue_depth,
        queue_bound,
        live_lag,
        far_endpoint,
        tracing_cost,
    })
}

/// Starts `args.workers` worker processes on `stores` with `env`, logging to
/// `target/bench-logs/worker-{first_index + n}.log`.
pub(crate) fn spawn_bench_workers(
    args: &BenchArgs,
    stores: &StoreArgs,
    env: &[(&str, String)],
    first_index: usize,
) -> anyhow::Result<Vec<WorkerProcess>> {
    let binary = worker_binary()?;
    let log_dir = PathBuf::from("target/bench-logs");
    (0..args.workers)
        .map(|n| {
            spawn_worker(
                &binary,
                stores,
                args.concurrency,
                env,
                &log_dir,
                first_index + n,
            )
        })
        .collect()
}

/// One end-to-end backfill of all the devnet's blocks on a chain of its own, served by fresh
/// workers that export their spans to a loopback OTLP collector (`sample`: the ratio kept) or
/// trace nothing (`None`).
async fn traced_run(
    orchestrator: &Orchestrator,
    shutdown: &CancellationToken,
    args: &BenchArgs,
    stores: &StoreArgs,
    rpc_url: &str,
    sample: Option<f64>,
    index: usize,
) -> anyhow::Result<TracedRun> {
    let chain = format!("bench-traced-{index}");
    upsert_chain(
        &orchestrator.context.pool,
        &chain,
        rpc_url,
        1337,
        args.batch_size as i32,
    )
    .await?;
    let sink = OtlpSink::start(0).await?;
    let mut env = vec![("BLOCKFILL_WORKER_CHAINS", chain.clone())];
    if let Some(ratio) = sample {
        env.extend([
            ("OTEL_EXPORTER_OTLP_ENDPOINT", sink.endpoint()),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio".to_owned()),
            ("OTEL_TRACES_SAMPLER_ARG", ratio.to_string()),
        ]);
    }
    let workers = spawn_bench_workers(args, stores, &env, 10 + index * args.workers)?;
    let api = orchestrator.api_addr;
    let started = Instant::now();
    let id = request_backfill(
        api,
        json!({"chain": chain, "from": 0, "to": args.blocks.saturating_sub(1)}),
    )
    .await?;
    let view = follow_backfill(api, &id, shutdown).await?;
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        view["status"] == "completed",
        "traced backfill ended {}",
        view["status"]
    );
    // Stopping the workers flushes their last spans.
    for worker in workers {
        worker.stop(Duration::from_secs(10)).await;
    }
    let rate = args.blocks as f64 / seconds;
    let label = sample.map_or_else(|| "off".to_owned(), |r| format!("sampled {r}"));
    println!(
        "end to end, tracing {label:<12}: {rate:>9.0} blocks/s  ({seconds:.2}s, {} spans)",
        sink.count()
    );
    Ok(TracedRun {
        sample,
        blocks_per_second: rate,
        spans: sink.count(),
    })
}

/// End to end against a devnet whose every answer comes `args.rtt` late; returns the rate and
/// the ideal `workers x concurrency x batch / RTT`.
async fn far_endpoint_phase(
    orchestrator: &Orchestrator,
    shutdown: &CancellationToken,
    args: &BenchArgs,
) -> anyhow::Result<(f64, f64)> {
    let devnet = Arc::new(DevnetChain::new(DevnetConfig {
        blocks: args.rtt_blocks,
        seed: 4,
        ..DevnetConfig::default()
    }));
    let injector = FaultInjector::new(FaultProfile {
        latency: args.rtt,
        ..FaultProfile::default()
    })?;
    let addr = spawn_devnet_with_faults(devnet, "127.0.0.1:0".parse()?, injector, shutdown.clone())
        .await?;
    let pool = &orchestrator.context.pool;
    upsert_chain(
        pool,
        "bench-far",
        &format!("http://{addr}"),
        1337,
        args.batch_size as i32,
    )
    .await?;
    let api = orchestrator.api_addr;
    let started = Instant::now();
    let id = request_backfill(
        api,
        json!({"chain": "bench-far", "from": 0, "to": args.rtt_blocks - 1}),
    )
    .await?;
    let view = follow_backfill(api, &id, shutdown).await?;
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        view["status"] == "completed",
        "far-endpoint backfill ended {}",
        view["status"]
    );
    let rate = args.rtt_blocks as f64 / seconds;
    let in_flight = (args.workers * args.concurrency) as f64;
    let ideal = in_flight * args.batch_size as f64 / args.rtt.as_secs_f64();
    println!(
        "far endpoint ({:?} RTT): {rate:>9.0} blocks/s  ({seconds:.2}s, {} blocks); ideal {ideal:.0} blocks/s \
         ({} batches of {} in flight / RTT); ratio {:.2}",
        args.rtt,
        args.rtt_blocks,
        in_flight,
        args.batch_size,
        rate / ideal
    );
    Ok((rate, ideal))
}

/// Blocks a second the live-lag phase's chain grows by (an L2-like pace).
const LIVE_BLOCKS_PER_SECOND: u64 = 2;

/// A devnet growing by [`LIVE_BLOCKS_PER_SECOND`] with live sync on; once live-synced, a backfill
/// of all its history runs at full speed while the live lag is sampled every 100 ms.
async fn live_lag_phase(
    orchestrator: &Orchestrator,
    shutdown: &CancellationToken,
    blocks: u64,
) -> anyhow::Result<(i64, i64, i64)> {
    let devnet = Arc::new(DevnetChain::new(DevnetConfig {
        blocks,
        seed: 3,
        ..DevnetConfig::default()
    }));
    let addr = spawn_devnet(
        Arc::clone(&devnet),
        "127.0.0.1:0".parse()?,
        shutdown.clone(),
    )
    .await?;
    let growing = Arc::clone(&devnet);
    let grower_stop = shutdown.child_token();
    let grower_token = grower_stop.clone();
    tokio::spawn(async move {
        let mut ticker =
            tokio::time::interval(Duration::from_millis(1_000 / LIVE_BLOCKS_PER_SECOND));
        while !grower_token.is_cancelled() {
            ticker.tick().await;
            growing.advance(1);
        }
    });
    let pool = &orchestrator.context.pool;
    upsert_chain(pool, "bench-live", &format!("http://{addr}"), 1337, 100).await?;
    let api = orchestrator.api_addr;
    let client = reqwest::Client::new();
    let status = |client: reqwest::Client| async move {
        client
            .get(format!("http://{api}/v1/chains/bench-live/status"))
            .send()
            .await?
            .json::<serde_json::Value>()
            .await
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let synced = loop {
        let answer = status(client.clone()).await?;
        if answer["live"]["is_live_sync"] == true {
            break answer;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the live lane never caught up: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let history_end = synced["live"]["last_indexed"]
        .as_u64()
        .unwrap_or(1)
        .saturating_sub(1);
    let started = Instant::now();
    let id = request_backfill(
        api,
        json!({"chain": "bench-live", "from": 0, "to": history_end}),
    )
    .await?;
    let mut lags = Vec::new();
    loop {
        let answer = status(client.clone()).await?;
        lags.push(answer["live"]["lag_blocks"].as_i64().unwrap_or(i64::MAX));
        let view: serde_json::Value = client
            .get(format!("http://{api}/v1/backfills/{id}"))
            .send()
            .await?
            .json()
            .await?;
        if view["status"] != "running" && view["status"] != "planned" {
            anyhow::ensure!(
                view["status"] == "completed",
                "live-phase backfill ended {}",
                view["status"]
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    grower_stop.cancel();
    let seconds = started.elapsed().as_secs_f64();
    lags.sort_unstable();
    let percentile = |p: usize| lags[(lags.len() * p / 100).min(lags.len() - 1)];
    let figures = (*lags.last().unwrap_or(&0), percentile(50), percentile(99));
    println!(
        "live lag under backfill: max {} blocks, p50 {}, p99 {} ({} samples; chain +{LIVE_BLOCKS_PER_SECOND} blocks/s, \
         confirmations 0; backfill of {} blocks at {:.0} blocks/s)",
        figures.0,
        figures.1,
        figures.2,
        lags.len(),
        history_end + 1,
        (history_end + 1) as f64 / seconds
    );
    Ok(figures)
}

/// Drops the benchmark's database and Redis keys (best effort).
pub(crate) async fn cleanup(
    stores: &StoreArgs,
    admin_url: &str,
    database: &str,
    keep_database: bool,
) {
    open_runs().retain(|run| run.database != database);
    if let Ok(client) = redis::Client::open(stores.redis_url.as_str())
        && let Ok(mut conn) = client.get_multiplexed_async_connection().await
    {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", stores.redis_prefix))
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        for chunk in keys.chunks(500) {
            let _: Result<(), _> = redis::cmd("DEL").arg(chunk).query_async(&mut conn).await;
        }
    }
    if !keep_database
        && let Err(e) = blockfill_activities::db::drop_database(admin_url, database).await
    {
        tracing::warn!(target: "blockfill::bench", error = %e, database, "could not drop the benchmark database");
    }
}
