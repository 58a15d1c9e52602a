//! `blockfill soak`: a long-running benchmark of live sync through a fleet outage. A devnet grows
//! at `--rate` blocks/s with live sync on (one batch per `--batch-size` blocks, 1 by default, the
//! harshest: one batch row per head); `--workers` worker processes follow it; at `--outage-at`
//! every worker is stopped for `--outage`, then started again. The run lasts `--duration`.
//!
//! Every second it samples the status answer's latency and live lag, the Redis keys under the
//! run's prefix (and their memory, `MEMORY USAGE` summed), and PostgreSQL's rows per indexed block
//! (control rows: batches, backfills, checkpoints). It prints, first against last minute: Redis
//! keys and memory, rows per block, status p99; the most jobs the live queue held against its
//! bound; how long live sync took to recover after the outage and the lag after that.

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use blockfill_activities::ChainName;
use blockfill_activities::settings::StoreArgs;
use blockfill_activities::store::{Lane, indexed};
use blockfill_devnet::{DevnetChain, DevnetConfig, spawn_devnet};
use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::{
    Orchestrator,
    app::prepare_database,
    fleet::{WorkerProcess, spawn_worker, worker_binary},
    settings::{SchedulerArgs, ServeArgs},
    tools::demo::upsert_chain,
};

/// Settings of `blockfill soak`.
#[derive(Debug, Clone, Args)]
pub struct SoakArgs {
    /// PostgreSQL and Redis (a fresh database and Redis prefix are derived from these).
    #[command(flatten)]
    pub stores: StoreArgs,
    /// How long the whole run lasts.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Blocks the devnet grows by per second.
    #[arg(long, default_value_t = 20)]
    pub rate: u64,
    /// Blocks per live batch.
    #[arg(long, default_value_t = 1)]
    pub batch_size: u64,
    /// Worker processes.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// When the workers are stopped, from the start.
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    pub outage_at: Duration,
    /// How long they stay stopped.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub outage: Duration,
    /// Keep the run's database afterwards.
    #[arg(long)]
    pub keep_database: bool,
}

/// One sample of the run.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    at: f64,
    status_ms: f64,
    lag_blocks: Option<i64>,
    live_synced: bool,
    redis_keys: u64,
    redis_bytes: u64,
    live_queue: u64,
    rows_per_block: f64,
    batch_rows: i64,
}

/// Runs the soak and prints its figures.
pub async fn run(args: SoakArgs) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let (stores, database) = crate::tools::bench::run_stores(&args.stores, "soak")?;
    let devnet = Arc::new(DevnetChain::new(DevnetConfig {
        blocks: 1_000,
        seed: 9,
        ..DevnetConfig::default()
    }));
    let addr = spawn_devnet(
        Arc::clone(&devnet),
        "127.0.0.1:0".parse()?,
        shutdown.clone(),
    )
    .await?;
    let rate = args.rate.max(1);
    let grower = Arc::clone(&devnet);
    let grower_token = shutdown.child_token();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_millis(1_000 / rate));
        while !grower_token.is_cancelled() {
            ticker.tick().await;
            grower.advance(1);
        }
    });
    let db = prepare_database(&stores, 4).await?;
    let pool = db.get_postgres_connection_pool().clone();
    upsert_chain(
        &pool,
        "soak",
        &format!("http://{addr}"),
        1337,
        args.batch_size as i32,
    )
    .await?;
    let scheduler = SchedulerArgs::default();
    let live_bound = scheduler.max_queued_live_batches;
    let orchestrator = Orchestrator::start(
        ServeArgs::on_loopback(stores.clone(), scheduler),
        shutdown.clone(),
    )
    .await?;
    let binary = worker_binary()?;
    let log_dir = PathBuf::from("target/soak-logs");
    let start_workers = |generation: usize| -> anyhow::Result<Vec<WorkerProcess>> {
        (0..args.workers)
            .map(|i| spawn_worker(&binary, &stores, 16, &[], &log_dir, generation * 100 + i))
            .collect()
    };
    println!(
        "blockfill soak: devnet +{rate} blocks/s, live batches of {} blocks, {} workers, outage {:?} at {:?}, {:?} in all",
        args.batch_size, args.workers, args.outage, args.outage_at, args.duration
    );
    let mut workers = start_workers(0)?;
    let redis = redis::Client::open(stores.redis_url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let api = orchestrator.api_addr;
    let client = reqwest::Client::new();
    let live_queue = orchestrator
        .context
        .queues
        .get(Lane::Live, &ChainName::parse("soak")?);
    let started = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let mut outage: Option<(f64, f64)> = None; // (stopped at, restarted at)
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    while started.elapsed() < args.duration {
        ticker.tick().await;
        let at = started.elapsed().as_secs_f64();
        if outage.is_none() && started.elapsed() >= args.outage_at {
            for worker in workers.drain(..) {
                worker.stop(Duration::from_secs(30)).await;
            }
            let stopped = started.elapsed().as_secs_f64();
            println!("t={stopped:>5.0}s workers stopped");
            outage = Some((stopped, f64::INFINITY));
        }
        if let Some((stopped, restarted)) = outage
            && restarted.is_infinite()
            && at >= stopped + args.outage.as_secs_f64()
        {
            workers = start_workers(1)?;
            println!("t={at:>5.0}s workers restarted");
            outage = Some((stopped, at));
        }
        let asked = Instant::now();
        let status: serde_json::Value = client
            .get(format!("http://{api}/v1/chains/soak/status"))
            .send()
            .await?
            .json()
            .await?;
        let status_ms = asked.elapsed().as_secs_f64() * 1_000.0;
        let (redis_keys, redis_bytes) = redis_usage(redis.clone(), &stores.redis_prefix).await?;
        let (batch_rows, rows_per_block) = indexed::control_rows_per_block(&pool).await?;
        samples.push(Sample {
            at,
            status_ms,
            lag_blocks: status["live"]["lag_blocks"].as_i64(),
            live_synced: status["live"]["is_live_sync"] == true,
            redis_keys,
            redis_bytes,
            live_queue: live_queue.depth().await.map(|d| d.pending()).unwrap_or(0),
            rows_per_block,
            batch_rows,
        });
        if samples.len().is_multiple_of(30) {
            let s = samples[samples.len() - 1];
            println!(
                "t={:>5.0}s lag {:>6} blocks, status {:>6.1} ms, redis {} keys / {} KiB, live queue {}, batch rows {}, control rows/block {:.3}",
                s.at,
                s.lag_blocks.map_or("-".into(), |l| l.to_string()),
                s.status_ms,
                s.redis_keys,
                s.redis_bytes / 1024,
                s.live_queue,
                s.batch_rows,
                s.rows_per_block
            );
        }
    }
    for worker in workers {
        worker.stop(Duration::from_secs(30)).await;
    }
    shutdown.cancel();
    let _ = orchestrator.wait().await;
    report(&samples, outage, live_bound);
    crate::tools::bench::cleanup(
        &stores,
        &args.stores.database_url,
        &database,
        args.keep_database,
    )
    .await;
    Ok(())
}

/// Keys under `prefix` and their memory (`MEMORY USAGE`, summed).
async fn redis_usage(
    mut conn: redis::aio::MultiplexedConnection,
    prefix: &str,
) -> anyhow::Result<(u64, u64)> {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await?;
    let mut pipe = redis::pipe();
    for key in &keys {
        pipe.cmd("MEMORY").arg("USAGE").arg(key);
    }
    let sizes: Vec<Option<u64>> = if keys.is_empty() {
        Vec::new()
    } else {
        pipe.query_async(&mut conn).await?
    };
    Ok((keys.len() as u64, sizes.into_iter().flatten().sum()))
}

fn percentile(mut values: Vec<f64>, p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    values[((values.len() as f64 * p) as usize).min(values.len() - 1)]
}

fn report(samples: &[Sample], outage: Option<(f64, f64)>, live_bound: u64) {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        println!("no samples");
        return;
    };
    let minute = |from: f64, to: f64| -> Vec<Sample> {
        samples
            .iter()
            .filter(|s| s.at >= from && s.at < to)
            .copied()
            .collect()
    };
    let head = minute(first.at, first.at + 60.0);
    let tail = minute(last.at - 60.0, last.at + 1.0);
    let p99 = |set: &[Sample]| percentile(set.iter().map(|s| s.status_ms).collect(), 0.99);
    let mean = |set: &[Sample], f: fn(&Sample) -> f64| {
        set.iter().map(f).sum::<f64>() / set.len().max(1) as f64
    };
    println!(
        "--- soak figures ({:.0} s, {} samples) ---",
        last.at,
        samples.len()
    );
    println!(
        "redis keys           : first minute {:>8.0}, last minute {:>8.0} (ratio {:.2})",
        mean(&head, |s| s.redis_keys as f64),
        mean(&tail, |s| s.redis_keys as f64),
        mean(&tail, |s| s.redis_keys as f64) / mean(&head, |s| s.redis_keys as f64).max(1.0)
    );
    println!(
        "redis memory (KiB)   : first minute {:>8.0}, last minute {:>8.0} (ratio {:.2})",
        mean(&head, |s| s.redis_bytes as f64) / 1024.0,
        mean(&tail, |s| s.redis_bytes as f64) / 1024.0,
        mean(&tail, |s| s.redis_bytes as f64) / mean(&head, |s| s.redis_bytes as f64).max(1.0)
    );
    println!(
        "control rows / block : first minute {:>8.3}, last minute {:>8.3} (batch rows {} -> {})",
        mean(&head, |s| s.rows_per_block),
        mean(&tail, |s| s.rows_per_block),
        first.batch_rows,
        last.batch_rows
    );
    println!(
        "status p99 (ms)      : first minute {:>8.1}, last minute {:>8.1} (ratio {:.2})",
        p99(&head),
        p99(&tail),
        p99(&tail) / p99(&head)
    );
    println!(
        "live queue           : at most {} jobs (bound {live_bound})",
        samples.iter().map(|s| s.live_queue).max().unwrap_or(0)
    );
    if let Some((stopped, restarted)) = outage.filter(|(_, r)| r.is_finite()) {
        let lag_at_restart = samples
            .iter()
            .find(|s| s.at >= restarted)
            .and_then(|s| s.lag_blocks)
            .unwrap_or(0);
        let recovered = samples
            .iter()
            .find(|s| s.at >= restarted && s.live_synced)
            .map(|s| s.at);
        match recovered {
            Some(at) => {
                let after: Vec<f64> = samples
                    .iter()
                    .filter(|s| s.at >= at)
                    .filter_map(|s| s.lag_blocks.map(|l| l as f64))
                    .collect();
                println!(
                    "outage               : workers down {:.0} s, lag {lag_at_restart} blocks at restart, live again {:.1} s after restart",
                    restarted - stopped,
                    at - restarted
                );
                println!(
                    "live lag once back   : p50 {:.0} blocks, p99 {:.0}, max {:.0}",
                    percentile(after.clone(), 0.5),
                    percentile(after.clone(), 0.99),
                    after.iter().copied().fold(0.0, f64::max)
                );
            }
            None => println!(
                "outage               : workers down {:.0} s, lag {lag_at_restart} blocks at restart; live sync NOT recovered by the end",
                restarted - stopped
            ),
        }
    }
}
