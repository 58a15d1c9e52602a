//! How a pool is configured: each endpoint's own limits ([`EndpointConfig`], stored with the
//! chain) and the pool's settings ([`PoolSettings`]), and the jittered retry delay.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{breaker::BreakerSettings, concurrency::ConcurrencySettings};
use crate::{
    backoff::{Backoff, Jitter},
    source::RpcSettings,
};

/// One endpoint as configured for a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// `http://` or `https://` URL.
    #[schema(example = "http://127.0.0.1:8545")]
    pub url: String,
    /// Requests per second this process may send it (`None`: the pool default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rps: Option<u32>,
    /// Most requests in flight to it from this process (`None`: the pool default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
}

impl EndpointConfig {
    /// An endpoint with the pool's defaults.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            rps: None,
            max_concurrency: None,
        }
    }
}

/// How a pool behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolSettings {
    /// The HTTP client's settings (JSON-RPC batch size, request timeout).
    pub rpc: RpcSettings,
    /// Requests per second per endpoint when its config sets none (`None`: no token bucket).
    pub default_rps: Option<u32>,
    /// Concurrency bounds; an endpoint's `max_concurrency` replaces `max`.
    pub concurrency: ConcurrencySettings,
    /// Breaker thresholds.
    pub breaker: BreakerSettings,
    /// Tries of one request across endpoints before its last error is returned.
    pub max_attempts: u32,
    /// ... and at most this many per endpoint of the pool (retrying a lone endpoint further is
    /// the batch's business: its attempt budget and backoff).
    pub tries_per_endpoint: u32,
    /// Longest one request waits for an endpoint to become usable (an open breaker about to let
    /// a probe through, a `Retry-After`); when none will be usable by then, it fails at once.
    pub max_wait: Duration,
    /// First delay before the same endpoint is tried again (doubles, full jitter).
    pub retry_base: Duration,
    /// Cap on that delay.
    pub retry_max: Duration,
    /// Longest `Retry-After` honoured.
    pub max_retry_after: Duration,
    /// How often a verified (or wrong-chain) endpoint's chain id and genesis are checked again.
    /// Default: 30 s.
    pub identity_check_interval: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            rpc: RpcSettings::default(),
            default_rps: None,
            concurrency: ConcurrencySettings::default(),
            breaker: BreakerSettings::default(),
            max_attempts: 6,
            tries_per_endpoint: 2,
            max_wait: Duration::from_secs(15),
            retry_base: Duration::from_millis(50),
            retry_max: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(60),
            identity_check_interval: Duration::from_secs(30),
        }
    }
}

/// The delay before retry `retry` (0-based) of the same endpoint: uniform in
/// `[0, min(max, base * 2^retry)]` ("full jitter"), so many workers do not retry in step.
pub fn retry_delay(retry: u32, base: Duration, max: Duration, unit_draw: f64) -> Duration {
    Backoff::new(base, max)
        .with_jitter(Jitter::Full)
        .delay(retry as usize + 1, unit_draw)
}
