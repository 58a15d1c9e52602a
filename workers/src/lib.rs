//! The `blockfill-worker` binary's library: runs batch jobs from the Redis queue with apalis,
//! fetching each range from its chain and writing it to PostgreSQL in one transaction. Thin over
//! `blockfill-activities`.
//!
//! # Layout
//! - [`WorkerArgs`]: flags and environment variables, with defaults.
//! - [`run`]: connect, then process batch jobs until the shutdown token is cancelled; in-flight
//!   batches finish first. Each lane of each chain served has its own Redis queue
//!   ([`BatchQueues`]) and apalis worker; the process's concurrency of a lane is shared by all
//!   its chains. Without `--chains` the worker serves every registered chain, and picks up
//!   chains registered while it runs.
//! - [`report`]: the worker's report of itself (what it serves, in flight, rate, heartbeat).

pub mod report;

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use anyhow::Context as _;
use blockfill_activities::{
    BatchJob, BatchOutcome, BatchPolicy, BatchQueues, ChainName, Lane, Resolution, SourceRegistry,
    backoff::{Backoff, sleep_or_cancelled},
    db, enqueue_batches,
    queue::{self, JobFailure, JobQueue, WorkerOptions},
    run_batch,
    settings::{RpcArgs, StoreArgs},
    source::RequestPriority,
    store::{chains, workers::WorkerReport},
    telemetry,
};
use clap::Args;
use report::WorkerStats;
use tokio::{sync::Semaphore, task::JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

/// Settings of one worker process.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// PostgreSQL and Redis.
    #[command(flatten)]
    pub stores: StoreArgs,
    /// How RPC endpoints are used.
    #[command(flatten)]
    pub rpc: RpcArgs,
    /// Batches processed at once by this process.
    #[arg(long, env = "BLOCKFILL_WORKER_CONCURRENCY", default_value_t = blockfill_activities::settings::DEFAULT_WORKER_CONCURRENCY)]
    pub concurrency: usize,
    /// Live-sync batches processed at once: capacity reserved for the live lane, so a full
    /// backfill never delays new blocks.
    #[arg(long, env = "BLOCKFILL_LIVE_CONCURRENCY", default_value_t = 2)]
    pub live_concurrency: usize,
    /// Failed attempts after which a batch is marked failed.
    #[arg(long, env = "BLOCKFILL_ATTEMPT_BUDGET", default_value_t = 5)]
    pub attempt_budget: u32,
    /// First delay between attempts (doubles each time, with jitter).
    #[arg(long, env = "BLOCKFILL_RETRY_BACKOFF", default_value = "500ms", value_parser = humantime::parse_duration)]
    pub retry_backoff: Duration,
    /// On SIGTERM, how long in-flight batches may run before the process exits anyway (their jobs
    /// are then handed back through the queue's heartbeat recovery).
    #[arg(long, env = "BLOCKFILL_SHUTDOWN_DEADLINE", default_value = "30s", value_parser = humantime::parse_duration)]
    pub shutdown_deadline: Duration,
    /// How long a batch waits for PostgreSQL to come back before its job is given back.
    #[arg(long, env = "BLOCKFILL_DATABASE_WAIT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub database_wait: Duration,
    /// Chains to serve, comma-separated (e.g. `mainnet,base`); empty: every registered chain,
    /// including chains registered while the worker runs.
    #[arg(long, env = "BLOCKFILL_WORKER_CHAINS", default_value = "", value_parser = ServedChains::parse)]
    pub chains: ServedChains,
    /// Serve Prometheus metrics at `http://<addr>/metrics` (e.g. `0.0.0.0:9464`); unset: no
    /// metrics server.
    #[arg(long, env = "BLOCKFILL_WORKER_METRICS_ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Prefix of the worker's name (the host, pid and a uuid are appended).
    #[arg(
        long,
        env = "BLOCKFILL_WORKER_NAME",
        default_value = "blockfill-worker"
    )]
    pub name: String,
}

/// The chains a worker serves: the ones named, or (none named) every registered chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServedChains(pub Vec<ChainName>);

impl ServedChains {
    /// Parses a comma-separated list of chain names; blanks around names and empty entries are
    /// ignored, so an empty list (or an empty `BLOCKFILL_WORKER_CHAINS`) means every chain.
    pub fn parse(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(|name| ChainName::parse(name).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Whether every registered chain is served.
    pub fn all(&self) -> bool {
        self.0.is_empty()
    }
}

/// How often a worker serving every chain looks for newly registered ones.
const CHAIN_DISCOVERY_INTERVAL: Duration = Duration::from_secs(1);
/// How often endpoint health is checked and published.
const HEALTH_REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// Delays between restarts of a stopped queue worker: 500 ms doubling up to 10 s.
const RESTART_BACKOFF: Backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));

/// Runs the worker until `shutdown` is cancelled, then lets in-flight batches finish (up to the
/// shutdown deadline). A lost Redis (restart, flush) stops apalis' worker; it is started again
/// with backoff, so the process rides out Redis outages.
pub async fn run(args: WorkerArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let connections = (args.concurrency + args.live_concurrency) as u32 + 2;
    let conn = db::connect(&args.stores.database_url, connections).await?;
    let pool = conn.get_postgres_connection_pool().clone();
    let metrics_stop = shutdown.child_token();
    let _stop_metrics = metrics_stop.clone().drop_guard();
    if let Some(addr) = args.metrics_addr {
        serve_metrics(addr, pool.clone(), metrics_stop).await?;
    }
    let sources = SourceRegistry::new(conn, args.rpc.pool_settings());
    tokio::spawn(sources.clone().run_health_reports(
        pool.clone(),
        format!("worker:{}:{}", args.name, std::process::id()),
        HEALTH_REPORT_INTERVAL,
        shutdown.clone(),
    ));
    let stats = Arc::new(WorkerStats::default());
    // The report goes when the worker stops taking jobs (shutdown) or stops for good.
    let report_stop = shutdown.child_token();
    let host = telemetry::host_name();
    let reporter = tokio::spawn(report::publish_reports(
        pool.clone(),
        WorkerReport {
            id: format!(
                "{}-{}-{}-{}",
                args.name,
                host,
                std::process::id(),
                uuid::Uuid::now_v7().simple()
            ),
            host,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            chains: (!args.chains.all())
                .then(|| args.chains.0.iter().map(ToString::to_string).collect()),
            lanes: Lane::ALL.to_vec(),
            concurrency: i32::try_from(args.concurrency + args.live_concurrency)
                .unwrap_or(i32::MAX),
            in_flight: 0,
            blocks_per_second: 0.0,
            batches_done: 0,
            blocks_done: 0,
        },
        Arc::clone(&stats),
        report_stop.clone(),
    ));
    let queues = BatchQueues::connect(&args.stores.queue()).await?;
    let policy = BatchPolicy {
        attempt_budget: args.attempt_budget.max(1) as i32,
        database_wait: args.database_wait,
        priority: RequestPriority::Backfill,
    };
    tracing::info!(target: "blockfill::worker", concurrency = args.concurrency, live_concurrency = args.live_concurrency, budget = policy.attempt_budget, chains = ?args.chains, "worker starting");
    let backfill = LaneWorker {
        lane: Lane::Backfill,
        pool: pool.clone(),
        sources,
        queues,
        policy,
        slots: Arc::new(Semaphore::new(args.concurrency.max(1))),
        stats,
        shutdown: shutdown.clone(),
    };
    let live = LaneWorker {
        lane: Lane::Live,
        policy: BatchPolicy {
            priority: RequestPriority::Live,
            ..policy
        },
        slots: Arc::new(Semaphore::new(args.live_concurrency.max(1))),
        ..backfill.clone()
    };
    let serving = serve_chains(&args, &pool, [backfill, live], &shutdown);
    let deadline = args.shutdown_deadline;
    let outcome = tokio::select! {
        result = serving => result.context("worker stopped with an error"),
        _ = async { shutdown.cancelled().await; tokio::time::sleep(deadline).await } => {
            tracing::warn!(target: "blockfill::worker", ?deadline, "in-flight batches did not finish before the shutdown deadline; exiting, their jobs will be redelivered");
            Ok(())
        }
    };
    report_stop.cancel();
    if let Err(e) = reporter.await {
        tracing::warn!(target: "blockfill::worker", error = %e, "the report task failed");
    }
    outcome
}

/// Starts the `/metrics` server on `addr`: it answers until `stop` is cancelled (when the worker
/// returns). Fails when the address cannot be bound.
async fn serve_metrics(
    addr: std::net::SocketAddr,
    pool: sea_orm::sqlx::PgPool,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let handle = telemetry::metrics::prometheus()
        .context("another metrics recorder is installed in this process")?;
    let listener = telemetry::metrics::bind(addr)
        .await
        .map_err(anyhow::Error::msg)?;
    let bound = listener.local_addr().context("the metrics address")?;
    tracing::info!(target: "blockfill::worker", %bound, "serving Prometheus metrics at /metrics");
    tokio::spawn(async move {
        if let Err(e) = telemetry::metrics::serve(listener, handle, pool, stop).await {
            tracing::warn!(target: "blockfill::worker", error = %e, "the metrics server stopped");
        }
    });
    Ok(())
}

/// Runs the lanes of every chain served until shutdown: the chains of `--chains`, or every
/// registered chain (looked up again every [`CHAIN_DISCOVERY_INTERVAL`]). Returns once every
/// queue worker has stopped, or with the first one's error.
async fn serve_chains(
    args: &WorkerArgs,
    pool: &sea_orm::sqlx::PgPool,
    lanes: [LaneWorker; 2],
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let mut served: BTreeSet<ChainName> = BTreeSet::new();
    let mut running: JoinSet<anyhow::Result<()>> = JoinSet::new();
    let mut discovery = tokio::time::interval(CHAIN_DISCOVERY_INTERVAL);
    discovery.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(done) = running.join_next() => {
                // A queue worker ends only on shutdown or with an error it could not ride out.
                done.context("a queue worker panicked")??;
                continue;
            }
            _ = discovery.tick() => {}
        }
        let wanted = if args.chains.all() {
            match chains::names(pool).await {
                Ok(names) => names,
                Err(e) => {
                    tracing::warn!(target: "blockfill::worker", error = %e, "cannot list the registered chains; retrying");
                    continue;
                }
            }
        } else {
            args.chains.0.clone()
        };
        for chain in wanted {
            if served.contains(&chain) {
                continue;
            }
            tracing::info!(target: "blockfill::worker", %chain, "serving chain");
            for lane in &lanes {
                let (name, concurrency) = match lane.lane {
                    Lane::Backfill => (format!("{}-{chain}", args.name), args.concurrency),
                    Lane::Live => (format!("{}-{chain}-live", args.name), args.live_concurrency),
                };
                let options = WorkerOptions {
                    name_prefix: name,
                    concurrency: concurrency.max(1),
                    retries: (lane.policy.attempt_budget - 1) as usize,
                    backoff_base: args.retry_backoff,
                    ..WorkerOptions::default()
                };
                let queue = lane.queues.get(lane.lane, &chain);
                running.spawn(lane.clone().supervise(queue, options));
            }
            served.insert(chain);
        }
    }
    while let Some(done) = running.join_next().await {
        done.context("a queue worker panicked")??;
    }
    Ok(())
}

/// What one queue's worker needs.
#[derive(Clone)]
struct LaneWorker {
    lane: Lane,
    pool: sea_orm::sqlx::PgPool,
    sources: SourceRegistry,
    queues: BatchQueues,
    policy: BatchPolicy,
    /// The process's batches of this lane at once, shared by every chain served.
    slots: Arc<Semaphore>,
    stats: Arc<WorkerStats>,
    shutdown: CancellationToken,
}

impl LaneWorker {
    /// Runs an apalis worker on `queue` until shutdown, restarting it with backoff when it stops
    /// (a lost or flushed Redis stops apalis' worker).
    async fn supervise(
        self,
        queue: JobQueue<BatchJob>,
        options: WorkerOptions,
    ) -> anyhow::Result<()> {
        let mut backoff = RESTART_BACKOFF.delays();
        loop {
            let lane = self.clone();
            let result = queue::run_worker(
                queue.clone(),
                options.clone(),
                move |job: BatchJob, ctx: queue::JobContext| handle(job, ctx, lane.clone()),
                self.shutdown.clone(),
            )
            .await;
            match result {
                Ok(()) => return Ok(()),
                Err(e) if self.shutdown.is_cancelled() => return Err(anyhow::Error::from(e)),
                Err(e) => {
                    let retry_in = backoff.next().unwrap_or(RESTART_BACKOFF.max);
                    tracing::warn!(target: "blockfill::worker", queue = %queue.name(), error = %e, ?retry_in, "queue worker stopped; restarting");
                    if !sleep_or_cancelled(retry_in, &self.shutdown).await {
                        return Ok(());
                    }
                }
            }
        }
    }
}

async fn handle(
    job: BatchJob,
    ctx: queue::JobContext,
    worker: LaneWorker,
) -> Result<(), JobFailure> {
    let LaneWorker {
        lane,
        pool,
        sources,
        queues,
        policy,
        slots,
        stats,
        ..
    } = worker;
    // The batch's span: a child of the scheduler generation (or live planner) that queued it,
    // so one trace runs from the API request to this write.
    let span = tracing::info_span!(
        "batch",
        otel.name = format!("batch {}", lane.as_str()),
        chain = %job.chain,
        lane = lane.as_str(),
        batch_id = %job.batch_id,
        backfill_id = %job.backfill_id,
        from = job.range.from,
        to = job.range.to,
        attempt = ctx.attempt,
        worker = %ctx.worker_name,
        outcome = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    telemetry::traces::continue_trace(&span, job.trace_context.as_ref());
    let _slot = slots
        .acquire()
        .instrument(span.clone())
        .await
        .map_err(|e| JobFailure::Retry(format!("no batch slot: {e}")))?;
    let _running = stats.running();
    let labels = [
        ("chain", job.chain.to_string()),
        ("lane", lane.as_str().to_owned()),
    ];
    let outcome = run_batch(&pool, &sources, &job, &ctx.worker_name, policy)
        .instrument(span.clone())
        .await;
    span.record(
        "outcome",
        match &outcome {
            Ok(BatchOutcome::Written(_)) => "written",
            Ok(_) => "skipped",
            Err(failure) => failure.resolution.as_str(),
        },
    );
    // Logged inside the batch's span, so the lines carry its trace id.
    let next = span.in_scope(|| match outcome {
        Ok(BatchOutcome::Written(outcome)) => {
            stats.written(job.range.len());
            tracing::debug!(target: "blockfill::worker", batch = %job.batch_id, blocks = outcome.blocks_inserted, "batch written");
            metrics::counter!("blockfill_batches_done_total", &labels).increment(1);
            metrics::counter!("blockfill_blocks_written_total", &labels)
                .increment(outcome.blocks_inserted);
            Ok(None)
        }
        Ok(other) => {
            tracing::info!(target: "blockfill::worker", batch = %job.batch_id, outcome = ?other, "batch skipped");
            Ok(None)
        }
        Err(failure) => match failure.resolution {
            Resolution::Retry => Err(JobFailure::Retry(failure.error.to_string())),
            Resolution::Failed | Resolution::Quarantined => Ok(None),
            Resolution::Split(children) => Ok(Some(children)),
        },
    })?;
    match next {
        // The halves go through the gate of the parent's lane; what does not fit waits
        // planned and is fed by the leader.
        Some(children) => enqueue_batches(&pool, &queues, lane, children)
            .instrument(span)
            .await
            .map(|_| ())
            .map_err(|e| JobFailure::Retry(format!("queueing the halves of a split batch: {e}"))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_chains_parse_names_and_take_empty_as_every_chain() {
        assert!(ServedChains::parse("").expect("empty is every chain").all());
        assert!(
            ServedChains::parse(" , ")
                .expect("blanks are every chain")
                .all()
        );
        let two = ServedChains::parse("mainnet, base,").expect("two names");
        assert_eq!(
            two.0,
            vec![
                ChainName::parse("mainnet").expect("valid"),
                ChainName::parse("base").expect("valid")
            ]
        );
        let bad = ServedChains::parse("mainnet,Not A Chain").expect_err("a bad name");
        assert!(bad.contains("Not A Chain"), "{bad}");
    }
}
