//! `blockfill-worker`: runs batch jobs until SIGTERM or Ctrl-C, then finishes in-flight batches.

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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    blockfill_activities::telemetry::init_logging();
    let cli = Cli::parse();
    let shutdown = CancellationToken::new();
    tokio::spawn(blockfill_activities::telemetry::cancel_on_signal(
        shutdown.clone(),
    ));
    run(cli.args, shutdown).await
}
