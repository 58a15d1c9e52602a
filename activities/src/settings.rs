//! Settings shared by both binaries: where PostgreSQL and Redis are, and how RPC endpoints are
//! used.

use std::time::Duration;

use clap::Args;

use crate::{
    queue::QueueSettings,
    source::{PoolSettings, RpcSettings, pool::concurrency::ConcurrencySettings},
};

/// Batches one worker process runs at once unless told otherwise: enough in flight to keep two
/// cores busy against a 100 ms endpoint (see `blockfill bench`).
pub const DEFAULT_WORKER_CONCURRENCY: usize = 16;

/// Where PostgreSQL and Redis are.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// PostgreSQL URL; the database is created if missing.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/blockfill"
    )]
    pub database_url: String,
    /// Redis URL.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// Prefix of every Redis key (queue namespace).
    #[arg(long, env = "BLOCKFILL_REDIS_PREFIX", default_value = "blockfill")]
    pub redis_prefix: String,
}

impl StoreArgs {
    /// Queue settings for these stores.
    pub fn queue(&self) -> QueueSettings {
        QueueSettings {
            redis_url: self.redis_url.clone(),
            prefix: self.redis_prefix.clone(),
            ..QueueSettings::default()
        }
    }
}

/// How chain RPC endpoints are used (per process; each endpoint of a chain can override its rate
/// and concurrency in the chain's `rpc_urls`).
#[derive(Debug, Clone, Args)]
pub struct RpcArgs {
    /// Timeout of one RPC request.
    #[arg(long = "rpc-timeout", env = "BLOCKFILL_RPC_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Calls per JSON-RPC batch (endpoints that reject batches get single requests).
    #[arg(long = "rpc-batch-size", env = "BLOCKFILL_RPC_BATCH_SIZE", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch_size: u32,
    /// Requests per second per endpoint (0: no limit).
    #[arg(long = "rpc-rps", env = "BLOCKFILL_RPC_RPS", default_value_t = 0)]
    pub rps: u32,
    /// Concurrency an endpoint starts with (it adapts between 2 and the maximum).
    #[arg(long = "rpc-initial-concurrency", env = "BLOCKFILL_RPC_INITIAL_CONCURRENCY", default_value_t = 16, value_parser = clap::value_parser!(u32).range(2..))]
    pub initial_concurrency: u32,
    /// Most requests in flight to one endpoint.
    #[arg(long = "rpc-max-concurrency", env = "BLOCKFILL_RPC_MAX_CONCURRENCY", default_value_t = 256, value_parser = clap::value_parser!(u32).range(2..))]
    pub max_concurrency: u32,
    /// How often every endpoint's chain id and genesis block are checked again.
    #[arg(long = "rpc-identity-check-interval", env = "BLOCKFILL_RPC_IDENTITY_CHECK_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub identity_check_interval: Duration,
}

impl Default for RpcArgs {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            batch_size: 100,
            rps: 0,
            initial_concurrency: 16,
            max_concurrency: 256,
            identity_check_interval: Duration::from_secs(30),
        }
    }
}

impl RpcArgs {
    /// The endpoint pool settings these flags describe.
    pub fn pool_settings(&self) -> PoolSettings {
        let defaults = PoolSettings::default();
        PoolSettings {
            rpc: RpcSettings {
                batch_size: self.batch_size.max(1) as usize,
                timeout: self.timeout,
            },
            default_rps: (self.rps > 0).then_some(self.rps),
            concurrency: ConcurrencySettings {
                initial: self.initial_concurrency,
                max: self.max_concurrency,
                ..defaults.concurrency
            },
            identity_check_interval: self.identity_check_interval,
            ..defaults
        }
    }
}
