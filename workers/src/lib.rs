//! The `blockfill-worker` binary's library: runs batch jobs from the Redis queue with apalis,
//! fetching each range from its chain and writing it to PostgreSQL in one transaction. Thin over
//! `blockfill-activities`.
//!
//! # Layout
//! - [`WorkerArgs`]: flags and environment variables, with defaults.
//! - [`run`]: connect, then process batch jobs until the shutdown token is cancelled; in-flight
//!   batches finish first.

use std::time::Duration;

use anyhow::Context as _;
use blockfill_activities::{
    BatchJob, BatchOutcome, SourceRegistry, db,
    queue::{self, JobFailure, JobQueue, WorkerOptions},
    run_batch,
    settings::StoreArgs,
    source::RpcSettings,
    types::lanes,
};
use clap::Args;
use tokio_util::sync::CancellationToken;

/// Settings of one worker process.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// PostgreSQL and Redis.
    #[command(flatten)]
    pub stores: StoreArgs,
    /// Batches processed at once by this process.
    #[arg(long, env = "BLOCKFILL_WORKER_CONCURRENCY", default_value_t = 8)]
    pub concurrency: usize,
    /// Failed attempts after which a batch is marked failed.
    #[arg(long, env = "BLOCKFILL_ATTEMPT_BUDGET", default_value_t = 5)]
    pub attempt_budget: u32,
    /// First delay between attempts (doubles each time, with jitter).
    #[arg(long, env = "BLOCKFILL_RETRY_BACKOFF", default_value = "500ms", value_parser = humantime::parse_duration)]
    pub retry_backoff: Duration,
    /// Prefix of the worker's name (the host, pid and a uuid are appended).
    #[arg(
        long,
        env = "BLOCKFILL_WORKER_NAME",
        default_value = "blockfill-worker"
    )]
    pub name: String,
}

/// Runs the worker until `shutdown` is cancelled, then lets in-flight batches finish.
pub async fn run(args: WorkerArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let conn = db::connect(&args.stores.database_url, args.concurrency as u32 + 2).await?;
    let pool = conn.get_postgres_connection_pool().clone();
    let sources = SourceRegistry::new(conn, RpcSettings::default());
    let batches = JobQueue::<BatchJob>::connect(&args.stores.queue(), lanes::BATCHES).await?;
    let budget = args.attempt_budget.max(1) as i32;
    tracing::info!(target: "blockfill::worker", concurrency = args.concurrency, budget, "worker starting");
    queue::run_worker(
        batches,
        WorkerOptions {
            name_prefix: args.name.clone(),
            concurrency: args.concurrency.max(1),
            retries: (budget - 1) as usize,
            backoff_base: args.retry_backoff,
            ..WorkerOptions::default()
        },
        move |job: BatchJob, ctx: queue::JobContext| {
            let pool = pool.clone();
            let sources = sources.clone();
            async move {
                match run_batch(&pool, &sources, &job, &ctx.worker_name, budget).await {
                    Ok(BatchOutcome::Written(outcome)) => {
                        tracing::debug!(target: "blockfill::worker", batch = %job.batch_id, blocks = outcome.blocks_inserted, "batch written");
                        metrics::counter!("blockfill_batches_done_total").increment(1);
                        Ok(())
                    }
                    Ok(other) => {
                        tracing::info!(target: "blockfill::worker", batch = %job.batch_id, outcome = ?other, "batch skipped");
                        Ok(())
                    }
                    Err(failure) if failure.exhausted => Err(JobFailure::Abort(failure.error.to_string())),
                    Err(failure) => Err(JobFailure::Retry(failure.error.to_string())),
                }
            }
        },
        shutdown,
    )
    .await
    .context("worker stopped with an error")
}
