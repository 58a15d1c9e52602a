//! Settings of the `blockfill` binary: flags and environment variables, each with its default.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use blockfill_activities::settings::flag_defaults;
pub use blockfill_activities::settings::{RpcArgs, StoreArgs};
use clap::Args;

/// How the scheduler plans.
#[derive(Debug, Clone, Args)]
pub struct SchedulerArgs {
    /// Batches one scheduler generation plans before it continues as new.
    #[arg(long, env = "BLOCKFILL_GENERATION_BATCHES", default_value_t = 500)]
    pub generation_batches: u64,
    /// Rows a backfill batch aims at: on a chain whose recent blocks are sparse, the scheduler
    /// plans batches of more blocks than the chain's `batch_size` (up to 10 times it) so each
    /// batch writes about this many rows; dense chains keep their `batch_size`. Zero keeps
    /// every batch at `batch_size`.
    #[arg(long, env = "BLOCKFILL_BATCH_TARGET_ROWS", default_value_t = 10_000)]
    pub batch_target_rows: u64,
    /// Most batch jobs waiting or running in Redis at once (the queue bound).
    #[arg(long, env = "BLOCKFILL_MAX_QUEUED_BATCHES", default_value_t = 256)]
    pub max_queued_batches: u64,
    /// Most live-sync batch jobs waiting or running in Redis at once; further live work waits as
    /// planned rows in PostgreSQL and is fed as room frees.
    #[arg(long, env = "BLOCKFILL_MAX_QUEUED_LIVE_BATCHES", default_value_t = 256)]
    pub max_queued_live_batches: u64,
    /// How long one generation may wait for room in the queue before continuing as new.
    #[arg(long, env = "BLOCKFILL_GENERATION_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub generation_timeout: Duration,
    /// How often the head tracker polls every chain's head.
    #[arg(long, env = "BLOCKFILL_HEAD_POLL_INTERVAL", default_value = "500ms", value_parser = humantime::parse_duration)]
    pub head_poll_interval: Duration,
    /// How often stored blocks are checked for reorgs no write noticed (hash continuity of the
    /// recent blocks, stored tip against the node).
    #[arg(long, env = "BLOCKFILL_SEAM_CHECK_INTERVAL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub seam_check_interval: Duration,
    /// How the orchestrator's own RPC requests (heads, seam checks, reorg repairs) use endpoints.
    #[command(flatten)]
    pub rpc: RpcArgs,
    /// How the worker fleet is sized (and, with `--supervise-workers`, run).
    #[command(flatten)]
    pub fleet: FleetArgs,
}

/// How the worker fleet is sized, and the local supervisor.
#[derive(Debug, Clone, Args)]
pub struct FleetArgs {
    /// How long a backlog may take to drain: each chain's desired fleet grows (up to its
    /// `max_workers`) until the backlog would be indexed within this at the measured rate.
    #[arg(long, env = "BLOCKFILL_FLEET_TARGET_DRAIN", default_value = "10m", value_parser = humantime::parse_duration)]
    pub fleet_target_drain: Duration,
    /// How often the leader sizes every chain's fleet (the gauge
    /// `blockfill_fleet_desired_workers`, and the supervisor's starts and stops).
    #[arg(long, env = "BLOCKFILL_FLEET_INTERVAL", default_value = "2s", value_parser = humantime::parse_duration)]
    pub fleet_interval: Duration,
    /// Start and stop local `blockfill-worker` processes (one chain each) to match each chain's
    /// desired fleet, stopping them with SIGTERM so in-flight batches finish. Off where
    /// something else runs the workers (compose replicas, Kubernetes with KEDA).
    #[arg(long, env = "BLOCKFILL_SUPERVISE_WORKERS", default_value_t = false)]
    pub supervise_workers: bool,
    /// The supervisor shrinks a chain's workers only to the largest size desired over this
    /// long, so a dip in the backlog or the measured rate does not stop and restart workers.
    #[arg(long, env = "BLOCKFILL_FLEET_SCALE_DOWN_DELAY", default_value = "30s", value_parser = humantime::parse_duration)]
    pub fleet_scale_down_delay: Duration,
    /// Batches each supervised worker runs at once.
    #[arg(long, env = "BLOCKFILL_SUPERVISED_WORKER_CONCURRENCY", default_value_t = blockfill_activities::settings::DEFAULT_WORKER_CONCURRENCY)]
    pub supervised_worker_concurrency: usize,
    /// How long a supervised worker may drain after SIGTERM before it is killed (above the
    /// worker's own shutdown deadline, 30 s by default).
    #[arg(long, env = "BLOCKFILL_SUPERVISED_WORKER_GRACE", default_value = "45s", value_parser = humantime::parse_duration)]
    pub supervised_worker_grace: Duration,
    /// Where supervised workers log (`{dir}/{chain}/worker-{n}.log`).
    #[arg(
        long,
        env = "BLOCKFILL_SUPERVISED_WORKER_LOG_DIR",
        default_value = "logs/workers"
    )]
    pub supervised_worker_log_dir: PathBuf,
}

impl Default for FleetArgs {
    /// The flags' declared defaults.
    fn default() -> Self {
        flag_defaults()
    }
}

impl Default for SchedulerArgs {
    /// The flags' declared defaults.
    fn default() -> Self {
        flag_defaults()
    }
}

/// Everything `blockfill serve` needs.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// PostgreSQL and Redis.
    #[command(flatten)]
    pub stores: StoreArgs,
    /// Scheduler tuning.
    #[command(flatten)]
    pub scheduler: SchedulerArgs,
    /// Address of the admin API and dashboard.
    #[arg(long, env = "BLOCKFILL_API_ADDR", default_value = "127.0.0.1:8080")]
    pub api_addr: SocketAddr,
    /// PostgreSQL URL of the leader lock's own connection (default: `DATABASE_URL`). Point it
    /// past a transaction-mode pooler (PgBouncer), which cannot hold session advisory locks.
    #[arg(long, env = "BLOCKFILL_LOCK_DATABASE_URL")]
    pub lock_database_url: Option<String>,
    /// Who may use the admin API: keys, the development mode, limits.
    #[command(flatten)]
    pub access: AccessArgs,
    /// How long a chain's status answer is reused: at most one computation per chain in this
    /// time, however many ask (0: every request computes it).
    #[arg(long, env = "BLOCKFILL_STATUS_CACHE", default_value = "250ms", value_parser = humantime::parse_duration)]
    pub status_cache: Duration,
}

/// Who may use the admin API (see `api::access`).
///
/// Once a key exists (`blockfill keys create`), every `/v1` request needs one. Until then only
/// loopback clients are answered (as admins), and `serve` refuses a non-loopback `--api-addr`
/// unless `--insecure-no-auth`.
#[derive(Debug, Clone, Args)]
pub struct AccessArgs {
    /// Answer every request without a key as an admin, from anywhere (`auth: insecure`). Only
    /// for a trusted network; logged at warn on start.
    #[arg(long, env = "BLOCKFILL_INSECURE_NO_AUTH", default_value_t = false)]
    pub insecure_no_auth: bool,
    /// Requests per second each key may make (each client address without a key), with bursts
    /// of twice as many; over it the API answers 429 with `Retry-After`. 0: no limit.
    #[arg(long, env = "BLOCKFILL_RATE_LIMIT_PER_KEY", default_value_t = 50)]
    pub rate_limit_per_key: u32,
    /// Also require a key (viewer) for `/healthz`, `/readyz` and `/metrics`; by default they
    /// stay open for probes and scrapers.
    #[arg(long, env = "BLOCKFILL_PROTECT_PROBES", default_value_t = false)]
    pub protect_probes: bool,
}

impl Default for AccessArgs {
    /// The flags' declared defaults.
    fn default() -> Self {
        flag_defaults()
    }
}

impl ServeArgs {
    /// `serve` on `stores` with `scheduler`, its API on a free loopback port (the demo, the
    /// benchmarks and tests).
    pub fn on_loopback(stores: StoreArgs, scheduler: SchedulerArgs) -> Self {
        Self {
            stores,
            scheduler,
            api_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            lock_database_url: None,
            access: AccessArgs::default(),
            status_cache: Duration::from_millis(250),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_defaults_are_the_flags_defaults() {
        let defaults = SchedulerArgs::default();
        assert_eq!(defaults.generation_batches, 500);
        assert_eq!(defaults.max_queued_batches, 256);
        assert_eq!(defaults.generation_timeout, Duration::from_secs(30));
        assert_eq!(defaults.head_poll_interval, Duration::from_millis(500));
        assert_eq!(defaults.rpc.timeout, RpcArgs::default().timeout);
        assert_eq!(defaults.fleet.fleet_target_drain, Duration::from_secs(600));
        assert!(!defaults.fleet.supervise_workers);
    }
}
