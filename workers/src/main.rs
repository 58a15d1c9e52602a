//! `blockfill-worker`: runs batch jobs until SIGTERM or Ctrl-C, then finishes in-flight batches.

use std::process::ExitCode;

use blockfill_activities::telemetry;
use blockfill_workers::{WorkerArgs, run};
use clap::Parser;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "blockfill-worker",
    version,
    about = "Runs Blockfill batch jobs from the Redis queue"
)]
struct Cli {
    #[command(flatten)]
    args: WorkerArgs,
}

/// mimalloc: the worker's rows are many short-lived allocations, where glibc's allocator spent
/// a third of the worker's CPU (`perf`, dense blocks).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let tracing = match telemetry::init("blockfill-worker") {
        Ok(tracing) => tracing,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(telemetry::cancel_on_signal(shutdown.clone()));
    let code = match run(cli.args, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", telemetry::error_line(e.as_ref()));
            ExitCode::FAILURE
        }
    };
    tracing.shutdown();
    code
}
