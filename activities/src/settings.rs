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
    /// The flags' declared defaults.
    fn default() -> Self {
        flag_defaults()
    }
}

/// The defaults a set of flags declares (`default_value` attributes), ignoring the environment:
/// each default is written once, on its flag, and `Default` implementations read it from there.
///
/// # Panics
/// If a flag of `T` is required and has no default (a programming error, caught by the tests).
pub fn flag_defaults<T: clap::Args + clap::FromArgMatches>() -> T {
    let command = T::augment_args(clap::Command::new("defaults"))
        .mut_args(|arg| arg.env(None::<&'static str>));
    let matches = command
        .try_get_matches_from(["defaults"])
        .unwrap_or_else(|e| panic!("every flag has a default: {e}"));
    T::from_arg_matches(&matches).unwrap_or_else(|e| panic!("defaults parse: {e}"))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_flags_defaults() {
        let rpc = RpcArgs::default();
        assert_eq!(rpc.timeout, Duration::from_secs(10));
        assert_eq!(rpc.batch_size, 100);
        assert_eq!(rpc.identity_check_interval, Duration::from_secs(30));
        // The JSON-RPC client's own default agrees with the flag.
        assert_eq!(RpcSettings::default().timeout, rpc.timeout);
        assert_eq!(RpcSettings::default().batch_size, rpc.batch_size as usize);
        let stores: StoreArgs = flag_defaults();
        assert_eq!(stores.redis_prefix, "blockfill");
    }
}
