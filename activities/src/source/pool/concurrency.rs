//! [`AdaptiveConcurrency`]: how many requests one endpoint gets at once, found by AIMD.
//!
//! The limit grows by one for every `limit` successes whose latency stays within twice the
//! endpoint's best recent latency (additive increase, about one step per round trip), holds when
//! latency rises, and halves on a 429 or a timeout (multiplicative decrease, at most once per
//! `decrease_cooldown`, so one burst of refusals is one halving).
//!
//! Both lanes share the limit, but backfill may hold at most `limit - reserved` permits, with
//! `reserved = max(1, limit / 4)`: a full backfill never takes the last permits from live sync.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use tokio::{sync::Notify, time::Instant};

/// Which lane a request serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RequestPriority {
    /// Live sync: may use every permit.
    Live,
    /// Backfill (and everything else): leaves the reserve to live sync.
    #[default]
    Backfill,
}

/// Bounds and start of the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConcurrencySettings {
    /// The limit at start.
    pub initial: u32,
    /// The limit never drops below this (at least 2, so backfill keeps one permit).
    pub min: u32,
    /// The limit never grows above this.
    pub max: u32,
    /// Shortest time between two halvings.
    pub decrease_cooldown: Duration,
}

impl Default for ConcurrencySettings {
    fn default() -> Self {
        Self {
            initial: 16,
            min: 2,
            max: 256,
            decrease_cooldown: Duration::from_secs(1),
        }
    }
}

#[derive(Debug)]
struct LimitState {
    limit: f64,
    in_flight: u32,
    in_flight_live: u32,
    /// Best latency of the recent past (decays slowly upwards so it can follow a slower endpoint).
    baseline: Option<Duration>,
    last_decrease: Option<Instant>,
    decreases: u64,
}

/// One endpoint's adaptive concurrency limit. Cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct AdaptiveConcurrency {
    settings: ConcurrencySettings,
    state: Arc<Mutex<LimitState>>,
    released: Arc<Notify>,
}

/// The right to have one request in flight; given back on drop.
#[derive(Debug)]
pub struct ConcurrencyPermit {
    owner: AdaptiveConcurrency,
    live: bool,
}

impl Drop for ConcurrencyPermit {
    fn drop(&mut self) {
        {
            let mut state = self.owner.lock();
            state.in_flight = state.in_flight.saturating_sub(1);
            if self.live {
                state.in_flight_live = state.in_flight_live.saturating_sub(1);
            }
        }
        self.owner.released.notify_waiters();
    }
}

/// What the limit looks like now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConcurrencySnapshot {
    /// The current limit (whole permits).
    pub limit: u32,
    /// Permits held.
    pub in_flight: u32,
    /// Permits held by live sync.
    pub in_flight_live: u32,
    /// Permits backfill may not take.
    pub reserved_for_live: u32,
    /// Halvings so far.
    pub decreases: u64,
}

impl AdaptiveConcurrency {
    /// A limit starting at `settings.initial`.
    pub fn new(settings: ConcurrencySettings) -> Self {
        let min = settings.min.max(2);
        let settings = ConcurrencySettings {
            min,
            max: settings.max.max(min),
            initial: settings.initial.clamp(min, settings.max.max(min)),
            ..settings
        };
        Self {
            settings,
            state: Arc::new(Mutex::new(LimitState {
                limit: f64::from(settings.initial),
                in_flight: 0,
                in_flight_live: 0,
                baseline: None,
                last_decrease: None,
                decreases: 0,
            })),
            released: Arc::new(Notify::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LimitState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn reserved(limit: u32) -> u32 {
        (limit / 4).max(1)
    }

    fn cap(limit: f64, priority: RequestPriority) -> u32 {
        let whole = limit.floor() as u32;
        match priority {
            RequestPriority::Live => whole,
            RequestPriority::Backfill => whole.saturating_sub(Self::reserved(whole)).max(1),
        }
    }

    /// Takes a permit if one is free for `priority` now.
    pub fn try_acquire(&self, priority: RequestPriority) -> Option<ConcurrencyPermit> {
        let mut state = self.lock();
        if state.in_flight >= Self::cap(state.limit, priority) {
            return None;
        }
        state.in_flight += 1;
        let live = priority == RequestPriority::Live;
        if live {
            state.in_flight_live += 1;
        }
        Some(ConcurrencyPermit {
            owner: self.clone(),
            live,
        })
    }

    /// Waits for a permit for `priority`.
    pub async fn acquire(&self, priority: RequestPriority) -> ConcurrencyPermit {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if let Some(permit) = self.try_acquire(priority) {
                return permit;
            }
            released.await;
        }
    }

    /// Whether a permit for `priority` is free now.
    pub fn has_room(&self, priority: RequestPriority) -> bool {
        let state = self.lock();
        state.in_flight < Self::cap(state.limit, priority)
    }

    /// Load as a fraction of what `priority` may use (1.0 = full).
    pub fn load(&self, priority: RequestPriority) -> f64 {
        let state = self.lock();
        f64::from(state.in_flight) / f64::from(Self::cap(state.limit, priority).max(1))
    }

    /// A request answered in `latency`: grow while latency holds.
    pub fn on_success(&self, latency: Duration) {
        let grew = {
            let mut state = self.lock();
            let baseline = match state.baseline {
                None => latency,
                // Follow improvements at once, regressions slowly (1% a success).
                Some(b) if latency < b => latency,
                Some(b) => b + (latency - b) / 100,
            };
            state.baseline = Some(baseline);
            if latency <= baseline * 2 + Duration::from_millis(1) {
                let before = state.limit;
                state.limit = (state.limit + 1.0 / state.limit).min(f64::from(self.settings.max));
                state.limit.floor() > before.floor()
            } else {
                false
            }
        };
        if grew {
            self.released.notify_waiters();
        }
    }

    /// The endpoint pushed back (429, timeout): halve, at most once per cooldown.
    pub fn on_overload(&self, now: Instant) -> bool {
        let mut state = self.lock();
        if state
            .last_decrease
            .is_some_and(|at| now.saturating_duration_since(at) < self.settings.decrease_cooldown)
        {
            return false;
        }
        let lowered = (state.limit / 2.0).max(f64::from(self.settings.min));
        if lowered >= state.limit {
            return false;
        }
        state.limit = lowered;
        state.last_decrease = Some(now);
        state.decreases += 1;
        true
    }

    /// Whether the limit is at its lowest: pushing back can lower it no further.
    pub fn at_floor(&self) -> bool {
        self.lock().limit <= f64::from(self.settings.min)
    }

    /// The upper bound of the limit.
    pub fn max(&self) -> u32 {
        self.settings.max
    }

    /// The current figures.
    pub fn snapshot(&self) -> ConcurrencySnapshot {
        let state = self.lock();
        let limit = state.limit.floor() as u32;
        ConcurrencySnapshot {
            limit,
            in_flight: state.in_flight,
            in_flight_live: state.in_flight_live,
            reserved_for_live: Self::reserved(limit),
            decreases: state.decreases,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(initial: u32) -> AdaptiveConcurrency {
        AdaptiveConcurrency::new(ConcurrencySettings {
            initial,
            min: 2,
            max: 64,
            decrease_cooldown: Duration::from_secs(1),
        })
    }

    #[test]
    fn backfill_leaves_a_reserve_that_live_sync_can_take() {
        let limit = limiter(8);
        let backfill: Vec<_> = std::iter::from_fn(|| limit.try_acquire(RequestPriority::Backfill))
            .take(100)
            .collect();
        assert_eq!(backfill.len(), 6, "8 minus a reserve of 2");
        let live: Vec<_> = std::iter::from_fn(|| limit.try_acquire(RequestPriority::Live))
            .take(100)
            .collect();
        assert_eq!(live.len(), 2, "live sync gets the reserve");
        assert_eq!(limit.snapshot().in_flight_live, 2);
        drop(backfill);
        assert_eq!(limit.snapshot().in_flight, 2);
    }

    #[test]
    fn grows_about_one_per_limit_successes_while_latency_holds() {
        let limit = limiter(4);
        for _ in 0..5 {
            limit.on_success(Duration::from_millis(100));
        }
        assert_eq!(limit.snapshot().limit, 5);
        // Latency three times the baseline: hold (the baseline follows slowly).
        for _ in 0..20 {
            limit.on_success(Duration::from_millis(300));
        }
        assert_eq!(limit.snapshot().limit, 5);
    }

    #[tokio::test(start_paused = true)]
    async fn halves_on_overload_once_per_cooldown_and_never_below_the_minimum() {
        let limit = limiter(32);
        let now = Instant::now();
        assert!(limit.on_overload(now));
        assert!(
            !limit.on_overload(now),
            "a burst of 429s is a single halving"
        );
        assert_eq!(limit.snapshot().limit, 16);
        for _ in 0..10 {
            tokio::time::advance(Duration::from_secs(1)).await;
            limit.on_overload(Instant::now());
        }
        assert_eq!(limit.snapshot().limit, 2);
        assert_eq!(limit.snapshot().decreases, 4, "16, 8, 4, 2");
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_gets_the_permit_given_back() {
        let limit = limiter(2);
        let held = limit.try_acquire(RequestPriority::Backfill).expect("one");
        assert!(limit.try_acquire(RequestPriority::Backfill).is_none());
        let waiter = {
            let limit = limit.clone();
            tokio::spawn(async move { limit.acquire(RequestPriority::Backfill).await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(held);
        let permit = tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("woken")
            .expect("joined");
        assert_eq!(limit.snapshot().in_flight, 1);
        drop(permit);
    }
}
