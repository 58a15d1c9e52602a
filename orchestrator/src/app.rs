//! Wiring of `blockfill serve`: database and migrations, queues, the admin API, and the leader
//! election. Only while this orchestrator leads does it run the scheduler's worker, the head
//! tracker and the reconciler (which also compacts old live batch rows once a minute);
//! everything stops with one cancellation token.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context as _;
use blockfill_activities::{
    BatchQueues, SchedulerJob, SourceRegistry,
    backoff::{Backoff, sleep_or_cancelled},
    db,
    queue::{self, JobQueue, WorkerOptions},
    settings::StoreArgs,
    store::{Lane, queue_bounds},
    telemetry,
    types::lanes,
};
use blockfill_migrations::{Migrator, MigratorTrait};
use metrics_exporter_prometheus::PrometheusHandle;
use sea_orm::DatabaseConnection;
use tokio::{net::TcpListener, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{
    api::{self, ApiContext},
    context::AppContext,
    fleet::{self, Supervisor, supervisor::SupervisorSettings, worker_binary},
    head::track_heads,
    leader::{self, Role},
    reconciler, scheduler, seams,
    settings::ServeArgs,
};

/// How the scheduler's queue worker restarts after it stopped on an error.
const SCHEDULER_RESTART_BACKOFF: Backoff =
    Backoff::new(Duration::from_millis(500), Duration::from_secs(10));

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
    telemetry::metrics::prometheus()
}

/// A running orchestrator.
pub struct Orchestrator {
    /// Where the admin API listens.
    pub api_addr: SocketAddr,
    /// The scheduler context (database, queues), for callers that drive it directly.
    pub context: AppContext,
    /// This orchestrator's identity and role.
    pub role: Role,
    leading: Arc<Mutex<Option<AppContext>>>,
    tasks: JoinSet<anyhow::Result<()>>,
    shutdown: CancellationToken,
    /// The local worker supervisor (`--supervise-workers`).
    supervisor: Option<Arc<Supervisor>>,
}

impl Orchestrator {
    /// Starts the API and the campaign for leadership; returns once the API listens.
    pub async fn start(args: ServeArgs, shutdown: CancellationToken) -> anyhow::Result<Self> {
        let conn = prepare_database(&args.stores, 16).await?;
        let pool = conn.get_postgres_connection_pool().clone();
        let queue_settings = args.stores.queue();
        let queues = BatchQueues::connect(&queue_settings).await?;
        let scheduler_queue =
            JobQueue::<SchedulerJob>::connect(&queue_settings, lanes::SCHEDULER).await?;
        check_access(&args, &pool).await?;
        let listener = TcpListener::bind(args.api_addr).await.with_context(|| {
            format!(
                "cannot listen on {}; set BLOCKFILL_API_ADDR or --api-addr",
                args.api_addr
            )
        })?;
        let api_addr = listener.local_addr()?;
        let role = Role::new(api_addr.to_string());
        let context = AppContext {
            db: conn.clone(),
            pool: pool.clone(),
            queues,
            scheduler: scheduler_queue,
            settings: args.scheduler.clone(),
            shutdown: shutdown.clone(),
            instance: role.instance.clone(),
            term: None,
        };
        let supervisor = args
            .scheduler
            .fleet
            .supervise_workers
            .then(|| supervisor_settings(&args).map(|s| Arc::new(Supervisor::new(s))))
            .transpose()?;
        let leading: Arc<Mutex<Option<AppContext>>> = Arc::default();
        let mut tasks = JoinSet::new();

        let campaign_ctx = context.clone();
        let campaign_role = role.clone();
        let database_url = args
            .lock_database_url
            .clone()
            .unwrap_or_else(|| args.stores.database_url.clone());
        let head_poll_interval = args.scheduler.head_poll_interval;
        let seam_check_interval = args.scheduler.seam_check_interval;
        let campaign_shutdown = shutdown.clone();
        let campaign_leading = Arc::clone(&leading);
        let campaign_supervisor = supervisor.clone();
        tasks.spawn(async move {
            while let Some(term) = leader::acquire(
                &database_url,
                &campaign_ctx.pool,
                &campaign_role,
                &campaign_shutdown,
            )
            .await
            {
                let term_ctx = AppContext {
                    shutdown: term.token.clone(),
                    term: Some(term.term.clone()),
                    ..campaign_ctx.clone()
                };
                set_leading(&campaign_leading, Some(term_ctx.clone()));
                let fleet_ctx = term_ctx.clone();
                let mut components = lead(term_ctx, head_poll_interval, seam_check_interval);
                components.spawn(fleet::watch::run(fleet_ctx, campaign_supervisor.clone()));
                leader::hold(term, &campaign_ctx.pool, &campaign_role).await;
                set_leading(&campaign_leading, None);
                while components.join_next().await.is_some() {}
            }
            Ok(())
        });
        // Serve only once the first campaign is over, so a lone orchestrator never answers its
        // first requests as a standby.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !role.has_campaigned() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let router = api::router(ApiContext {
            app: context.clone(),
            role: role.clone(),
            metrics: prometheus(),
            supervisor: supervisor.clone(),
            sources: SourceRegistry::new(conn.clone(), args.scheduler.rpc.pool_settings()),
            access: Arc::new(api::access::Access::new(&args.access)),
            status_cache: Arc::new(api::StatusCache::new(args.status_cache)),
        });
        let api_shutdown = shutdown.clone();
        tasks.spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(api_shutdown.cancelled_owned())
            .await
            .context("admin API stopped")
        });
        tracing::info!(target: "blockfill::api", %api_addr, instance = %role.instance, "admin API listening");

        Ok(Self {
            api_addr,
            context,
            role,
            leading,
            tasks,
            shutdown,
            supervisor,
        })
    }

    /// The scheduler context of the current leader term, while this orchestrator leads.
    pub fn leader_context(&self) -> Option<AppContext> {
        self.leading
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
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
        if let Some(supervisor) = &self.supervisor {
            supervisor.stop_all().await;
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Refuses to serve a non-loopback address while no API key exists (unless
/// `--insecure-no-auth`), and says at start which access mode the API is in.
async fn check_access(args: &ServeArgs, pool: &sea_orm::sqlx::PgPool) -> anyhow::Result<()> {
    let addr = args.api_addr;
    if args.access.insecure_no_auth {
        tracing::warn!(target: "blockfill::api", %addr, "--insecure-no-auth: the admin API answers every request without a key as an admin, from any address; use it only on a trusted network");
        return Ok(());
    }
    let any_key = blockfill_activities::store::api_keys::any_active(pool)
        .await
        .context("checking for API keys")?;
    if any_key {
        tracing::info!(target: "blockfill::api", "API keys exist: every /v1 request needs one");
    } else if addr.ip().is_loopback() {
        tracing::info!(target: "blockfill::api", %addr, "no API key exists: development mode, loopback clients are admins; create one with `blockfill keys create`");
    } else {
        anyhow::bail!(
            "refusing to serve the admin API on {addr} with no API key: anyone who reaches it could do anything. \
             Create a key first with `blockfill keys create --name NAME --role admin`, \
             listen on a loopback address (--api-addr 127.0.0.1:8080), \
             or pass --insecure-no-auth to serve without authentication"
        );
    }
    Ok(())
}

/// How `args` has the supervisor run workers: this build's `blockfill-worker`, on the
/// orchestrator's own stores.
fn supervisor_settings(args: &ServeArgs) -> anyhow::Result<SupervisorSettings> {
    let fleet = &args.scheduler.fleet;
    Ok(SupervisorSettings {
        binary: worker_binary()?,
        stores: args.stores.clone(),
        concurrency: fleet.supervised_worker_concurrency.max(1),
        grace: fleet.supervised_worker_grace,
        scale_down_delay: fleet.fleet_scale_down_delay,
        log_dir: fleet.supervised_worker_log_dir.clone(),
    })
}

fn set_leading(leading: &Mutex<Option<AppContext>>, ctx: Option<AppContext>) {
    *leading
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = ctx;
}

/// Starts what only the leader runs, for one term (`ctx.shutdown` is the term's token):
/// resuming every unfinished backfill, the scheduler's worker, the reconciler, the head tracker.
fn lead(
    ctx: AppContext,
    head_poll_interval: Duration,
    seam_check_interval: Duration,
) -> JoinSet<()> {
    let mut components = JoinSet::new();

    let worker_ctx = ctx.clone();
    components.spawn(async move {
        let bounds = [
            (Lane::Backfill, worker_ctx.settings.max_queued_batches),
            (Lane::Live, worker_ctx.settings.max_queued_live_batches),
        ];
        if let Err(e) = queue_bounds::set(&worker_ctx.pool, &bounds).await {
            tracing::warn!(target: "blockfill::scheduler", error = %e, "cannot record the queue bounds; pushers use the defaults");
        }
        if let Err(e) = reconciler::resume_backfills(&worker_ctx, Duration::ZERO).await {
            tracing::warn!(target: "blockfill::scheduler", error = %e, "resuming backfills failed; the reconciler will retry");
        }
        let mut backoff = SCHEDULER_RESTART_BACKOFF.delays();
        while !worker_ctx.shutdown.is_cancelled() {
            let handler_ctx = worker_ctx.clone();
            let result = queue::run_worker(
                worker_ctx.scheduler.clone(),
                WorkerOptions {
                    name_prefix: "blockfill-scheduler".into(),
                    concurrency: 16,
                    ..WorkerOptions::default()
                },
                move |job: SchedulerJob, _ctx| {
                    scheduler::handle_scheduler_job(job, handler_ctx.clone())
                },
                worker_ctx.shutdown.clone(),
            )
            .await;
            if let Err(e) = result {
                let retry_in = backoff.next().unwrap_or(SCHEDULER_RESTART_BACKOFF.max);
                tracing::warn!(target: "blockfill::scheduler", error = %e, ?retry_in, "scheduler worker stopped; restarting");
                sleep_or_cancelled(retry_in, &worker_ctx.shutdown).await;
            }
        }
    });

    components.spawn(reconciler::run(ctx.clone()));

    let sources = SourceRegistry::new(ctx.db.clone(), ctx.settings.rpc.pool_settings());
    components.spawn(sources.clone().run_health_reports(
        ctx.pool.clone(),
        format!("orchestrator:{}", ctx.instance),
        Duration::from_secs(1),
        ctx.shutdown.clone(),
    ));
    let seams_ctx = ctx.clone();
    let seam_sources = sources.clone();
    components.spawn(async move {
        let mut ticker = tokio::time::interval(seam_check_interval);
        loop {
            tokio::select! {
                _ = seams_ctx.shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let checked = tokio::select! {
                _ = seams_ctx.shutdown.cancelled() => return,
                checked = seams::check_seams(&seams_ctx, &seam_sources) => checked,
            };
            if let Err(e) = checked {
                tracing::warn!(target: "blockfill::seams", error = %e, "seam check failed");
            }
        }
    });

    let new_head = Arc::new(tokio::sync::Notify::new());
    components.spawn(crate::new_heads::follow_new_heads(
        ctx.clone(),
        Arc::clone(&new_head),
    ));
    components.spawn(track_heads(
        ctx.clone(),
        sources,
        head_poll_interval,
        new_head,
    ));
    components
}
