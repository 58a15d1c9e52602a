//! `blockfill bench-api`: how fast the admin API answers the two questions operators and
//! dashboards ask most (`GET /v1/chains/{name}/status` and `GET /v1/chains/{name}/gaps`) under a
//! fixed request rate, measured with [oha](https://github.com/hatoo/oha) (an open-loop load
//! generator: requests leave at the rate asked, whether or not earlier ones were answered, and
//! its latencies are corrected for coordinated omission).
//!
//! In one run, on a fresh database and Redis prefix:
//! 1. set-up: a devnet chain whose first blocks are backfilled in scattered ranges, so the gaps
//!    answer has many gaps to list;
//! 2. baseline: each route alone at `--rate` for `--duration`, with nothing else running;
//! 3. under load: the same, while `--workers` worker processes backfill every gap at full speed;
//! 4. the backfill's own rate, with the API under that load, next to the set-up's rate without
//!    it;
//! 5. at scale: a second chain whose ledgers are as large as a mainnet backfill's (10M covered
//!    blocks in 1,000 intervals, 100k batch rows, made directly in PostgreSQL), its status, gaps
//!    and fleet answers loaded at the same rate.
//!
//! It prints p50, p99 and max per route and phase, the achieved rate, the answers that were not
//! 200, and the ratios under-load / baseline.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use blockfill_activities::settings::StoreArgs;
use blockfill_devnet::DevnetConfig;
use clap::Args;
use serde_json::{Value, json};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::{
    Orchestrator,
    app::prepare_database,
    fleet::{spawn_worker, worker_binary},
    settings::{SchedulerArgs, ServeArgs},
    tools::{
        bench::{cleanup, run_stores},
        demo::{follow_backfill, request_backfill, upsert_chain},
        density_bench::spawn_devnet_process,
    },
};

/// The chain the benchmark registers.
const CHAIN: &str = "bench-api";

/// Settings of `blockfill bench-api`.
#[derive(Debug, Clone, Args)]
pub struct ApiBenchArgs {
    /// PostgreSQL and Redis (a fresh database and Redis prefix are derived from these).
    #[command(flatten)]
    pub stores: StoreArgs,
    /// Blocks of the devnet chain; the backfill under load fills what the set-up left.
    #[arg(long, default_value_t = 600_000)]
    pub blocks: u64,
    /// Gaps the set-up leaves in the first part of the chain (it indexes one range between each
    /// two).
    #[arg(long, default_value_t = 200)]
    pub gaps: u64,
    /// Requests per second sent to each route.
    #[arg(long, default_value_t = 1_000)]
    pub rate: u32,
    /// How long each route is loaded in each phase.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Connections oha keeps open.
    #[arg(long, default_value_t = 32)]
    pub connections: u32,
    /// Worker processes of the backfill under load.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Covered blocks of the at-scale phase's chain (its coverage ledger, in `--scale-gaps`
    /// intervals; no index rows are written). Zero skips the phase.
    #[arg(long, default_value_t = 10_000_000)]
    pub scale_covered_blocks: u64,
    /// Gaps between the at-scale chain's covered intervals.
    #[arg(long, default_value_t = 1_000)]
    pub scale_gaps: u64,
    /// Batch rows of the at-scale chain (5% failed, the rest done, over the last hour).
    #[arg(long, default_value_t = 100_000)]
    pub scale_batches: u64,
    /// The oha binary (default: `oha` on the PATH, then `.cache/tools/bin/oha`, where
    /// `scripts/bench-api.sh` installs it).
    #[arg(long, env = "BLOCKFILL_OHA")]
    pub oha: Option<PathBuf>,
    /// Keep the benchmark database afterwards.
    #[arg(long)]
    pub keep_database: bool,
}

/// One route under load, as oha measured it.
#[derive(Debug, Clone, Copy)]
pub struct RouteFigures {
    /// Median latency, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: f64,
    /// Slowest answer, milliseconds.
    pub max_ms: f64,
    /// Requests per second achieved.
    pub rate: f64,
    /// Answers that were not 200 (errors included).
    pub not_ok: u64,
    /// Answers in all.
    pub total: u64,
    /// Requests still unanswered when the load's time was up.
    pub cut_off: u64,
}

/// How oha counts a request still unanswered when its time is up.
const OHA_CUT_OFF: &str = "aborted due to deadline";

/// Runs the benchmark and prints its figures.
pub async fn run(args: ApiBenchArgs) -> anyhow::Result<()> {
    let oha = find_oha(args.oha.as_deref())?;
    anyhow::ensure!(
        args.gaps > 0 && args.blocks > args.gaps * 4,
        "--blocks must be more than 4 x --gaps"
    );
    let shutdown = CancellationToken::new();
    let (stores, database) = run_stores(&args.stores, "apibench")?;
    let outcome = measure(&args, &oha, &stores, &shutdown).await;
    shutdown.cancel();
    cleanup(
        &stores,
        &args.stores.database_url,
        &database,
        args.keep_database,
    )
    .await;
    outcome
}

async fn measure(
    args: &ApiBenchArgs,
    oha: &Path,
    stores: &StoreArgs,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    // The node runs as a process of its own, as in production: served from this process, its
    // answers (a batch of 1,000 blocks is megabytes of JSON) took the API's runtime threads.
    let devnet = spawn_devnet_process(&DevnetConfig {
        blocks: args.blocks,
        ..DevnetConfig::default()
    })
    .await?;
    let db = prepare_database(stores, 8).await?;
    let pool = db.get_postgres_connection_pool().clone();
    upsert_chain(&pool, CHAIN, &devnet.url, 1337, 100).await?;
    let mut serve = ServeArgs::on_loopback(stores.clone(), SchedulerArgs::default());
    // The per-caller rate limit (50/s by default) would answer most of the load 429: the
    // figures are the API's, not the limiter's.
    serve.access.rate_limit_per_key = 0;
    let orchestrator = Orchestrator::start(serve, shutdown.clone()).await?;
    let api = orchestrator.api_addr;
    println!(
        "blockfill bench-api: {} devnet blocks, {} gaps, {} req/s per route for {:?}, {} workers \
         (per-caller rate limit off)",
        args.blocks, args.gaps, args.rate, args.duration, args.workers
    );

    let binary = worker_binary()?;
    let log_dir = PathBuf::from("target/bench-logs");
    let mut workers = Vec::new();
    for index in 0..args.workers {
        workers.push(spawn_worker(
            &binary,
            stores,
            blockfill_activities::settings::DEFAULT_WORKER_CONCURRENCY,
            &[],
            &log_dir,
            index,
        )?);
    }

    // Set-up: index one range between each two gaps of the first quarter of the chain.
    let stride = args.blocks / 4 / args.gaps;
    let started = Instant::now();
    let mut setup_blocks = 0;
    let mut ids = Vec::new();
    for gap in 0..args.gaps {
        let from = gap * stride;
        let to = from + stride / 2 - 1;
        setup_blocks += to - from + 1;
        ids.push(
            request_backfill(api, json!({"chain": CHAIN, "from": from, "to": to}))
                .await
                .context("requesting a set-up backfill")?,
        );
    }
    for id in &ids {
        let view = follow_backfill(api, id, shutdown).await?;
        anyhow::ensure!(
            view["status"] == "completed",
            "set-up backfill {id} ended {}",
            view["status"]
        );
    }
    let setup_rate = setup_blocks as f64 / started.elapsed().as_secs_f64();
    let gaps_answer = get_json(api, &format!("/v1/chains/{CHAIN}/gaps?limit=1000")).await?;
    let listed = gaps_answer["gaps"].as_array().map_or(0, Vec::len);
    println!(
        "set-up: {setup_blocks} blocks in {} backfills ({setup_rate:.0} blocks/s, no API load); the gaps answer lists {listed} gaps",
        args.gaps
    );

    let routes = [
        ("status", format!("/v1/chains/{CHAIN}/status")),
        ("gaps", format!("/v1/chains/{CHAIN}/gaps")),
    ];
    let mut baseline = Vec::new();
    for (name, path) in &routes {
        baseline.push((
            *name,
            load(oha, args, &format!("http://{api}{path}")).await?,
        ));
    }

    // Under load: every gap of the chain, backfilled at full speed while the routes are loaded.
    let covered_before = indexed_blocks(api).await?;
    let fill = request_backfill(api, json!({"chain": CHAIN, "mode": "gaps"})).await?;
    wait_running(api, &fill).await?;
    let fill_started = Instant::now();
    let mut under_load = Vec::new();
    for (name, path) in &routes {
        under_load.push((
            *name,
            load(oha, args, &format!("http://{api}{path}")).await?,
        ));
    }
    let loaded_seconds = fill_started.elapsed().as_secs_f64();
    let fill_view = get_json(api, &format!("/v1/backfills/{fill}")).await?;
    let still_running = fill_view["status"] == "running";
    let covered_after = indexed_blocks(api).await?;
    let loaded_rate = (covered_after - covered_before).max(0) as f64 / loaded_seconds;
    let view = follow_backfill(api, &fill, shutdown).await?;
    anyhow::ensure!(
        view["status"] == "completed",
        "the backfill under load ended {}",
        view["status"]
    );

    println!();
    println!(
        "| route | phase | p50 ms | p99 ms | max ms | achieved req/s | not 200 | answers | cut off at the end |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for ((name, idle), (_, busy)) in baseline.iter().zip(&under_load) {
        for (phase, f) in [("idle", idle), ("during backfill", busy)] {
            println!(
                "| {name} | {phase} | {:.2} | {:.2} | {:.2} | {:.0} | {} | {} | {} |",
                f.p50_ms, f.p99_ms, f.max_ms, f.rate, f.not_ok, f.total, f.cut_off
            );
        }
    }
    println!();
    for ((name, idle), (_, busy)) in baseline.iter().zip(&under_load) {
        println!(
            "{name}: p99 during backfill / idle = {:.2}",
            busy.p99_ms / idle.p99_ms.max(f64::EPSILON)
        );
    }
    println!(
        "backfill while the API was loaded: {loaded_rate:.0} blocks/s over {loaded_seconds:.1} s \
         ({:.2} of the set-up's {setup_rate:.0} blocks/s without API load){}",
        loaded_rate / setup_rate.max(f64::EPSILON),
        if still_running {
            ""
        } else {
            "; WARNING: the backfill ended before the load did (raise --blocks)"
        }
    );
    for worker in workers {
        worker.stop(Duration::from_secs(10)).await;
    }
    if args.scale_covered_blocks > 0 {
        at_scale(args, oha, &pool, api).await?;
    }
    Ok(())
}

/// The chain of the at-scale phase.
const SCALE_CHAIN: &str = "bench-api-scale";

/// The at-scale phase: a chain whose ledgers are as large as a mainnet backfill's (covered blocks
/// in many intervals, many batch rows), made directly in PostgreSQL; its status, gaps and fleet
/// answers loaded at the benchmark's rate.
async fn at_scale(
    args: &ApiBenchArgs,
    oha: &Path,
    pool: &sea_orm::sqlx::PgPool,
    api: std::net::SocketAddr,
) -> anyhow::Result<()> {
    use sea_orm::sqlx;
    let intervals = args.scale_gaps.max(1) as i64;
    let gap = 1_000_i64;
    let interval = (args.scale_covered_blocks as i64 / intervals).max(1);
    let stride = interval + gap;
    let head = stride * intervals;
    let started = Instant::now();
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO chains (name, rpc_urls, live_sync, head_block, head_updated_at) \
         VALUES ($1, '[]', false, $2, now())",
    )
    .bind(SCALE_CHAIN)
    .bind(head)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO coverage (chain, start_block, end_block) \
         SELECT $1, i * $3, i * $3 + $2 - 1 FROM generate_series(0, $4 - 1) i",
    )
    .bind(SCALE_CHAIN)
    .bind(interval)
    .bind(stride)
    .bind(intervals)
    .execute(&mut *tx)
    .await?;
    let backfill = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO backfills (id, chain, mode, from_block, to_block, status, started_at, \
                                finished_at, planned_batches, planned_blocks) \
         VALUES ($1, $2, 'range', 0, $3 - 1, 'completed', now() - interval '1 hour', now(), \
                 $4, $4 * 100)",
    )
    .bind(backfill)
    .bind(SCALE_CHAIN)
    .bind(head)
    .bind(args.scale_batches as i64)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO batches (id, chain, from_block, to_block, backfill_id, status, attempts, \
                              deliveries, last_error, planned_at, queued_at, started_at, \
                              finished_at) \
         SELECT $1 || ':' || i, $1, i * 100, i * 100 + 99, $2, \
                CASE WHEN i % 20 = 0 THEN 'failed' ELSE 'done' END, \
                CASE WHEN i % 20 = 0 THEN 3 ELSE 0 END, 1, \
                CASE WHEN i % 20 = 0 THEN 'rpc: timed out' END, \
                at, at, at, at + interval '1 second' \
         FROM generate_series(0, $3 - 1) i, \
              LATERAL (SELECT now() - interval '1 hour' + i::float8 * (interval '1 hour' / $3::float8)) t(at)",
    )
    .bind(SCALE_CHAIN)
    .bind(backfill)
    .bind(args.scale_batches as i64)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    sqlx::query("ANALYZE coverage, batches")
        .execute(pool)
        .await?;
    let status = get_json(api, &format!("/v1/chains/{SCALE_CHAIN}/status")).await?;
    println!();
    println!(
        "at scale: chain {SCALE_CHAIN} with {} covered blocks in {intervals} intervals and {} \
         batch rows (made in {:.1} s); its status answer: {} indexed, {} gaps",
        args.scale_covered_blocks,
        args.scale_batches,
        started.elapsed().as_secs_f64(),
        status["historical"]["indexed_blocks"],
        status["historical"]["gap_ranges_count"],
    );
    println!();
    println!(
        "| route (at scale) | p50 ms | p99 ms | max ms | achieved req/s | not 200 | answers | cut off at the end |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, path) in [
        ("status", format!("/v1/chains/{SCALE_CHAIN}/status")),
        ("gaps", format!("/v1/chains/{SCALE_CHAIN}/gaps")),
        ("fleet", format!("/v1/chains/{SCALE_CHAIN}/fleet")),
    ] {
        let f = load(oha, args, &format!("http://{api}{path}")).await?;
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} | {:.0} | {} | {} | {} |",
            f.p50_ms, f.p99_ms, f.max_ms, f.rate, f.not_ok, f.total, f.cut_off
        );
    }
    Ok(())
}

/// Loads `url` with oha at the benchmark's rate; returns what it measured.
async fn load(oha: &Path, args: &ApiBenchArgs, url: &str) -> anyhow::Result<RouteFigures> {
    let output = Command::new(oha)
        .args([
            "--no-tui",
            "--output-format",
            "json",
            // Keep-alive is oha's default: connections are reused, as a dashboard's are.
            "--latency-correction",
        ])
        .arg("-q")
        .arg(args.rate.to_string())
        .arg("-c")
        .arg(args.connections.to_string())
        .arg("-z")
        .arg(format!("{}ms", args.duration.as_millis()))
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {}", oha.display()))?;
    anyhow::ensure!(
        output.status.success(),
        "oha failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).context("oha's JSON report")?;
    route_figures(&report)
}

/// Reads oha's JSON report (latencies in seconds).
fn route_figures(report: &Value) -> anyhow::Result<RouteFigures> {
    let seconds = |v: &Value| v.as_f64().map(|s| s * 1000.0);
    let percentiles = &report["latencyPercentiles"];
    let total: u64 = report["statusCodeDistribution"]
        .as_object()
        .map(|codes| codes.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    let ok = report["statusCodeDistribution"]["200"]
        .as_u64()
        .unwrap_or(0);
    // Requests still unanswered when the load's time is up are cut off by oha, not failed by
    // the server; they are counted apart.
    let count_errors = |cut_off: bool| -> u64 {
        report["errorDistribution"]
            .as_object()
            .map(|errors| {
                errors
                    .iter()
                    .filter(|(kind, _)| (kind.as_str() == OHA_CUT_OFF) == cut_off)
                    .filter_map(|(_, n)| n.as_u64())
                    .sum()
            })
            .unwrap_or(0)
    };
    let errors = count_errors(false);
    let cut_off = count_errors(true);
    Ok(RouteFigures {
        p50_ms: seconds(&percentiles["p50"]).context("oha's p50")?,
        p99_ms: seconds(&percentiles["p99"]).context("oha's p99")?,
        max_ms: seconds(&report["summary"]["slowest"]).context("oha's slowest")?,
        rate: report["summary"]["requestsPerSec"]
            .as_f64()
            .context("oha's requests/s")?,
        not_ok: total - ok + errors,
        total: total + errors,
        cut_off,
    })
}

/// `oha` from `--oha`, the PATH or `.cache/tools/bin`.
fn find_oha(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path.to_path_buf());
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("oha"))
        .find(|candidate| candidate.is_file());
    let cached = PathBuf::from(".cache/tools/bin/oha");
    on_path
        .or_else(|| cached.is_file().then_some(cached))
        .context(
            "oha not found: run scripts/bench-api.sh (it installs oha from crates.io), \
             or give --oha",
        )
}

async fn get_json(api: std::net::SocketAddr, path: &str) -> anyhow::Result<Value> {
    let response = reqwest::get(format!("http://{api}{path}")).await?;
    let status = response.status();
    let body: Value = response.json().await?;
    anyhow::ensure!(status.is_success(), "GET {path} answered {status}: {body}");
    Ok(body)
}

/// Blocks the chain's coverage ledger holds.
async fn indexed_blocks(api: std::net::SocketAddr) -> anyhow::Result<i64> {
    let status = get_json(api, &format!("/v1/chains/{CHAIN}/status")).await?;
    status["historical"]["indexed_blocks"]
        .as_i64()
        .context("the status answer has no historical.indexed_blocks")
}

/// Waits until the backfill `id` runs (its scheduler planned a batch).
async fn wait_running(api: std::net::SocketAddr, id: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let view = get_json(api, &format!("/v1/backfills/{id}")).await?;
        if view["status"] != "planned" {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "backfill {id} did not start within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ohas_json_report() {
        let report = json!({
            "summary": {"successRate": 1.0, "slowest": 0.0125, "requestsPerSec": 998.2},
            "latencyPercentiles": {"p50": 0.0011, "p99": 0.0042},
            "statusCodeDistribution": {"200": 9980, "429": 2},
            "errorDistribution": {"connection closed": 1, "aborted due to deadline": 4},
        });
        let figures = route_figures(&report).expect("figures");
        assert!((figures.p50_ms - 1.1).abs() < 1e-9);
        assert!((figures.p99_ms - 4.2).abs() < 1e-9);
        assert!((figures.max_ms - 12.5).abs() < 1e-9);
        assert_eq!(figures.not_ok, 3);
        assert_eq!(figures.total, 9983);
        assert_eq!(figures.cut_off, 4);
    }

    #[test]
    fn a_report_without_percentiles_is_an_error() {
        assert!(route_figures(&json!({"summary": {}})).is_err());
    }
}
