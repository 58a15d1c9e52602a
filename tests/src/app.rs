//! Fresh stores per test, an in-process orchestrator, the real binaries as child processes, and
//! the API calls tests make. Readiness is polled on `/healthz`, never read from logs.

use std::{
    net::{SocketAddr, TcpListener},
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use blockfill_activities::settings::{RpcArgs, StoreArgs};
use blockfill_orchestrator::{
    Orchestrator,
    settings::{SchedulerArgs, ServeArgs},
};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, DatabaseConnection, sqlx::PgPool};
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Base PostgreSQL URL (without database) and Redis URL used by tests.
pub fn base_urls() -> (String, String) {
    (
        std::env::var("BLOCKFILL_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into()),
        std::env::var("BLOCKFILL_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
    )
}

/// A fresh database name and Redis prefix, unique to one test.
pub fn fresh_stores() -> StoreArgs {
    let id = Uuid::now_v7().simple().to_string();
    let (postgres, redis) = base_urls();
    StoreArgs {
        database_url: format!("{postgres}/bf_test_{}", &id[id.len() - 16..]),
        redis_url: redis,
        redis_prefix: format!("bf-test-{id}"),
    }
}

/// Drops a test's database and Redis keys.
pub async fn drop_stores(stores: &StoreArgs) {
    let (postgres, _) = base_urls();
    if let Ok(admin) = blockfill_activities::db::connect(&format!("{postgres}/postgres"), 1).await {
        let name = stores.database_url.rsplit('/').next().unwrap_or_default();
        let _ = admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await;
    }
    if let Ok(client) = redis::Client::open(stores.redis_url.as_str())
        && let Ok(mut conn) = client.get_multiplexed_async_connection().await
    {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", stores.redis_prefix))
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        for chunk in keys.chunks(500) {
            let _: Result<(), _> = redis::cmd("DEL").arg(chunk).query_async(&mut conn).await;
        }
    }
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// RPC settings for tests: endpoints' identities are checked again every second.
pub fn test_rpc() -> RpcArgs {
    RpcArgs {
        identity_check_interval: Duration::from_secs(1),
        ..RpcArgs::default()
    }
}

/// Scheduler settings for tests: short generations and timeouts.
pub fn test_scheduler() -> SchedulerArgs {
    SchedulerArgs {
        generation_batches: 50,
        max_queued_batches: 64,
        max_queued_live_batches: 64,
        generation_timeout: Duration::from_secs(5),
        head_poll_interval: Duration::from_millis(500),
        seam_check_interval: Duration::from_secs(1),
        rpc: test_rpc(),
    }
}

/// A test's view of one Blockfill installation.
pub struct TestApp {
    /// Database and Redis prefix of this test.
    pub stores: StoreArgs,
    /// sea-orm connection to the test database.
    pub db: DatabaseConnection,
    /// Raw pool to the test database.
    pub pool: PgPool,
    /// Admin API address.
    pub api: SocketAddr,
    /// HTTP client.
    pub client: reqwest::Client,
    orchestrator: Option<(Orchestrator, CancellationToken)>,
    workers: Vec<CancellationToken>,
}

/// Starts an in-process orchestrator on fresh stores.
pub async fn spawn_app(scheduler: SchedulerArgs) -> TestApp {
    spawn_app_with(scheduler, |_| {}).await
}

/// Starts an in-process orchestrator on fresh stores, after `adjust` changed its settings.
pub async fn spawn_app_with(
    scheduler: SchedulerArgs,
    adjust: impl FnOnce(&mut ServeArgs),
) -> TestApp {
    init_test_logging();
    let stores = fresh_stores();
    let shutdown = CancellationToken::new();
    let mut args = ServeArgs::on_loopback(stores.clone(), scheduler);
    adjust(&mut args);
    let orchestrator = Orchestrator::start(args, shutdown.clone())
        .await
        .expect("orchestrator starts");
    let db = orchestrator.context.db.clone();
    TestApp {
        stores,
        pool: db.get_postgres_connection_pool().clone(),
        db,
        api: orchestrator.api_addr,
        client: reqwest::Client::new(),
        orchestrator: Some((orchestrator, shutdown)),
        workers: Vec::new(),
    }
}

/// Logs for tests: `RUST_LOG` (default warnings only), written through the test writer.
pub fn init_test_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

impl TestApp {
    /// The in-process orchestrator's scheduler context (database, queues, settings): that of its
    /// current leader term while it leads.
    pub fn context(&self) -> blockfill_orchestrator::context::AppContext {
        self.orchestrator
            .as_ref()
            .map(|(o, _)| o.leader_context().unwrap_or_else(|| o.context.clone()))
            .expect("the orchestrator runs")
    }

    /// `GET path`, answering status and JSON body.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .get(format!("http://{}{path}", self.api))
            .send()
            .await
            .expect("GET");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("http://{}{path}", self.api))
            .json(&body)
            .send()
            .await
            .expect("POST");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Registers a chain through the API, without live sync (tests of historical work stay
    /// deterministic).
    pub async fn register_chain(&self, name: &str, rpc_url: &str, batch_size: u32) -> Value {
        self.register(json!({"name": name, "rpc_urls": [rpc_url], "batch_size": batch_size, "live_sync": false}))
            .await
    }

    /// Registers a chain through the API with `body` as it is.
    pub async fn register(&self, body: Value) -> Value {
        let (status, body) = self.post("/v1/chains", body).await;
        assert_eq!(status, StatusCode::CREATED, "register chain: {body}");
        body
    }

    /// Requests a range backfill; returns its id.
    pub async fn trigger_backfill(&self, chain: &str, from: u64, to: u64) -> String {
        let (status, body) = self
            .post(
                "/v1/backfills",
                json!({"chain": chain, "from": from, "to": to}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "trigger backfill: {body}");
        body["id"].as_str().expect("id").to_owned()
    }

    /// Polls a backfill until it is completed, failed or cancelled, or `timeout` passes.
    pub async fn wait_until_finished(&self, id: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (_, view) = self.get(&format!("/v1/backfills/{id}")).await;
            if matches!(
                view["status"].as_str(),
                Some("completed" | "failed" | "cancelled")
            ) {
                return view;
            }
            assert!(
                Instant::now() < deadline,
                "backfill {id} did not finish within {timeout:?}: {view}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Starts an in-process worker (the same code as the binary) with `concurrency`.
    pub fn spawn_inprocess_worker(&mut self, concurrency: usize) {
        let token = CancellationToken::new();
        let args = blockfill_workers::WorkerArgs {
            stores: self.stores.clone(),
            rpc: test_rpc(),
            concurrency,
            live_concurrency: 2,
            attempt_budget: 5,
            retry_backoff: Duration::from_millis(100),
            shutdown_deadline: Duration::from_secs(10),
            database_wait: Duration::from_secs(60),
            name: "test-worker".into(),
        };
        let stop = token.clone();
        tokio::spawn(async move {
            if let Err(e) = blockfill_workers::run(args, stop).await {
                tracing::error!(error = %e, "in-process worker failed");
            }
        });
        self.workers.push(token);
    }

    /// Polls until the chain's status counts at least `count` repaired reorgs and every
    /// (non-live) backfill of the chain is completed; returns the status.
    pub async fn wait_for_reorgs_repaired(&self, chain: &str, count: i64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, status) = self.get(&format!("/v1/chains/{chain}/status")).await;
            let (_, backfills) = self.get(&format!("/v1/backfills?chain={chain}")).await;
            let settled = backfills.as_array().is_some_and(|all| {
                all.iter()
                    .all(|b| b["mode"] == "live" || b["status"] == "completed")
            });
            if status["live"]["reorgs_seen"].as_i64() >= Some(count) && settled {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "reorg {count} not repaired: {status}\n{backfills}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Compares every stored block, transaction and log of `chain` in `range` with the node at
    /// `rpc_url`; panics with the mismatches.
    pub async fn assert_verified(
        &self,
        rpc_url: &str,
        chain: &str,
        range: blockfill_activities::BlockRange,
    ) {
        let source = blockfill_activities::EvmRpcSource::new(
            rpc_url,
            blockfill_activities::source::RpcSettings::default(),
        )
        .expect("an RPC source");
        let report = blockfill_orchestrator::verify::verify_range(
            &self.pool,
            &blockfill_activities::ChainName::parse(chain).expect("a chain name"),
            &source,
            range,
            500,
        )
        .await
        .expect("verify");
        assert!(report.is_clean(), "{:#?}", report.mismatches);
    }

    /// One SQL count.
    pub async fn count(&self, sql: &str) -> i64 {
        let (n,): (i64,) = sea_orm::sqlx::query_as(sea_orm::sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        n
    }

    /// Stops everything and drops the test's database and Redis keys.
    pub async fn teardown(mut self) {
        for worker in self.workers.drain(..) {
            worker.cancel();
        }
        if let Some((orchestrator, shutdown)) = self.orchestrator.take() {
            shutdown.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(10), orchestrator.wait()).await;
        }
        self.db.clone().close().await.ok();
        drop_stores(&self.stores).await;
    }
}

/// Paths of the real binaries (`cargo build --bins` puts them next to the test binary's parent).
pub struct Binaries {
    /// `blockfill`.
    pub blockfill: PathBuf,
    /// `blockfill-worker`.
    pub worker: PathBuf,
}

/// Finds the real binaries of this build.
pub fn binaries() -> anyhow::Result<Binaries> {
    let exe = std::env::current_exe()?;
    let deps = exe.parent().context("test binary without a directory")?;
    let profile_dir = deps
        .parent()
        .context("test binary outside target/<profile>/deps")?;
    let blockfill = profile_dir.join("blockfill");
    let worker = profile_dir.join("blockfill-worker");
    anyhow::ensure!(
        blockfill.is_file() && worker.is_file(),
        "the binaries are not built in {}: run `cargo build --workspace --bins` first (scripts/test.sh does)",
        profile_dir.display()
    );
    Ok(Binaries { blockfill, worker })
}

/// A child process of a real binary, killed on drop.
pub struct Process {
    /// The child.
    pub child: Child,
    /// Its log file.
    pub log: PathBuf,
}

impl Process {
    /// Starts `binary args` with `env`, logging to `target/test-logs/<name>.log`.
    pub fn start(
        binary: &PathBuf,
        args: &[&str],
        env: &[(&str, String)],
        name: &str,
    ) -> anyhow::Result<Self> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-logs");
        std::fs::create_dir_all(&dir)?;
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log)?;
        let mut command = Command::new(binary);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(file.try_clone()?))
            .stderr(Stdio::from(file))
            .kill_on_drop(true);
        for (k, v) in env {
            command.env(k, v);
        }
        Ok(Self {
            child: command
                .spawn()
                .with_context(|| format!("starting {}", binary.display()))?,
            log,
        })
    }

    /// SIGKILL, and wait for the exit.
    pub async fn kill9(&mut self) {
        let _ = self.child.kill().await;
    }

    /// SIGTERM, then wait up to `grace`; returns whether it exited by itself.
    pub async fn terminate(&mut self, grace: Duration) -> bool {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await;
        }
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(_) => true,
            Err(_) => {
                let _ = self.child.kill().await;
                false
            }
        }
    }
}

/// Environment for a real binary on `stores`.
pub fn store_env(stores: &StoreArgs) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", stores.database_url.clone()),
        ("REDIS_URL", stores.redis_url.clone()),
        ("BLOCKFILL_REDIS_PREFIX", stores.redis_prefix.clone()),
        (
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info,sqlx=warn".into()),
        ),
    ]
}

/// Polls `http://addr/healthz` until it answers or `timeout` passes.
pub async fn wait_healthy(addr: SocketAddr, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let client = reqwest::Client::new();
    loop {
        if let Ok(response) = client.get(format!("http://{addr}/healthz")).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{addr} not healthy within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
