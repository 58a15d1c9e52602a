//! Wiring of `blockfill serve`: database and migrations, queues, the scheduler's worker, the head
//! tracker, the reconciler and the admin API, all stopped by one cancellation token.

use std::{net::SocketAddr, sync::OnceLock, time::Duration};

use anyhow::Context as _;
use blockfill_activities::{
    BatchJob, SchedulerJob, SourceRegistry, db,
    queue::{self, JobQueue, WorkerOptions},
    source::RpcSettings,
    types::lanes,
};
use blockfill_migrations::{Migrator, MigratorTrait};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sea_orm::DatabaseConnection;
use tokio::{net::TcpListener, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{
    api::{self, ApiContext},
    head::track_heads,
    scheduler::{self, SchedulerContext},
    settings::{ServeArgs, StoreArgs},
};

/// Connects to PostgreSQL (creating the database if needed) and applies pending migrations.
pub async fn prepare_database(
    stores: &StoreArgs,
    max_connections: u32,
) -> anyhow::Result<DatabaseConnection> {
    db::ensure_database(&stores.database_url).await?;
    let conn = db::connect(&stores.database_url, max_connections).await?;
    Migrator::up(&conn, None)
        .await
        .context("applying migrations")?;
    Ok(conn)
}

/// The process-wide Prometheus recorder (installed once; later calls reuse it).
pub fn prometheus() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .clone()
}

/// A running orchestrator.
pub struct Orchestrator {
    /// Where the admin API listens.
    pub api_addr: SocketAddr,
    /// The scheduler context (database, queues), for callers that drive it directly.
    pub context: SchedulerContext,
    tasks: JoinSet<anyhow::Result<()>>,
    shutdown: CancellationToken,
}

impl Orchestrator {
    /// Starts every component; returns once the API listens.
    pub async fn start(args: ServeArgs, shutdown: CancellationToken) -> anyhow::Result<Self> {
        let conn = prepare_database(&args.stores, 16).await?;
        let pool = conn.get_postgres_connection_pool().clone();
        let queue_settings = args.stores.queue();
        let batches = JobQueue::<BatchJob>::connect(&queue_settings, lanes::BATCHES).await?;
        let scheduler_queue =
            JobQueue::<SchedulerJob>::connect(&queue_settings, lanes::SCHEDULER).await?;
        let context = SchedulerContext {
            db: conn.clone(),
            pool: pool.clone(),
            batches: batches.clone(),
            scheduler: scheduler_queue.clone(),
            settings: args.scheduler.clone(),
            shutdown: shutdown.clone(),
        };
        let listener = TcpListener::bind(args.api_addr).await.with_context(|| {
            format!(
                "cannot listen on {}; set BLOCKFILL_API_ADDR or --api-addr",
                args.api_addr
            )
        })?;
        let api_addr = listener.local_addr()?;
        let mut tasks = JoinSet::new();

        let resumed = scheduler::resume_backfills(&context, Duration::ZERO).await?;
        if resumed > 0 {
            tracing::info!(target: "blockfill::scheduler", resumed, "resumed unfinished backfills");
        }

        let handler_ctx = context.clone();
        let worker_shutdown = shutdown.clone();
        tasks.spawn(async move {
            queue::run_worker(
                scheduler_queue,
                WorkerOptions {
                    name_prefix: "blockfill-scheduler".into(),
                    concurrency: 16,
                    ..WorkerOptions::default()
                },
                move |job: SchedulerJob, _ctx| {
                    scheduler::handle_scheduler_job(job, handler_ctx.clone())
                },
                worker_shutdown,
            )
            .await
            .context("scheduler worker stopped")
        });

        let sources = SourceRegistry::new(conn.clone(), RpcSettings::default());
        let heads = track_heads(
            conn.clone(),
            pool.clone(),
            sources,
            args.scheduler.head_poll_interval,
            shutdown.clone(),
        );
        tasks.spawn(async move {
            heads.await;
            Ok(())
        });

        let reconciler = context.clone();
        let stalled_after = args.scheduler.generation_timeout * 2 + Duration::from_secs(10);
        tasks.spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = reconciler.shutdown.cancelled() => return Ok(()),
                    _ = ticker.tick() => {}
                }
                if let Err(e) = scheduler::resume_backfills(&reconciler, stalled_after).await {
                    tracing::warn!(target: "blockfill::reconciler", error = %e, "reconcile pass failed");
                }
                if let Err(e) = reconciler.batches.vacuum().await {
                    tracing::warn!(target: "blockfill::reconciler", error = %e, "queue vacuum failed");
                }
            }
        });

        let router = api::router(ApiContext {
            scheduler: context.clone(),
            redis_url: args.stores.redis_url.clone(),
            metrics: prometheus(),
        });
        let api_shutdown = shutdown.clone();
        tasks.spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(api_shutdown.cancelled_owned())
                .await
                .context("admin API stopped")
        });
        tracing::info!(target: "blockfill::api", %api_addr, "admin API listening");
        Ok(Self {
            api_addr,
            context,
            tasks,
            shutdown,
        })
    }

    /// Waits until every component stopped (after the shutdown token is cancelled), or until one
    /// fails, in which case the others are stopped too and the error is returned.
    pub async fn wait(mut self) -> anyhow::Result<()> {
        let mut first_error = None;
        while let Some(joined) = self.tasks.join_next().await {
            let result = joined.map_err(anyhow::Error::from).and_then(|r| r);
            if let Err(e) = result {
                if !self.shutdown.is_cancelled() {
                    tracing::error!(error = %e, "a component failed; stopping");
                    self.shutdown.cancel();
                }
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
