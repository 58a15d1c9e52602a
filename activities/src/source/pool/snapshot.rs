//! What the pool shows of its endpoints: one [`EndpointSnapshot`] per endpoint (published per
//! process for the admin API) and the one-line description a failed request carries.

use std::{collections::BTreeMap, num::NonZeroU32, time::Duration};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{
    EndpointPool, breaker::BreakerState, identity::IdentityState, stats::LatencyHistogram,
};

/// A breaker transition as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TransitionView {
    /// State left.
    pub from: BreakerState,
    /// State entered.
    pub to: BreakerState,
    /// When.
    pub at: DateTime<Utc>,
}

/// One endpoint as one process sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointSnapshot {
    /// The URL.
    pub url: String,
    /// Breaker state.
    pub breaker: BreakerState,
    /// Milliseconds until an open breaker lets a probe through.
    pub breaker_reopens_in_ms: Option<u64>,
    /// Milliseconds left of a `Retry-After` cool-down.
    pub cooldown_ms: Option<u64>,
    /// Configured requests per second (`None`: unlimited).
    pub rps_limit: Option<u32>,
    /// Requests per second sent over the last seconds.
    pub requests_per_second: f64,
    /// The adaptive concurrency limit now.
    pub concurrency_limit: u32,
    /// Its upper bound.
    pub max_concurrency: u32,
    /// Requests in flight.
    pub in_flight: u32,
    /// Of which for live sync.
    pub in_flight_live: u32,
    /// Permits backfill leaves to live sync.
    pub reserved_for_live: u32,
    /// Times the limit was halved.
    pub concurrency_decreases: u64,
    /// HTTP requests sent (a range fetch is several: its JSON-RPC batches and the logs).
    pub requests: u64,
    /// Calls (a range fetch, a head read, a probe) answered well.
    pub successes: u64,
    /// Failed calls by kind (`transport`, `timeout`, `http`, `rate_limited`, `rpc`, `malformed`,
    /// `not_yet_available`).
    pub errors: BTreeMap<String, u64>,
    /// Latencies of the last minute or two.
    pub latency: LatencyHistogram,
    /// Median latency, milliseconds.
    pub latency_p50_ms: Option<f64>,
    /// 99th percentile latency, milliseconds.
    pub latency_p99_ms: Option<f64>,
    /// Whether it takes JSON-RPC batches.
    pub batches_accepted: bool,
    /// The latest breaker transitions, oldest first.
    pub transitions: Vec<TransitionView>,
    /// The latest failure.
    pub last_error: Option<String>,
    /// Whether it serves the chain: `verified`, `unverified` (not checked yet, unreachable, or
    /// down since), or `wrong_chain` (never routed to).
    #[serde(default)]
    pub identity: IdentityState,
    /// What it serves instead when `wrong_chain` ("serves chain id 999, expected 31337"), or why
    /// the last check failed.
    #[serde(default)]
    pub identity_detail: Option<String>,
}

impl EndpointPool {
    /// Every endpoint's state now, in configuration order.
    pub fn snapshot(&self) -> Vec<EndpointSnapshot> {
        let now = Instant::now();
        self.endpoints
            .iter()
            .map(|endpoint| {
                let limits = endpoint.concurrency.snapshot();
                let health = endpoint.health();
                let latency = health.stats.latency();
                let ms = |d: Duration| d.as_secs_f64() * 1e3;
                EndpointSnapshot {
                    url: endpoint.client.url().to_owned(),
                    breaker: health.breaker.state(now),
                    breaker_reopens_in_ms: health
                        .breaker
                        .reopens_at()
                        .map(|at| at.saturating_duration_since(now).as_millis() as u64),
                    cooldown_ms: health
                        .cooldown_until
                        .filter(|c| *c > now)
                        .map(|c| (c - now).as_millis() as u64),
                    rps_limit: endpoint.rps.map(NonZeroU32::get),
                    requests_per_second: health.stats.requests_per_second(now),
                    concurrency_limit: limits.limit,
                    max_concurrency: endpoint.concurrency.max(),
                    in_flight: limits.in_flight,
                    in_flight_live: limits.in_flight_live,
                    reserved_for_live: limits.reserved_for_live,
                    concurrency_decreases: limits.decreases,
                    requests: health.stats.requests,
                    successes: health.stats.successes,
                    errors: health.stats.errors.clone(),
                    latency_p50_ms: latency.quantile(0.5).map(ms),
                    latency_p99_ms: latency.quantile(0.99).map(ms),
                    latency,
                    batches_accepted: endpoint.client.batches_accepted(),
                    transitions: health.transitions.iter().cloned().collect(),
                    last_error: health.last_error.clone(),
                    identity: endpoint.identity.get(),
                    identity_detail: health.identity_detail.clone(),
                }
            })
            .collect()
    }

    pub(super) fn describe(&self, now: Instant) -> String {
        let endpoints = self
            .endpoints
            .iter()
            .map(|e| {
                let health = e.health();
                let state = health.breaker.state(now).as_str();
                let identity = match (e.identity.get(), &health.identity_detail) {
                    (IdentityState::Verified, _) => String::new(),
                    (other, Some(detail)) => format!(", {} ({detail})", other.as_str()),
                    (other, None) => format!(", {}", other.as_str()),
                };
                match &health.last_error {
                    Some(err) => {
                        format!("{} breaker {state}{identity}, last error: {err}", e.label)
                    }
                    None => format!("{} breaker {state}{identity}", e.label),
                }
            })
            .collect::<Vec<_>>()
            .join("; ");
        if self
            .endpoints
            .iter()
            .all(|e| e.identity.get() != IdentityState::Verified)
        {
            format!(
                "no endpoint is verified to serve {} ({endpoints})",
                self.expected
            )
        } else {
            endpoints
        }
    }
}
