//! Settings of the `blockfill` binary: flags and environment variables, each with its default.

use std::{net::SocketAddr, time::Duration};

use blockfill_activities::settings::flag_defaults;
pub use blockfill_activities::settings::{RpcArgs, StoreArgs};
use clap::Args;

/// How the scheduler plans.
#[derive(Debug, Clone, Args)]
pub struct SchedulerArgs {
    /// Batches one scheduler generation plans before it continues as new.
    #[arg(long, env = "BLOCKFILL_GENERATION_BATCHES", default_value_t = 500)]
    pub generation_batches: u64,
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
    }
}
