//! [`CircuitBreaker`]: one endpoint's closed / open / half-open state machine.
//!
//! Closed: requests flow; `failure_threshold` failures in a row open it. Open: nothing is sent
//! until `open_for` has passed, then it is half-open. Half-open: one probe at a time; a success
//! closes it, a failure opens it again for twice as long (up to `max_open_for`). The probe comes
//! with a [`ProbeToken`]: a probe that ends with neither (rate limited, or its request dropped)
//! is given back with it, and a stale token never gives back a later probe. Time is
//! [`tokio::time::Instant`], so tests drive it with paused time.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// A breaker's state, as the API and logs name it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Requests flow.
    Closed,
    /// One probe at a time decides.
    HalfOpen,
    /// Nothing is sent.
    Open,
}

impl BreakerState {
    /// The name used in the API, logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::HalfOpen => "half_open",
            Self::Open => "open",
        }
    }
}

/// How a breaker trips and recovers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Failures in a row that open a closed breaker.
    pub failure_threshold: u32,
    /// How long it first stays open.
    pub open_for: Duration,
    /// The longest it stays open after repeated failed probes.
    pub max_open_for: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            open_for: Duration::from_secs(1),
            max_open_for: Duration::from_secs(5),
        }
    }
}

/// A change of state, for the API's recent transitions and the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The state left.
    pub from: BreakerState,
    /// The state entered.
    pub to: BreakerState,
    /// When.
    pub at: Instant,
}

/// Identifies one half-open probe, so that only its own request can give it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeToken(u64);

/// The right to send one request, from [`CircuitBreaker::try_acquire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// The transition claiming caused (open to half-open), if any.
    pub transition: Option<Transition>,
    /// Set when the request is the half-open breaker's single probe: its outcome
    /// ([`CircuitBreaker::on_success`], [`CircuitBreaker::on_failure`]) ends the probe, and
    /// without one it must be given back ([`CircuitBreaker::release_probe`]).
    pub probe: Option<ProbeToken>,
}

/// The breaker refused a request (open, or half-open with its probe out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("circuit breaker refuses requests")]
pub struct BreakerRefused;

/// One endpoint's circuit breaker.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    settings: BreakerSettings,
    state: BreakerState,
    consecutive_failures: u32,
    /// Set while open: when it turns half-open.
    reopens_at: Option<Instant>,
    /// How long the next opening lasts.
    next_open_for: Duration,
    /// A half-open probe is in flight.
    probing: bool,
    /// Probes handed out so far (the latest one's token).
    probes: u64,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(settings: BreakerSettings) -> Self {
        Self {
            settings,
            state: BreakerState::Closed,
            consecutive_failures: 0,
            reopens_at: None,
            next_open_for: settings.open_for,
            probing: false,
            probes: 0,
        }
    }

    /// The state at `now` (an open breaker whose time is up reads half-open).
    pub fn state(&self, now: Instant) -> BreakerState {
        match (self.state, self.reopens_at) {
            (BreakerState::Open, Some(at)) if now >= at => BreakerState::HalfOpen,
            (state, _) => state,
        }
    }

    /// When an open breaker lets a probe through; `None` unless open.
    pub fn reopens_at(&self) -> Option<Instant> {
        (self.state == BreakerState::Open)
            .then_some(self.reopens_at)
            .flatten()
    }

    /// Whether a request may be sent now, without claiming anything.
    pub fn would_allow(&self, now: Instant) -> bool {
        match self.state(now) {
            BreakerState::Closed => true,
            BreakerState::HalfOpen => !self.probing,
            BreakerState::Open => false,
        }
    }

    /// Claims the right to send a request now: always when closed, the single probe when
    /// half-open, never when open.
    pub fn try_acquire(&mut self, now: Instant) -> Result<Admission, BreakerRefused> {
        match self.state(now) {
            BreakerState::Closed => Ok(Admission {
                transition: None,
                probe: None,
            }),
            BreakerState::HalfOpen if self.probing => Err(BreakerRefused),
            BreakerState::HalfOpen => {
                self.probing = true;
                self.probes += 1;
                let from = self.state;
                self.state = BreakerState::HalfOpen;
                self.reopens_at = None;
                Ok(Admission {
                    transition: (from != BreakerState::HalfOpen).then_some(Transition {
                        from,
                        to: BreakerState::HalfOpen,
                        at: now,
                    }),
                    probe: Some(ProbeToken(self.probes)),
                })
            }
            BreakerState::Open => Err(BreakerRefused),
        }
    }

    /// Records a success: closes a half-open breaker.
    pub fn on_success(&mut self, now: Instant) -> Option<Transition> {
        self.consecutive_failures = 0;
        self.probing = false;
        let from = self.state(now);
        if from == BreakerState::Closed {
            return None;
        }
        self.state = BreakerState::Closed;
        self.reopens_at = None;
        self.next_open_for = self.settings.open_for;
        Some(Transition {
            from,
            to: BreakerState::Closed,
            at: now,
        })
    }

    /// Records a failure of the endpoint: opens the breaker after too many in a row, or at once
    /// when half-open (for twice as long as last time).
    pub fn on_failure(&mut self, now: Instant) -> Option<Transition> {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let from = self.state(now);
        let trips = match from {
            BreakerState::Closed => self.consecutive_failures >= self.settings.failure_threshold,
            BreakerState::HalfOpen => self.probing || self.state == BreakerState::HalfOpen,
            BreakerState::Open => false,
        };
        if !trips {
            return None;
        }
        let open_for = self.next_open_for;
        self.next_open_for = (open_for * 2).min(self.settings.max_open_for);
        self.state = BreakerState::Open;
        self.reopens_at = Some(now + open_for);
        self.probing = false;
        Some(Transition {
            from,
            to: BreakerState::Open,
            at: now,
        })
    }

    /// Gives back the half-open probe of `token`, which ended neither way (rate limited, not yet
    /// available, or its request was dropped), so the next request may probe. Does nothing when
    /// that probe already ended (its outcome was recorded, or a later probe is out). Returns
    /// whether it gave the probe back.
    pub fn release_probe(&mut self, token: ProbeToken) -> bool {
        let current = self.probing && token.0 == self.probes;
        if current {
            self.probing = false;
        }
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> BreakerSettings {
        BreakerSettings {
            failure_threshold: 3,
            open_for: Duration::from_secs(2),
            max_open_for: Duration::from_secs(8),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_failures_in_a_row_and_a_success_resets_the_count() {
        let mut breaker = CircuitBreaker::new(settings());
        let now = Instant::now();
        assert!(breaker.on_failure(now).is_none());
        assert!(breaker.on_failure(now).is_none());
        assert!(breaker.on_success(now).is_none(), "closed stays closed");
        assert!(breaker.on_failure(now).is_none());
        assert!(breaker.on_failure(now).is_none());
        let opened = breaker
            .on_failure(now)
            .expect("third failure in a row opens");
        assert_eq!(
            (opened.from, opened.to),
            (BreakerState::Closed, BreakerState::Open)
        );
        assert_eq!(breaker.state(now), BreakerState::Open);
        assert!(breaker.try_acquire(now).is_err());
        assert!(!breaker.would_allow(now));
    }

    #[tokio::test(start_paused = true)]
    async fn half_opens_after_the_open_time_lets_one_probe_through_and_closes_on_success() {
        let mut breaker = CircuitBreaker::new(settings());
        let start = Instant::now();
        for _ in 0..3 {
            breaker.on_failure(start);
        }
        tokio::time::advance(Duration::from_millis(1_999)).await;
        assert_eq!(breaker.state(Instant::now()), BreakerState::Open);
        tokio::time::advance(Duration::from_millis(1)).await;
        let now = Instant::now();
        assert_eq!(breaker.state(now), BreakerState::HalfOpen);
        let probe = breaker.try_acquire(now).expect("the probe goes through");
        assert_eq!(
            probe.transition.map(|t| (t.from, t.to)),
            Some((BreakerState::Open, BreakerState::HalfOpen))
        );
        assert!(probe.probe.is_some(), "half-open admits a probe");
        assert!(breaker.try_acquire(now).is_err(), "one probe at a time");
        let closed = breaker.on_success(now).expect("a good probe closes it");
        assert_eq!(closed.to, BreakerState::Closed);
        assert!(breaker.try_acquire(now).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_reopens_for_twice_as_long_up_to_the_maximum() {
        let mut breaker = CircuitBreaker::new(settings());
        for _ in 0..3 {
            breaker.on_failure(Instant::now());
        }
        let mut expected = [4, 8, 8].into_iter();
        for _ in 0..3 {
            let wait = breaker.reopens_at().expect("open") - Instant::now();
            tokio::time::advance(wait).await;
            assert!(breaker.try_acquire(Instant::now()).is_ok());
            let reopened = breaker.on_failure(Instant::now()).expect("probe failed");
            assert_eq!(
                (reopened.from, reopened.to),
                (BreakerState::HalfOpen, BreakerState::Open)
            );
            let open_for = breaker.reopens_at().expect("open again") - Instant::now();
            assert_eq!(
                open_for,
                Duration::from_secs(expected.next().unwrap_or_default())
            );
        }
        // Recovery resets the opening time.
        tokio::time::advance(Duration::from_secs(8)).await;
        assert!(breaker.try_acquire(Instant::now()).is_ok());
        breaker.on_success(Instant::now());
        for _ in 0..3 {
            breaker.on_failure(Instant::now());
        }
        assert_eq!(
            breaker.reopens_at().expect("open") - Instant::now(),
            Duration::from_secs(2)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_released_probe_lets_the_next_one_through() {
        let mut breaker = CircuitBreaker::new(settings());
        for _ in 0..3 {
            breaker.on_failure(Instant::now());
        }
        tokio::time::advance(Duration::from_secs(2)).await;
        let now = Instant::now();
        let first = breaker
            .try_acquire(now)
            .expect("probe")
            .probe
            .expect("token");
        assert!(breaker.release_probe(first));
        assert_eq!(breaker.state(now), BreakerState::HalfOpen);
        let second = breaker
            .try_acquire(now)
            .expect("probe again")
            .probe
            .expect("token");
        // The first probe's request giving it back again late must not free the second one.
        assert!(!breaker.release_probe(first));
        assert!(breaker.try_acquire(now).is_err(), "the second probe is out");
        assert!(breaker.release_probe(second));
        assert!(
            breaker
                .try_acquire(now)
                .expect("half-open admits")
                .probe
                .is_some(),
            "still half-open: the next request is the probe"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_whose_outcome_was_recorded_cannot_be_given_back() {
        let mut breaker = CircuitBreaker::new(settings());
        for _ in 0..3 {
            breaker.on_failure(Instant::now());
        }
        tokio::time::advance(Duration::from_secs(2)).await;
        let token = breaker
            .try_acquire(Instant::now())
            .expect("probe")
            .probe
            .expect("token");
        breaker.on_failure(Instant::now());
        assert!(
            !breaker.release_probe(token),
            "the failed probe reopened it"
        );
        assert_eq!(breaker.state(Instant::now()), BreakerState::Open);
        let admitted = breaker.try_acquire(Instant::now());
        assert!(admitted.is_err(), "open");
    }
}
