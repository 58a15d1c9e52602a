//! What goes wrong with an endpoint's requests ([`FaultProfile`]), how a profile is refused
//! ([`FaultProfileError`]) and what was injected ([`FaultCounts`]).

use std::{fmt, time::Duration};

use serde::{Deserialize, Serialize};

#[cfg(doc)]
use super::{BATCH_REJECTION, FaultInjector, TRUNCATED_ANSWER};

/// What goes wrong with the requests to an endpoint. The default injects nothing.
///
/// Reads from JSON/TOML with every field optional and durations in humantime form
/// (`{"latency": "100ms", "rate_limit_rate": 0.1}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultProfile {
    /// Added before every answer (also before injected errors). Default: 0s.
    #[serde(with = "humantime_serde")]
    pub latency: Duration,
    /// A uniform extra delay in `0..jitter` on top of `latency`. Default: 0s.
    #[serde(with = "humantime_serde")]
    pub jitter: Duration,
    /// Fraction of requests answered with HTTP 503 and a short body, in `[0, 1]`. Default: 0.
    pub error_rate: f64,
    /// Fraction of requests answered with HTTP 429 and `Retry-After`, in `[0, 1]`;
    /// `error_rate + rate_limit_rate` is at most 1. Default: 0.
    pub rate_limit_rate: f64,
    /// The `Retry-After` of the 429 answers, in seconds. Default: 1.
    pub retry_after_secs: u64,
    /// Accept every request and never answer (until the server shuts down). Default: false.
    pub hang: bool,
    /// Answer a JSON-RPC batch (a JSON array body) with HTTP 200 and the single error object
    /// [`BATCH_REJECTION`]; single requests pass. Default: false.
    pub reject_batches: bool,
    /// Fraction of the answers of the inner service (requests that got no injected error)
    /// whose body is corrupted, in `[0, 1]`; drawn independently of `error_rate` and
    /// `rate_limit_rate`. Only HTTP 200 answers are touched; the status stays 200 and
    /// `Content-Length` matches the new body. Default: 0.
    ///
    /// The damage is done to the first JSON-RPC response (of a single answer or a batch) whose
    /// `result` is an object with a `number` (a block), picking uniformly one of: `number`
    /// plus one (`wrong_number`), `hash` removed (`missing_hash`), the last hex digit of
    /// `parentHash` changed (`broken_parent`), or the whole body replaced by
    /// [`TRUNCATED_ANSWER`] (`unparsable`). Without a block, the first response with an array
    /// `result` (logs) gets the first log's `blockNumber` plus one, or [`TRUNCATED_ANSWER`].
    /// A body that is not JSON or has nothing of that kind (or lacks the field to damage) gets
    /// [`TRUNCATED_ANSWER`].
    pub malform_rate: f64,
}

impl Default for FaultProfile {
    fn default() -> Self {
        FaultProfile {
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            error_rate: 0.0,
            rate_limit_rate: 0.0,
            retry_after_secs: 1,
            hang: false,
            reject_batches: false,
            malform_rate: 0.0,
        }
    }
}

/// Tolerance of the `error_rate + rate_limit_rate <= 1` check (so that 0.7 + 0.3 passes).
const RATE_SUM_EPSILON: f64 = 1e-9;

impl FaultProfile {
    /// Checks that every rate is a fraction in `[0, 1]` and that `error_rate` and
    /// `rate_limit_rate` add up to at most 1 (`malform_rate` is drawn separately).
    pub fn validate(&self) -> Result<(), FaultProfileError> {
        for (name, value) in [
            ("error_rate", self.error_rate),
            ("rate_limit_rate", self.rate_limit_rate),
            ("malform_rate", self.malform_rate),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(FaultProfileError::RateOutOfRange { name, value });
            }
        }
        if self.error_rate + self.rate_limit_rate > 1.0 + RATE_SUM_EPSILON {
            return Err(FaultProfileError::RatesAboveOne {
                error_rate: self.error_rate,
                rate_limit_rate: self.rate_limit_rate,
            });
        }
        Ok(())
    }

    /// Whether this profile changes any answer or its timing.
    pub fn injects_anything(&self) -> bool {
        !self.latency.is_zero()
            || !self.jitter.is_zero()
            || self.error_rate > 0.0
            || self.rate_limit_rate > 0.0
            || self.hang
            || self.reject_batches
            || self.malform_rate > 0.0
    }
}

/// Lists the active faults, e.g. `latency 100ms, 10% HTTP 503, 5% HTTP 429 (Retry-After 2),
/// 1% malformed answers`, or `none`.
impl fmt::Display for FaultProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.hang {
            parts.push("every request hangs".to_owned());
        }
        if !self.latency.is_zero() {
            parts.push(format!(
                "latency {}",
                humantime::format_duration(self.latency)
            ));
        }
        if !self.jitter.is_zero() {
            parts.push(format!(
                "jitter {}",
                humantime::format_duration(self.jitter)
            ));
        }
        if self.error_rate > 0.0 {
            parts.push(format!("{} HTTP 503", percent(self.error_rate)));
        }
        if self.rate_limit_rate > 0.0 {
            parts.push(format!(
                "{} HTTP 429 (Retry-After {})",
                percent(self.rate_limit_rate),
                self.retry_after_secs
            ));
        }
        if self.reject_batches {
            parts.push("batches rejected".to_owned());
        }
        if self.malform_rate > 0.0 {
            parts.push(format!("{} malformed answers", percent(self.malform_rate)));
        }
        if parts.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// `rate` as a percentage rounded to 0.01% (`0.07` is `7%`, not `7.000000000000001%`).
fn percent(rate: f64) -> String {
    format!("{}%", (rate * 10_000.0).round() / 100.0)
}

/// An invalid [`FaultProfile`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultProfileError {
    /// A rate is not a fraction in `[0, 1]` (or is NaN).
    #[error("{name} must be a fraction between 0 and 1, got {value}")]
    RateOutOfRange {
        /// The field: `error_rate`, `rate_limit_rate` or `malform_rate`.
        name: &'static str,
        /// Its value.
        value: f64,
    },
    /// The rates add up to more than 1.
    #[error("error_rate ({error_rate}) plus rate_limit_rate ({rate_limit_rate}) must be at most 1")]
    RatesAboveOne {
        /// The error rate.
        error_rate: f64,
        /// The rate-limit rate.
        rate_limit_rate: f64,
    },
}

/// How many requests a [`FaultInjector`] saw and what it did to them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultCounts {
    /// Every request that reached the fault layer, faulted or not.
    pub requests: u64,
    /// Answered HTTP 503.
    pub errors: u64,
    /// Answered HTTP 429.
    pub rate_limited: u64,
    /// Batches answered with [`BATCH_REJECTION`].
    pub batches_rejected: u64,
    /// Requests left without an answer (`hang`).
    pub hung: u64,
    /// Answers whose body was corrupted (`malform_rate`).
    pub malformed: u64,
}

impl fmt::Display for FaultCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} requests, {} HTTP 503, {} HTTP 429, {} batches rejected, {} hung, {} malformed",
            self.requests,
            self.errors,
            self.rate_limited,
            self.batches_rejected,
            self.hung,
            self.malformed
        )
    }
}
