//! Chain sources: where blocks come from. [`ChainSource`] is the one interface the fetch activity
//! uses; [`EvmRpcSource`] talks JSON-RPC to a node through an [`EndpointPool`]. The deterministic
//! devnet chain is test tooling and lives in the `blockfill-devnet` crate.

mod evm_rpc;
pub mod pool;
mod registry;
mod rows;
mod rpc_types;

pub use evm_rpc::{EvmRpcSource, RpcSettings, range_request_bodies};
pub use pool::{
    ChainIdentity, EndpointConfig, EndpointPool, EndpointSnapshot, IdentityState, PoolSettings,
    PrioritizedPool, RequestPriority,
};
pub use registry::SourceRegistry;
pub use rows::{BlockBundle, BlockRow, LogRow, TransactionRow};
pub use rpc_types::{RpcBlock, RpcLog, RpcTransaction};

use async_trait::async_trait;

use crate::types::BlockRange;

/// How an endpoint is named in errors, logs and metrics (also under its old path,
/// `source::redact_url`).
pub use crate::redact::redact_url;

/// Why a source could not deliver a range.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The request never got an HTTP answer (connection refused or reset, unreadable body).
    #[error("RPC transport error from {endpoint}: {message}")]
    Transport {
        /// The endpoint that failed.
        endpoint: String,
        /// What went wrong.
        message: String,
    },
    /// No answer within the request timeout.
    #[error("RPC request to {endpoint} timed out after {timeout:?}")]
    Timeout {
        /// The endpoint that did not answer.
        endpoint: String,
        /// The timeout.
        timeout: std::time::Duration,
    },
    /// An HTTP status other than 200 and 429 (a 5xx, a proxy error page).
    #[error("HTTP {status} from {endpoint}")]
    Http {
        /// The endpoint that answered.
        endpoint: String,
        /// The status code.
        status: u16,
    },
    /// Every endpoint of the chain is unusable right now (breakers open, rate limited).
    #[error("no usable RPC endpoint for {chain}: {detail}")]
    NoEndpoint {
        /// The chain.
        chain: String,
        /// Each endpoint's state.
        detail: String,
    },
    /// The endpoint asked us to slow down (HTTP 429 or JSON-RPC -32005).
    #[error(
        "rate limited by {endpoint}{}; lower the chain's request rate or add endpoints",
        retry_after_secs.map(|s| format!(" (retry after {s}s)")).unwrap_or_default()
    )]
    RateLimited {
        /// The endpoint that refused.
        endpoint: String,
        /// What its `Retry-After` header said.
        retry_after_secs: Option<u64>,
    },
    /// The node answered with a JSON-RPC error.
    #[error("RPC error {code} from {endpoint} for {method}: {message}")]
    Rpc {
        /// The endpoint that answered.
        endpoint: String,
        /// The method called.
        method: String,
        /// JSON-RPC error code.
        code: i64,
        /// JSON-RPC error message.
        message: String,
    },
    /// The answer could not be parsed or is inconsistent with what was asked.
    #[error("malformed answer from {endpoint} for blocks {range}: {message}")]
    Malformed {
        /// The endpoint that answered.
        endpoint: String,
        /// The range being fetched.
        range: BlockRange,
        /// What is wrong with it.
        message: String,
    },
    /// The node does not have the block yet (it is above the head).
    #[error("block {block} is not available from {endpoint} yet")]
    NotYetAvailable {
        /// The endpoint that answered.
        endpoint: String,
        /// The first missing block.
        block: u64,
    },
    /// The endpoint serves another chain than the one it is configured for (another chain id or
    /// genesis block): a provider URL re-pointed, a wrong port. It is not used until it serves
    /// the chain again.
    #[error("wrong chain at {endpoint}: {detail}; check the chain's RPC URLs")]
    WrongChain {
        /// The endpoint.
        endpoint: String,
        /// What it serves instead.
        detail: String,
    },
}

impl SourceError {
    /// Whether trying again later (or elsewhere) may succeed. Every source error is retryable for
    /// now; a malformed answer may come from a flaky endpoint. The attempt budget bounds retries.
    pub fn is_transient(&self) -> bool {
        true
    }
}

/// A source of blocks for one chain.
#[async_trait]
pub trait ChainSource: Send + Sync {
    /// The chain id the source reports.
    async fn chain_id(&self) -> Result<u64, SourceError>;
    /// The newest block number the source has.
    async fn head(&self) -> Result<u64, SourceError>;
    /// Every block, transaction and log of `range`, validated.
    async fn fetch_range(&self, range: BlockRange) -> Result<BlockBundle, SourceError>;

    /// The hash of block 0, which tells chains with the same chain id apart. The default reads
    /// it with [`ChainSource::block_hashes`].
    async fn genesis_hash(&self) -> Result<String, SourceError> {
        let genesis = BlockRange { from: 0, to: 0 };
        self.block_hashes(genesis)
            .await?
            .into_iter()
            .find(|(number, _)| *number == 0)
            .map(|(_, hash)| hash)
            .ok_or_else(|| SourceError::NotYetAvailable {
                endpoint: "the source".to_owned(),
                block: 0,
            })
    }

    /// The hash of every block of `range`, ascending (for reorg checks). The default fetches
    /// whole blocks; sources override it with something lighter.
    async fn block_hashes(&self, range: BlockRange) -> Result<Vec<(u64, String)>, SourceError> {
        Ok(self
            .fetch_range(range)
            .await?
            .blocks
            .into_iter()
            .map(|b| (b.number, b.hash))
            .collect())
    }
}
