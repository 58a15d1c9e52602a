//! `blockfill`: serve (scheduler + admin API), demo, migrate, keys, verify, devnet, bench, soak. Each
//! command is one call into the library (or, for `devnet`, into the `blockfill-devnet` crate).

use std::process::ExitCode;

use blockfill_activities::{settings::StoreArgs, telemetry};
use blockfill_devnet::server as devnet;
use blockfill_orchestrator::{
    Orchestrator, keys, migrate,
    settings::ServeArgs,
    tools::{api_bench, bench, demo, density_bench, node_bench, soak},
    verify,
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
    /// Manage API keys: create (prints the token once), list, revoke.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Compare the database with the node for a chain and range; exit 1 on any mismatch.
    Verify(verify::VerifyArgs),
    /// Serve a deterministic devnet over JSON-RPC, optionally on several endpoints and with
    /// injected faults (latency, HTTP 503/429, hangs, refused batches).
    Devnet(devnet::DevnetArgs),
    /// Benchmark: raw fetch-and-write loop versus end to end through the queue.
    Bench(bench::BenchArgs),
    /// API benchmark: status and gaps latency at a fixed rate (oha), idle and during a
    /// full-speed backfill.
    BenchApi(api_bench::ApiBenchArgs),
    /// Soak benchmark: a growing devnet followed by live sync for minutes, with a fleet outage;
    /// prints Redis keys and memory, rows per block, status p99 and live lag, start against end.
    Soak(soak::SoakArgs),
}

/// mimalloc, as in the worker (where glibc's allocator spent a third of the CPU on dense blocks):
/// the benchmarks run their in-process phases here.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Traces name the process: the orchestrator, or the tool that runs.
    let service = match cli.command {
        Command::Serve(_) => "blockfill-orchestrator",
        Command::Demo(_) => "blockfill-demo",
        Command::Bench(_) | Command::BenchApi(_) | Command::Soak(_) => "blockfill-bench",
        _ => "blockfill",
    };
    let tracing = match telemetry::init(service) {
        Ok(tracing) => tracing,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", telemetry::error_line(e.as_ref()));
            ExitCode::FAILURE
        }
    };
    tracing.shutdown();
    code
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let shutdown = CancellationToken::new();
    tokio::spawn(telemetry::cancel_on_signal(shutdown.clone()));
    match cli.command {
        Command::Serve(args) => Orchestrator::start(args, shutdown).await?.wait().await?,
        Command::Demo(args) => demo::run(args, shutdown).await?,
        Command::Migrate { stores } => migrate::run(&stores).await?,
        Command::Keys(command) => keys::run(command).await?,
        Command::Verify(args) => {
            if !verify::run(args).await? {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Devnet(args) => devnet::run(args, shutdown).await?,
        Command::Bench(args) => {
            until_interrupted(&shutdown, async {
                match args.rpc_url.clone() {
                    Some(url) => node_bench::run(&args, &url).await.map(drop),
                    None if args.dense => density_bench::run(&args).await.map(drop),
                    None => bench::run(args).await.map(drop),
                }
            })
            .await?
        }
        Command::BenchApi(args) => until_interrupted(&shutdown, api_bench::run(args)).await?,
        Command::Soak(args) => until_interrupted(&shutdown, soak::run(args)).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs a benchmark until it ends or a signal cancels `shutdown`; a run that fails or is
/// interrupted drops its stores (its child processes are killed as their handles drop).
async fn until_interrupted(
    shutdown: &CancellationToken,
    run: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let outcome = tokio::select! {
        outcome = run => outcome,
        () = shutdown.cancelled() => Err(anyhow::anyhow!("interrupted")),
    };
    if outcome.is_err() {
        bench::cleanup_abandoned().await;
    }
    outcome
}
