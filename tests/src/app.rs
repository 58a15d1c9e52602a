//! An in-process orchestrator on fresh stores per test ([`spawn_app`], [`TestApp`]) and the API
//! calls tests make. Readiness is polled on `/healthz`, never read from logs.
//!
//! A [`TestApp`] owns its stores ([`TestStores`]): [`TestApp::teardown`] stops everything and
//! drops them; if the test panics first, dropping the app stops the in-process orchestrator and
//! workers and the stores guard drops the database and the Redis keys all the same.

use std::{
    net::{SocketAddr, TcpListener},
    time::Duration,
};

use blockfill_activities::{
    BatchJob, BatchQueues, ChainName, Lane,
    queue::JobQueue,
    settings::{RpcArgs, StoreArgs},
};
use blockfill_orchestrator::{
    Orchestrator,
    settings::{FleetArgs, SchedulerArgs, ServeArgs},
};
use reqwest::StatusCode;
use sea_orm::{DatabaseConnection, sqlx::PgPool};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use crate::process::{Binaries, Process, binaries, store_env, wait_healthy};
pub use crate::stores::{TestStores, base_urls, drop_stores, fresh_stores};
use crate::wait::wait_until;

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
/// The Redis queue of `lane`'s batches of `chain` under `stores`' prefix.
pub async fn batch_queue(stores: &StoreArgs, lane: Lane, chain: &str) -> JobQueue<BatchJob> {
    let chain = ChainName::parse(chain).expect("a valid chain name");
    BatchQueues::connect(&stores.queue())
        .await
        .expect("Redis answers")
        .get(lane, &chain)
}

pub fn test_scheduler() -> SchedulerArgs {
    SchedulerArgs {
        generation_batches: 50,
        // Batches of exactly the chain's batch_size: tests count them (the sizing has its own).
        batch_target_rows: 0,
        max_queued_batches: 64,
        max_queued_live_batches: 64,
        generation_timeout: Duration::from_secs(5),
        head_poll_interval: Duration::from_millis(500),
        seam_check_interval: Duration::from_secs(1),
        rpc: test_rpc(),
        fleet: FleetArgs {
            fleet_interval: Duration::from_millis(500),
            ..FleetArgs::default()
        },
    }
}

/// A test's view of one Blockfill installation.
pub struct TestApp {
    /// sea-orm connection to the test database.
    pub db: DatabaseConnection,
    /// Raw pool to the test database.
    pub pool: PgPool,
    /// Admin API address.
    pub api: SocketAddr,
    /// HTTP client.
    pub client: reqwest::Client,
    /// The API key [`TestApp::get`], `post` and `patch` send (`Authorization: Bearer`), if any.
    pub bearer: Option<String>,
    orchestrator: Option<(Orchestrator, CancellationToken)>,
    workers: Vec<(CancellationToken, JoinHandle<()>)>,
    /// Database and Redis prefix of this test (the last field: dropped after everything using
    /// them).
    pub stores: TestStores,
}

impl Drop for TestApp {
    /// What [`TestApp::teardown`] did not stop (a test that panicked): cancels and aborts the
    /// in-process workers and orchestrator; the stores guard then drops the stores.
    fn drop(&mut self) {
        for (token, task) in self.workers.drain(..) {
            token.cancel();
            task.abort();
        }
        if let Some((orchestrator, shutdown)) = self.orchestrator.take() {
            shutdown.cancel();
            // Dropping it aborts its tasks (and the leader's components with them).
            drop(orchestrator);
        }
    }
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
    let mut args = ServeArgs::on_loopback(StoreArgs::clone(&stores), scheduler);
    // Tests read the status right after they change what it reports.
    args.status_cache = Duration::ZERO;
    adjust(&mut args);
    let orchestrator = Orchestrator::start(args, shutdown.clone())
        .await
        .expect("orchestrator starts");
    let db = orchestrator.context.db.clone();
    TestApp {
        pool: db.get_postgres_connection_pool().clone(),
        db,
        api: orchestrator.api_addr,
        client: reqwest::Client::new(),
        bearer: None,
        orchestrator: Some((orchestrator, shutdown)),
        workers: Vec::new(),
        stores,
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

    /// The Prometheus text of `GET /metrics`.
    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("http://{}/metrics", self.api))
            .send()
            .await
            .expect("GET /metrics answers")
            .text()
            .await
            .expect("a text body")
    }

    /// `GET path`, answering status and JSON body.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let mut request = self.client.get(format!("http://{}{path}", self.api));
        if let Some(key) = &self.bearer {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.expect("GET");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `method path` with `key` as the bearer (none: no `Authorization` header) and a JSON body
    /// (none: no body) and `headers`, answering status, headers and JSON body (`null` if none).
    pub async fn request_as(
        &self,
        key: Option<&str>,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut request = self
            .client
            .request(method.clone(), format!("http://{}{path}", self.api));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status();
        let headers = response.headers().clone();
        (
            status,
            headers,
            response.json().await.unwrap_or(Value::Null),
        )
    }

    /// Creates an API key with `role` through the API (as the current bearer, or as a loopback
    /// admin while no key exists); answers its token.
    pub async fn create_key(&self, name: &str, role: &str) -> String {
        let (status, body) = self
            .post("/v1/keys", json!({"name": name, "role": role}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "create key: {body}");
        body["token"].as_str().expect("a token").to_owned()
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send_json(reqwest::Method::POST, path, body).await
    }

    /// `PATCH path` with a JSON body.
    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send_json(reqwest::Method::PATCH, path, body).await
    }

    /// `method path` with a JSON body, answering status and JSON body (`null` if none).
    async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let (status, _, body) = self
            .request_as(self.bearer.as_deref(), method, path, Some(body), &[])
            .await;
        (status, body)
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
        wait_until(&format!("backfill {id} to finish"), timeout, async || {
            let (_, view) = self.get(&format!("/v1/backfills/{id}")).await;
            if matches!(
                view["status"].as_str(),
                Some("completed" | "failed" | "cancelled")
            ) {
                Ok(view)
            } else {
                Err(view)
            }
        })
        .await
    }

    /// Starts an in-process worker (the same code as the binary) with `concurrency`.
    pub fn spawn_inprocess_worker(&mut self, concurrency: usize) {
        let token = CancellationToken::new();
        let args = blockfill_workers::WorkerArgs {
            stores: StoreArgs::clone(&self.stores),
            rpc: test_rpc(),
            concurrency,
            live_concurrency: 2,
            attempt_budget: 5,
            retry_backoff: Duration::from_millis(100),
            shutdown_deadline: Duration::from_secs(10),
            database_wait: Duration::from_secs(60),
            chains: Default::default(),
            metrics_addr: None,
            name: "test-worker".into(),
        };
        let stop = token.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = blockfill_workers::run(args, stop).await {
                tracing::error!(error = %e, "in-process worker failed");
            }
        });
        self.workers.push((token, task));
    }

    /// Polls until the chain's status counts at least `count` repaired reorgs and every
    /// (non-live) backfill of the chain is completed; returns the status.
    pub async fn wait_for_reorgs_repaired(&self, chain: &str, count: i64) -> Value {
        let what = format!("{count} reorgs of {chain} repaired, every backfill completed");
        wait_until(&what, Duration::from_secs(60), async || {
            let (_, status) = self.get(&format!("/v1/chains/{chain}/status")).await;
            let (_, backfills) = self.get(&format!("/v1/backfills?chain={chain}")).await;
            let settled = backfills.as_array().is_some_and(|all| {
                all.iter()
                    .all(|b| b["mode"] == "live" || b["status"] == "completed")
            });
            if status["live"]["reorgs_seen"].as_i64() >= Some(count) && settled {
                Ok(status)
            } else {
                Err(format!("{status}\n{backfills}"))
            }
        })
        .await
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

    /// Stops the in-process orchestrator and starts a new one on the same database and Redis
    /// prefix (the workers keep running); the API moves to the new one's address.
    pub async fn restart_orchestrator(&mut self, scheduler: SchedulerArgs) {
        if let Some((orchestrator, shutdown)) = self.orchestrator.take() {
            shutdown.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(10), orchestrator.wait()).await;
        }
        let shutdown = CancellationToken::new();
        let mut args = ServeArgs::on_loopback(StoreArgs::clone(&self.stores), scheduler);
        args.status_cache = Duration::ZERO;
        let orchestrator = Orchestrator::start(args, shutdown.clone())
            .await
            .expect("orchestrator restarts");
        self.api = orchestrator.api_addr;
        self.orchestrator = Some((orchestrator, shutdown));
    }

    /// Stops everything and drops the test's database and Redis keys.
    pub async fn teardown(mut self) {
        let mut stopping = Vec::new();
        for (token, task) in self.workers.drain(..) {
            token.cancel();
            stopping.push(task);
        }
        for task in stopping {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        if let Some((orchestrator, shutdown)) = self.orchestrator.take() {
            shutdown.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(10), orchestrator.wait()).await;
        }
        self.db.clone().close().await.ok();
        self.stores.drop_now().await;
    }
}
