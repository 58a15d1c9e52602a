//! Settings shared by both binaries: where PostgreSQL and Redis are.

use clap::Args;

use crate::queue::QueueSettings;

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
