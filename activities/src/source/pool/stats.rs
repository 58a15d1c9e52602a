//! What an endpoint has done lately: a mergeable latency histogram (log buckets, so the snapshots
//! of several worker processes add up), the request rate over the last seconds, and errors by
//! kind.

use std::{collections::BTreeMap, time::Duration};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::source::SourceError;

/// Bucket `i` holds latencies in `[FIRST * GROWTH^i, FIRST * GROWTH^(i+1))`; 80 buckets reach past
/// two minutes.
const FIRST_BUCKET_MICROS: f64 = 100.0;
const GROWTH: f64 = 1.2;
/// Number of latency buckets.
pub const LATENCY_BUCKETS: usize = 80;

/// Latency counts in log buckets; add two to merge them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencyHistogram {
    /// Count per bucket.
    pub counts: Vec<u64>,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self {
            counts: vec![0; LATENCY_BUCKETS],
        }
    }
}

impl LatencyHistogram {
    fn bucket(latency: Duration) -> usize {
        let micros = latency.as_secs_f64() * 1e6;
        if micros < FIRST_BUCKET_MICROS {
            return 0;
        }
        let index = ((micros / FIRST_BUCKET_MICROS).ln() / GROWTH.ln()).floor() as usize;
        index.min(LATENCY_BUCKETS - 1)
    }

    /// The upper bound of bucket `i`.
    fn upper(i: usize) -> Duration {
        Duration::from_secs_f64(FIRST_BUCKET_MICROS * GROWTH.powi(i as i32 + 1) / 1e6)
    }

    /// Counts one latency.
    pub fn record(&mut self, latency: Duration) {
        if let Some(slot) = self.counts.get_mut(Self::bucket(latency)) {
            *slot += 1;
        }
    }

    /// Adds `other`'s counts.
    pub fn merge(&mut self, other: &Self) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
    }

    /// Latencies counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The `q` quantile (0..=1), as the upper bound of its bucket (within 20%); `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(Self::upper(i));
            }
        }
        Some(Self::upper(self.counts.len().saturating_sub(1)))
    }
}

/// The kind of an endpoint failure, as the API and metrics name it.
pub fn error_kind(error: &SourceError) -> &'static str {
    match error {
        SourceError::Transport { .. } => "transport",
        SourceError::Timeout { .. } => "timeout",
        SourceError::Http { .. } => "http",
        SourceError::RateLimited { .. } => "rate_limited",
        SourceError::Rpc { .. } => "rpc",
        SourceError::Malformed { .. } => "malformed",
        SourceError::NotYetAvailable { .. } => "not_yet_available",
        SourceError::NoEndpoint { .. } => "no_endpoint",
        SourceError::WrongChain { .. } => "wrong_chain",
    }
}

/// How long one latency window lasts; quantiles cover the current and the previous window.
const WINDOW: Duration = Duration::from_secs(60);
/// Seconds the request rate is averaged over.
const RATE_SECONDS: usize = 10;

/// One endpoint's recent record.
#[derive(Debug)]
pub struct EndpointStats {
    started: Instant,
    window_started: Instant,
    current: LatencyHistogram,
    previous: LatencyHistogram,
    /// Requests per second, for the last [`RATE_SECONDS`] seconds, by second since `started`.
    per_second: [(u64, u64); RATE_SECONDS],
    /// Requests sent.
    pub requests: u64,
    /// Requests answered well.
    pub successes: u64,
    /// Failures by kind.
    pub errors: BTreeMap<String, u64>,
}

impl EndpointStats {
    /// Empty stats starting at `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            started: now,
            window_started: now,
            current: LatencyHistogram::default(),
            previous: LatencyHistogram::default(),
            per_second: [(u64::MAX, 0); RATE_SECONDS],
            requests: 0,
            successes: 0,
            errors: BTreeMap::new(),
        }
    }

    fn rotate(&mut self, now: Instant) {
        if now.saturating_duration_since(self.window_started) >= WINDOW {
            self.previous = std::mem::take(&mut self.current);
            self.window_started = now;
        }
    }

    /// Counts one request sent (`cost` HTTP requests).
    pub fn on_request(&mut self, now: Instant, cost: u64) {
        self.requests += cost;
        let second = now.saturating_duration_since(self.started).as_secs();
        let slot = &mut self.per_second[(second as usize) % RATE_SECONDS];
        if slot.0 != second {
            *slot = (second, 0);
        }
        slot.1 += cost;
    }

    /// Counts a success answered in `latency`.
    pub fn on_success(&mut self, now: Instant, latency: Duration) {
        self.rotate(now);
        self.successes += 1;
        self.current.record(latency);
    }

    /// Counts a failure of `kind` that took `latency`.
    pub fn on_error(&mut self, now: Instant, kind: &str, latency: Duration) {
        self.rotate(now);
        self.current.record(latency);
        *self.errors.entry(kind.to_owned()).or_default() += 1;
    }

    /// Requests per second over the last `RATE_SECONDS` whole seconds.
    pub fn requests_per_second(&self, now: Instant) -> f64 {
        let second = now.saturating_duration_since(self.started).as_secs();
        let counted: u64 = self
            .per_second
            .iter()
            .filter(|(s, _)| *s != u64::MAX && *s < second && second - s <= RATE_SECONDS as u64)
            .map(|(_, n)| n)
            .sum();
        let span = second.clamp(1, RATE_SECONDS as u64);
        counted as f64 / span as f64
    }

    /// Latencies of the current and previous window.
    pub fn latency(&self) -> LatencyHistogram {
        let mut merged = self.previous.clone();
        merged.merge(&self.current);
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_a_bucket_of_the_truth_and_histograms_merge() {
        let mut a = LatencyHistogram::default();
        for ms in 1..=100 {
            a.record(Duration::from_millis(ms));
        }
        let p50 = a.quantile(0.5).expect("p50");
        assert!(
            p50 >= Duration::from_millis(50) && p50 <= Duration::from_millis(61),
            "{p50:?}"
        );
        let p99 = a.quantile(0.99).expect("p99");
        assert!(
            p99 >= Duration::from_millis(99) && p99 <= Duration::from_millis(120),
            "{p99:?}"
        );
        let mut b = LatencyHistogram::default();
        for _ in 0..100 {
            b.record(Duration::from_secs(2));
        }
        a.merge(&b);
        assert_eq!(a.total(), 200);
        assert!(a.quantile(0.99).expect("p99") >= Duration::from_secs(2));
        assert_eq!(LatencyHistogram::default().quantile(0.5), None);
    }

    #[tokio::test(start_paused = true)]
    async fn request_rate_counts_the_last_whole_seconds() {
        let mut stats = EndpointStats::new(Instant::now());
        for _ in 0..5 {
            for _ in 0..20 {
                stats.on_request(Instant::now(), 1);
            }
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        assert_eq!(stats.requests_per_second(Instant::now()), 20.0);
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(stats.requests_per_second(Instant::now()), 0.0);
        assert_eq!(stats.requests, 100);
    }
}
