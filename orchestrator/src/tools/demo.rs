//! `blockfill demo`: the devnet and the orchestrator on loopback, the orchestrator supervising its
//! worker processes (`--supervise-workers`: one at rest, up to `--workers` while the backlog
//! lasts); backfills the devnet with a progress line, prints where the dashboard is, serves until
//! Ctrl-C.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use blockfill_activities::settings::StoreArgs;
use blockfill_activities::store;
use blockfill_devnet::{DevnetChain, DevnetConfig, spawn_devnet};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::{
    Orchestrator,
    settings::{FleetArgs, SchedulerArgs, ServeArgs},
};

/// Settings of `blockfill demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// PostgreSQL and Redis.
    #[command(flatten)]
    pub stores: StoreArgs,
    /// Blocks on the devnet (all of them are backfilled).
    #[arg(long, default_value_t = 100_000)]
    pub blocks: u64,
    /// Most worker processes the supervisor runs (the chain's `max_workers`).
    #[arg(long, default_value_t = 2)]
    pub workers: u32,
    /// Worker processes at rest (the chain's `min_workers`).
    #[arg(long, default_value_t = 1)]
    pub min_workers: u32,
    /// How long the fleet aims to take to drain the backlog (short, so the demo's fleet grows).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub target_drain: Duration,
    /// Batches each worker runs at once.
    #[arg(long, default_value_t = blockfill_activities::settings::DEFAULT_WORKER_CONCURRENCY)]
    pub concurrency: usize,
    /// Address of the admin API and dashboard.
    #[arg(long, env = "BLOCKFILL_API_ADDR", default_value = "127.0.0.1:8080")]
    pub api_addr: SocketAddr,
    /// Address of the devnet's JSON-RPC (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub devnet_addr: SocketAddr,
    /// Where worker logs go.
    #[arg(long, default_value = "target/demo-logs")]
    pub log_dir: PathBuf,
}

/// Registers (or re-points) a chain directly in the database.
pub async fn upsert_chain(
    pool: &sea_orm::sqlx::PgPool,
    name: &str,
    rpc_url: &str,
    chain_id: u64,
    batch_size: i32,
) -> anyhow::Result<()> {
    store::chains::upsert(pool, name, rpc_url, chain_id, batch_size)
        .await
        .with_context(|| format!("registering chain {name}"))?;
    Ok(())
}

/// Asks the API for a backfill and returns its id.
pub async fn request_backfill(api: SocketAddr, body: Value) -> anyhow::Result<String> {
    let response = reqwest::Client::new()
        .post(format!("http://{api}/v1/backfills"))
        .json(&body)
        .send()
        .await?;
    let status = response.status();
    let answer: Value = response.json().await?;
    anyhow::ensure!(
        status.is_success(),
        "POST /v1/backfills answered {status}: {answer}"
    );
    answer["id"]
        .as_str()
        .map(str::to_owned)
        .context("POST /v1/backfills answered without an id")
}

/// Polls a backfill until it finishes, drawing a progress bar; returns its final view.
pub async fn follow_backfill(
    api: SocketAddr,
    id: &str,
    shutdown: &CancellationToken,
) -> anyhow::Result<Value> {
    let client = reqwest::Client::new();
    let bar = ProgressBar::new(1);
    bar.set_style(
        ProgressStyle::with_template("{bar:40.cyan/blue} {pos:>9}/{len:9} blocks {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    loop {
        let view: Value = client
            .get(format!("http://{api}/v1/backfills/{id}"))
            .send()
            .await?
            .json()
            .await?;
        bar.set_length(view["blocks_total"].as_u64().unwrap_or(1).max(1));
        bar.set_position(view["blocks_done"].as_u64().unwrap_or(0));
        bar.set_message(format!(
            "{:>8.0} blocks/s  ETA {:>5.0}s  [{}]",
            view["blocks_per_second"].as_f64().unwrap_or(0.0),
            view["eta_seconds"].as_f64().unwrap_or(f64::NAN),
            view["status"].as_str().unwrap_or("?")
        ));
        if matches!(
            view["status"].as_str(),
            Some("completed" | "failed" | "cancelled")
        ) {
            bar.finish();
            return Ok(view);
        }
        tokio::select! {
            _ = shutdown.cancelled() => anyhow::bail!("interrupted"),
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// Runs the demo until `shutdown`.
pub async fn run(args: DemoArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let devnet = Arc::new(DevnetChain::new(DevnetConfig {
        blocks: args.blocks,
        ..DevnetConfig::default()
    }));
    let devnet_addr = spawn_devnet(devnet, args.devnet_addr, shutdown.clone())
        .await
        .with_context(|| format!("cannot serve the devnet on {}", args.devnet_addr))?;
    let scheduler = SchedulerArgs {
        fleet: FleetArgs {
            supervise_workers: true,
            fleet_target_drain: args.target_drain,
            fleet_interval: Duration::from_secs(1),
            supervised_worker_concurrency: args.concurrency,
            supervised_worker_log_dir: args.log_dir.clone(),
            ..FleetArgs::default()
        },
        ..SchedulerArgs::default()
    };
    let orchestrator = Orchestrator::start(
        ServeArgs {
            stores: args.stores.clone(),
            scheduler,
            api_addr: args.api_addr,
            lock_database_url: None,
            access: crate::settings::AccessArgs::default(),
            status_cache: Duration::from_millis(250),
        },
        shutdown.clone(),
    )
    .await?;
    let api = orchestrator.api_addr;
    let pool = &orchestrator.context.pool;
    upsert_chain(pool, "devnet", &format!("http://{devnet_addr}"), 1337, 100).await?;
    store::chains::set_fleet_bounds(pool, "devnet", args.min_workers, args.workers).await?;
    println!("Blockfill demo");
    println!(
        "  devnet JSON-RPC : http://{devnet_addr} ({} blocks)",
        args.blocks
    );
    println!("  admin API       : http://{api}/v1/chains/devnet/status");
    println!("  dashboard       : http://{api}/");
    println!("  fleet           : http://{api}/v1/chains/devnet/fleet");
    println!(
        "  workers         : {} to {} supervised, concurrency {} (logs in {})",
        args.min_workers.min(args.workers),
        args.workers,
        args.concurrency,
        args.log_dir.display()
    );
    let started = Instant::now();
    let id = request_backfill(
        api,
        json!({"chain": "devnet", "from": 0, "to": args.blocks.saturating_sub(1)}),
    )
    .await?;
    println!(
        "Backfill {id}: blocks 0 to {}",
        args.blocks.saturating_sub(1)
    );
    match follow_backfill(api, &id, &shutdown).await {
        Ok(view) => {
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "Backfill {}: {} blocks in {seconds:.1}s ({:.0} blocks/s end to end)",
                view["status"].as_str().unwrap_or("?"),
                view["blocks_done"],
                view["blocks_done"].as_f64().unwrap_or(0.0) / seconds
            );
            println!("Dashboard: http://{api}/  (Ctrl-C to stop)");
        }
        Err(e) if shutdown.is_cancelled() => tracing::info!(error = %e, "demo interrupted"),
        Err(e) => return Err(e),
    }
    shutdown.cancelled().await;
    // Stops the supervised workers too (SIGTERM, then their drain).
    orchestrator.wait().await
}
