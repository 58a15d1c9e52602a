//! One backoff policy for every retry loop: delays that double from a base up to a cap, spread by
//! a [`Jitter`], optionally limited to a number of retries; built on `backon`'s
//! [`ExponentialBuilder`].
//!
//! - [`Backoff`] is the policy. [`Backoff::delays`] starts one run of retries ([`Delays`], an
//!   iterator that ends when the retries are spent); [`Backoff::delay`] is the delay of one retry
//!   for a given random draw (for callers that count retries themselves, and for tests).
//! - [`Backoff`] is also a `backon` [`BackoffBuilder`], so it plugs into `backon`'s `Retryable`.
//! - [`sleep_or_cancelled`] waits out one delay unless a shutdown comes first.
//!
//! `backon` gives the nominal sequence (first delay, doubling, cap, retry budget). Two things are
//! ours: its jitter adds `[0, delay)` on top of a delay, which is neither of the spreads we use,
//! so the jitter is applied here; and it multiplies in `f32`, so each nominal delay is snapped
//! back to the exact `base * 2^k` it stands for (a 100 ms base gives 200 ms, not 200.000003 ms).
//!
//! ```ignore
//! let policy = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
//! let mut delays = policy.delays();
//! loop {
//!     match work().await {
//!         Ok(()) => break,
//!         Err(e) => {
//!             let delay = delays.next().unwrap_or(policy.max);
//!             if !sleep_or_cancelled(delay, &shutdown).await { break; }
//!         }
//!     }
//! }
//! ```

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use tokio_util::sync::CancellationToken;

/// How a nominal delay `d` is spread, so that many processes do not retry in step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Jitter {
    /// Exactly `d`.
    None,
    /// Uniform in `[d * (1 - f), d * (1 + f))`, then at most the cap: `Proportional(0.25)` is
    /// `d` +-25 %.
    Proportional(f64),
    /// Uniform in `[0, d]` ("full jitter").
    Full,
}

impl Jitter {
    /// `nominal` spread by `draw` (a number in `[0, 1)`; clamped to `[0, 1]`), at most `max`.
    fn apply(self, nominal: Duration, max: Duration, draw: f64) -> Duration {
        let draw = draw.clamp(0.0, 1.0);
        match self {
            Self::None => nominal,
            Self::Proportional(fraction) => {
                let factor = (1.0 - fraction + 2.0 * fraction * draw).max(0.0);
                nominal.mul_f64(factor).min(max)
            }
            Self::Full => nominal.mul_f64(draw),
        }
    }
}

/// Exponential backoff: retry `n` (1-based) waits `min(base * 2^(n-1), max)`, spread by
/// `jitter`; after `retries` retries (if set) there is no further delay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The first delay.
    pub base: Duration,
    /// The longest delay (also after jitter).
    pub max: Duration,
    /// How each delay is spread.
    pub jitter: Jitter,
    /// How many delays one run gives (`None`: no limit).
    pub retries: Option<usize>,
}

impl Backoff {
    /// Delays from `base` doubling up to `max`, without jitter and without a retry limit.
    #[must_use]
    pub const fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            jitter: Jitter::None,
            retries: None,
        }
    }

    /// The same policy with `jitter`.
    #[must_use]
    pub const fn with_jitter(self, jitter: Jitter) -> Self {
        Self { jitter, ..self }
    }

    /// The same policy, giving at most `retries` delays per run.
    #[must_use]
    pub const fn with_retries(self, retries: usize) -> Self {
        Self {
            retries: Some(retries),
            ..self
        }
    }

    /// `backon`'s builder for the nominal sequence (no jitter: that is applied by [`Delays`]).
    #[must_use]
    pub fn builder(&self) -> ExponentialBuilder {
        let builder = ExponentialBuilder::new()
            .with_min_delay(self.base)
            .with_max_delay(self.max)
            .with_factor(2.0);
        match self.retries {
            Some(retries) => builder.with_max_times(retries),
            None => builder.without_max_times(),
        }
    }

    /// One run of retries: the delays before retry 1, 2, ..., drawn at random.
    #[must_use]
    pub fn delays(&self) -> Delays {
        Delays {
            policy: *self,
            nominal: self.builder().build(),
        }
    }

    /// The delay before retry `retry` (1-based; 0 counts as 1) for a `draw` in `[0, 1)`: the
    /// same value [`Delays`] gives when its random draw is `draw`. Ignores the retry limit.
    #[must_use]
    pub fn delay(&self, retry: usize, draw: f64) -> Duration {
        // After 128 doublings any delay is at the cap (`backon` saturates at `Duration::MAX`).
        let skip = retry.saturating_sub(1).min(128);
        let nominal = Self {
            retries: None,
            ..*self
        }
        .builder()
        .build()
        .nth(skip)
        .map_or(self.max, |approx| self.exact(approx));
        self.jitter.apply(nominal, self.max, draw)
    }

    /// The exact `min(base * 2^k, max)` that `backon`'s `f32` value `approx` stands for.
    fn exact(&self, approx: Duration) -> Duration {
        if approx >= self.max {
            return self.max;
        }
        if self.base.is_zero() {
            return Duration::ZERO;
        }
        let doublings = (approx.as_secs_f64() / self.base.as_secs_f64())
            .log2()
            .round()
            .clamp(0.0, 31.0) as u32;
        self.base
            .checked_mul(1 << doublings)
            .map_or(self.max, |d| d.min(self.max))
    }
}

impl BackoffBuilder for Backoff {
    type Backoff = Delays;

    fn build(self) -> Delays {
        self.delays()
    }
}

/// The delays of one run of retries under a [`Backoff`]; `None` once its retries are spent.
#[derive(Debug)]
pub struct Delays {
    policy: Backoff,
    nominal: ExponentialBackoff,
}

impl Delays {
    /// Starts over at the first delay (after a success, say).
    pub fn reset(&mut self) {
        self.nominal = self.policy.builder().build();
    }
}

impl Iterator for Delays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let nominal = self.policy.exact(self.nominal.next()?);
        Some(
            self.policy
                .jitter
                .apply(nominal, self.policy.max, rand::random::<f64>()),
        )
    }
}

/// Sleeps for `delay` unless `shutdown` is cancelled first; returns whether it slept the whole
/// delay (`false`: shutting down).
pub async fn sleep_or_cancelled(delay: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = tokio::time::sleep(delay) => true,
        () = shutdown.cancelled() => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn delays_double_up_to_the_cap() {
        let policy = Backoff::new(MS(500), Duration::from_secs(30));
        let nominal: Vec<_> = (1..=8).map(|r| policy.delay(r, 0.5)).collect();
        assert_eq!(
            nominal,
            [500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000].map(MS)
        );
        assert_eq!(policy.delay(0, 0.5), MS(500));
        assert_eq!(policy.delay(usize::MAX, 0.5), Duration::from_secs(30));
        let run: Vec<_> = policy.delays().take(8).collect();
        assert_eq!(run, nominal);
    }

    #[test]
    fn proportional_jitter_keeps_retries_growing_and_under_the_cap() {
        let base = MS(500);
        let max = Duration::from_secs(30);
        let policy = Backoff::new(base, max).with_jitter(Jitter::Proportional(0.25));
        assert_eq!(policy.delay(1, 0.5), MS(500));
        assert_eq!(policy.delay(1, 0.0), MS(375));
        assert_eq!(policy.delay(3, 1.0), MS(2_500));
        // With the extreme jitters, retry n+1 still waits longer than retry n.
        for r in 1..5 {
            assert!(policy.delay(r, 0.9998) < policy.delay(r + 1, 0.0));
        }
        assert!(policy.delay(usize::MAX, 0.99) <= max);
        for (retry, delay) in policy.delays().take(10).enumerate() {
            let nominal = Backoff::new(base, max).delay(retry + 1, 0.0);
            assert!(delay >= nominal.mul_f64(0.75), "{delay:?}");
            assert!(delay <= nominal.mul_f64(1.25).min(max), "{delay:?}");
        }
    }

    #[test]
    fn full_jitter_draws_below_the_ceiling() {
        let policy = Backoff::new(MS(100), Duration::from_secs(2)).with_jitter(Jitter::Full);
        for (retry, draw, expected) in [
            (1, 1.0, 100),
            (2, 1.0, 200),
            (4, 0.5, 400),
            (11, 1.0, 2_000),
            (3, 0.0, 0),
        ] {
            assert_eq!(policy.delay(retry, draw), MS(expected), "{retry} {draw}");
        }
        for delay in policy.delays().take(20) {
            assert!(delay <= Duration::from_secs(2));
        }
    }

    #[test]
    fn a_run_ends_after_its_retries_and_reset_starts_over() {
        let policy = Backoff::new(MS(200), Duration::from_secs(5)).with_retries(3);
        let mut delays = policy.delays();
        assert_eq!(delays.by_ref().collect::<Vec<_>>(), [200, 400, 800].map(MS));
        assert_eq!(delays.next(), None);
        delays.reset();
        assert_eq!(delays.next(), Some(MS(200)));
        assert_eq!(policy.with_retries(0).delays().next(), None);
    }

    #[test]
    fn odd_bases_and_caps_stay_exact() {
        // Values `f32` cannot hold exactly, and a cap that is not a doubling of the base.
        let policy = Backoff::new(MS(70), MS(250));
        assert_eq!(
            policy.delays().take(4).collect::<Vec<_>>(),
            [70, 140, 250, 250].map(MS)
        );
        let above = Backoff::new(Duration::from_secs(3), Duration::from_secs(1));
        assert_eq!(above.delays().next(), Some(Duration::from_secs(1)));
        let zero = Backoff::new(Duration::ZERO, Duration::from_secs(1));
        assert_eq!(zero.delay(5, 0.5), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn sleeping_stops_at_shutdown() {
        let shutdown = CancellationToken::new();
        let started = tokio::time::Instant::now();
        assert!(sleep_or_cancelled(Duration::from_secs(10), &shutdown).await);
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        let cancel = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            cancel.cancel();
        });
        assert!(!sleep_or_cancelled(Duration::from_secs(60), &shutdown).await);
        assert_eq!(started.elapsed(), Duration::from_secs(12));
    }

    #[tokio::test(start_paused = true)]
    async fn plugs_into_backon_retryable() {
        use backon::Retryable;
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let started = tokio::time::Instant::now();
        let result: Result<(), &str> = (|| async {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err("down")
        })
        .retry(Backoff::new(MS(100), Duration::from_secs(1)).with_retries(3))
        .sleep(tokio::time::sleep)
        .await;
        assert_eq!(result, Err("down"));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 4);
        assert_eq!(started.elapsed(), MS(700));
    }
}
