//! `blockfill`: serve (scheduler + admin API), demo, migrate, verify, devnet, bench.

use std::process::ExitCode;

use anyhow::Context as _;
use blockfill_activities::{
    BlockRange, ChainName, db,
    entity::chains,
    settings::StoreArgs,
    source::{EndpointConfig, EndpointPool, PoolSettings},
    store, telemetry,
};
use blockfill_orchestrator::{
    Orchestrator, app::prepare_database, bench, demo, devnet_server, settings::ServeArgs, soak,
    verify::verify_range,
};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "blockfill",
    version,
    about = "Durable backfill orchestrator for blockchain indexers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the scheduler, head tracker and admin API (with the dashboard at /).
    Serve(ServeArgs),
    /// Devnet + orchestrator + two workers: backfill 100,000 blocks with a progress line.
    Demo(demo::DemoArgs),
    /// Create the database if needed and apply migrations.
    Migrate {
        #[command(flatten)]
        stores: StoreArgs,
    },
    /// Compare the database with the node for a chain and range; exit 1 on any mismatch.
    Verify {
        #[command(flatten)]
        stores: StoreArgs,
        /// Chain name.
        #[arg(long)]
        chain: String,
        /// First block.
        #[arg(long)]
        from: u64,
        /// Last block (inclusive).
        #[arg(long)]
        to: u64,
        /// RPC URL to compare with (default: the chain's first RPC URL).
        #[arg(long)]
        rpc_url: Option<String>,
    },
    /// Serve a deterministic devnet over JSON-RPC, optionally on several endpoints and with
    /// injected faults (latency, HTTP 503/429, hangs, refused batches).
    Devnet(devnet_server::DevnetArgs),
    /// Benchmark: raw fetch-and-write loop versus end to end through the queue.
    Bench(bench::BenchArgs),
    /// Soak benchmark: a growing devnet followed by live sync for minutes, with a fleet outage;
    /// prints Redis keys and memory, rows per block, status p99 and live lag, start against end.
    Soak(soak::SoakArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init_logging();
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", telemetry::error_line(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let shutdown = CancellationToken::new();
    tokio::spawn(telemetry::cancel_on_signal(shutdown.clone()));
    match cli.command {
        Command::Serve(args) => {
            Orchestrator::start(args, shutdown).await?.wait().await?;
        }
        Command::Demo(args) => demo::run(args, shutdown).await?,
        Command::Migrate { stores } => {
            prepare_database(&stores, 1).await?;
            println!(
                "migrations applied to {}",
                db::redact_url(&stores.database_url)
            );
        }
        Command::Verify {
            stores,
            chain,
            from,
            to,
            rpc_url,
        } => {
            let chain = ChainName::parse(&chain)?;
            let range = BlockRange::new(from, to)?;
            let conn = db::connect(&stores.database_url, 4).await?;
            let row = store::chains::find(&conn, chain.as_str()).await?;
            // The node must serve the registered chain (a node of another chain would only
            // report mismatches).
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
            if !report.is_clean() {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Devnet(args) => devnet_server::run(args, shutdown).await?,
        Command::Bench(args) => {
            bench::run(args).await?;
        }
        Command::Soak(args) => soak::run(args).await?,
    }
    Ok(ExitCode::SUCCESS)
}
