//! [`EndpointPool`]: one chain's RPC endpoints behind a single [`ChainSource`].
//!
//! Every endpoint has its own circuit breaker ([`breaker`]), adaptive concurrency limit shared by
//! the live and backfill lanes with a reserve for live sync ([`concurrency`]), optional
//! requests-per-second token bucket (governor), `Retry-After` cool-down, and recent record
//! ([`stats`]). A request goes to the healthiest usable endpoint (lowest latency times load,
//! penalised by recent failures); a failure is retried on another endpoint, with jittered
//! exponential backoff before an endpoint is tried again.
//!
//! What counts against an endpoint:
//! - transport errors, timeouts and HTTP errors feed its breaker;
//! - 429s (and JSON-RPC -32005) cool it down for `Retry-After` (1 s when absent) and halve its
//!   concurrency, as do timeouts;
//! - malformed answers and JSON-RPC errors lower its health score and it is not asked again for
//!   the same request, but they do not open its breaker: they are about the range, and an
//!   endpoint that serves every other range well is not down.
//!
//! When every endpoint fails the same request, the last failure is returned, so a range that
//! every endpoint answers badly still reads as block-specific to the batch activity.
//!
//! No endpoint's word about which chain it serves is taken ([`identity`]): the pool knows the
//! chain's id and genesis hash, and routes only to endpoints found serving them. An endpoint is
//! checked (`eth_chainId`, block 0's hash) before its first use, again every
//! `identity_check_interval` by the health loop ([`EndpointPool::probe_idle`]), and after its
//! breaker opened (what answers when it is back may be another node). One that serves another
//! chain is marked `wrong_chain` and not used until a later check agrees. Answers that move the
//! head or decide reorgs (`head`, `block_hashes`) are only taken after the endpoint that gave
//! them confirmed its chain id, so a URL re-pointed between two checks cannot unwind a chain.

pub mod breaker;
mod chain_source;
mod checks;
pub mod concurrency;
mod config;
pub mod identity;
mod snapshot;
pub mod stats;

use std::{
    collections::VecDeque,
    future::Future,
    num::NonZeroU32,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use chrono::Utc;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::time::Instant;

use self::{
    breaker::{BreakerState, CircuitBreaker, ProbeToken, Transition},
    concurrency::{AdaptiveConcurrency, ConcurrencySettings},
    identity::IdentityCell,
    stats::{EndpointStats, error_kind},
};
pub use chain_source::PrioritizedPool;
pub use concurrency::RequestPriority;
pub use config::{EndpointConfig, PoolSettings, retry_delay};
pub use identity::{ChainIdentity, IdentityState};
pub use snapshot::{EndpointSnapshot, TransitionView};

use super::{BlockBundle, ChainSource, EvmRpcSource, SourceError};
use crate::{redact::redact_url, types::BlockRange};

/// One endpoint's HTTP client as the pool drives it ([`EvmRpcSource`] in production; tests use
/// scripted fakes).
pub trait EndpointClient: ChainSource {
    /// The endpoint URL.
    fn url(&self) -> &str;
    /// HTTP requests fetching `range` costs (what the token bucket charges).
    fn requests_for(&self, range: BlockRange) -> u64;
    /// Whether the endpoint takes JSON-RPC batches.
    fn batches_accepted(&self) -> bool {
        true
    }
}

impl EndpointClient for EvmRpcSource {
    fn url(&self) -> &str {
        self.endpoint()
    }

    fn requests_for(&self, range: BlockRange) -> u64 {
        EvmRpcSource::requests_for(self, range)
    }

    fn batches_accepted(&self) -> bool {
        EvmRpcSource::batches_accepted(self)
    }
}

/// How many transitions an endpoint remembers.
const TRANSITIONS_KEPT: usize = 20;

#[derive(Debug)]
struct Health {
    breaker: CircuitBreaker,
    cooldown_until: Option<Instant>,
    stats: EndpointStats,
    /// Smoothed latency of successes, seconds.
    latency_ewma: Option<f64>,
    /// Smoothed share of failed requests (0..1).
    failure_ewma: f64,
    transitions: VecDeque<TransitionView>,
    last_error: Option<String>,
    /// When a request (or probe) was last sent.
    last_sent: Option<Instant>,
    /// See [`EndpointSnapshot::identity_detail`].
    identity_detail: Option<String>,
    /// When its identity was last checked, whatever came of it.
    identity_checked_at: Option<Instant>,
}

struct Endpoint {
    client: Arc<dyn EndpointClient>,
    /// The URL as logs, metrics and errors show it ([`redact_url`]).
    label: String,
    rps: Option<NonZeroU32>,
    rate: Option<DefaultDirectRateLimiter>,
    concurrency: AdaptiveConcurrency,
    health: Mutex<Health>,
    /// Which chain it serves, read on every selection.
    identity: IdentityCell,
    /// Held while its identity is checked: concurrent requests wait for one check.
    identity_check: tokio::sync::Mutex<()>,
}

impl Endpoint {
    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How checking an endpoint's identity before using it went.
enum Verification {
    /// It serves the chain.
    Verified,
    /// This request's check failed: its outcome is recorded against the endpoint.
    Failed(SourceError),
    /// Another request's check, which finished while this one waited for it, failed (and was
    /// recorded there).
    FailedElsewhere(SourceError),
}

/// When an endpoint can next take a request; `None` while its half-open breaker's single probe
/// is out (nothing to wait for: the probe's outcome decides).
fn usable_at(health: &Health, now: Instant) -> Option<Instant> {
    let breaker = match health.breaker.state(now) {
        BreakerState::Open => health.breaker.reopens_at().unwrap_or(now),
        BreakerState::HalfOpen if !health.breaker.would_allow(now) => return None,
        _ => now,
    };
    Some(health.cooldown_until.map_or(breaker, |c| c.max(breaker)))
}

enum Choice {
    Ready(usize),
    WaitUntil(Instant),
    Exhausted,
}

/// One try's claim on an endpoint: the right its breaker gave to send one request, which is the
/// half-open breaker's single probe when `probe` is set. The outcome is recorded through it
/// ([`Claim::succeeded`], [`Claim::failed`]); a claim dropped without one (the request's future
/// was dropped: a timeout around it, a cancelled batch, a shutdown) gives its probe back, so the
/// endpoint is not locked out until the process restarts.
struct Claim<'a> {
    pool: &'a EndpointPool,
    endpoint: &'a Endpoint,
    probe: Option<ProbeToken>,
}

impl Claim<'_> {
    fn succeeded(mut self, latency: Duration) {
        self.probe = None;
        self.pool.on_success(self.endpoint, latency);
    }

    fn failed(mut self, error: &SourceError, latency: Duration) {
        let probe = self.probe.take();
        self.pool.on_failure(self.endpoint, probe, error, latency);
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if let Some(token) = self.probe.take()
            && self.endpoint.health().breaker.release_probe(token)
        {
            tracing::debug!(target: "blockfill::rpc", chain = %self.pool.chain, endpoint = %self.endpoint.label, "half-open probe abandoned by its request; given back");
        }
    }
}

/// One chain's endpoints behind one [`ChainSource`]. Requests through the trait run at
/// [`RequestPriority::Backfill`]; [`EndpointPool::with_priority`] gives a live-sync handle.
pub struct EndpointPool {
    chain: String,
    expected: ChainIdentity,
    endpoints: Vec<Endpoint>,
    settings: PoolSettings,
    rotation: AtomicUsize,
}

impl std::fmt::Debug for EndpointPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointPool")
            .field("chain", &self.chain)
            .field("expected", &self.expected)
            .field(
                "endpoints",
                &self
                    .endpoints
                    .iter()
                    .map(|e| e.label.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl EndpointPool {
    /// A pool of JSON-RPC endpoints for `chain`, which must serve `expected`.
    pub fn connect(
        chain: &str,
        endpoints: &[EndpointConfig],
        expected: ChainIdentity,
        settings: PoolSettings,
    ) -> Result<Self, SourceError> {
        let clients = endpoints
            .iter()
            .map(|config| {
                let client: Arc<dyn EndpointClient> =
                    Arc::new(EvmRpcSource::new(&config.url, settings.rpc.clone())?);
                Ok((client, config.clone()))
            })
            .collect::<Result<Vec<_>, SourceError>>()?;
        Self::with_clients(chain, clients, expected, settings)
    }

    /// A pool over ready-made clients, each with its config (rps, concurrency), which must
    /// serve `expected`.
    pub fn with_clients(
        chain: &str,
        clients: Vec<(Arc<dyn EndpointClient>, EndpointConfig)>,
        expected: ChainIdentity,
        settings: PoolSettings,
    ) -> Result<Self, SourceError> {
        if clients.is_empty() {
            return Err(SourceError::NoEndpoint {
                chain: chain.to_owned(),
                detail: "no RPC URL is configured".to_owned(),
            });
        }
        let now = Instant::now();
        let endpoints = clients
            .into_iter()
            .map(|(client, config)| {
                let rps = config
                    .rps
                    .or(settings.default_rps)
                    .and_then(NonZeroU32::new);
                let concurrency = ConcurrencySettings {
                    max: config.max_concurrency.unwrap_or(settings.concurrency.max),
                    ..settings.concurrency
                };
                Endpoint {
                    label: redact_url(client.url()),
                    client,
                    rps,
                    rate: rps.map(|r| RateLimiter::direct(Quota::per_second(r))),
                    concurrency: AdaptiveConcurrency::new(concurrency),
                    health: Mutex::new(Health {
                        breaker: CircuitBreaker::new(settings.breaker),
                        cooldown_until: None,
                        stats: EndpointStats::new(now),
                        latency_ewma: None,
                        failure_ewma: 0.0,
                        transitions: VecDeque::new(),
                        last_error: None,
                        last_sent: None,
                        identity_detail: None,
                        identity_checked_at: None,
                    }),
                    identity: IdentityCell::default(),
                    identity_check: tokio::sync::Mutex::new(()),
                }
            })
            .collect::<Vec<Endpoint>>();
        for endpoint in &endpoints {
            metrics::gauge!("blockfill_rpc_endpoint_wrong_chain", "chain" => chain.to_owned(), "endpoint" => endpoint.label.clone())
                .set(0.0);
        }
        Ok(Self {
            chain: chain.to_owned(),
            expected,
            endpoints,
            settings,
            rotation: AtomicUsize::new(0),
        })
    }

    /// The chain this pool serves.
    pub fn chain(&self) -> &str {
        &self.chain
    }

    /// What its endpoints must serve.
    pub fn expected(&self) -> &ChainIdentity {
        &self.expected
    }

    /// A [`ChainSource`] whose requests run at `priority`.
    pub fn with_priority(self: &Arc<Self>, priority: RequestPriority) -> PrioritizedPool {
        PrioritizedPool {
            pool: Arc::clone(self),
            priority,
        }
    }

    /// Picks the endpoint for the next try: among those usable now, not `excluded` and not
    /// serving another chain, a verified one before one still to be checked, then the one with
    /// room for `priority` and the best score; else when the soonest becomes usable.
    fn choose(&self, priority: RequestPriority, excluded: &[bool], now: Instant) -> Choice {
        let mut best: Option<(bool, bool, f64, usize)> = None;
        let mut soonest: Option<Instant> = None;
        let offset = self.rotation.fetch_add(1, Ordering::Relaxed);
        let count = self.endpoints.len();
        for step in 0..count {
            let index = (offset + step) % count;
            if excluded.get(index).copied().unwrap_or(false) {
                continue;
            }
            let endpoint = &self.endpoints[index];
            let verified = match endpoint.identity.get() {
                IdentityState::WrongChain => continue,
                IdentityState::Verified => true,
                IdentityState::Unverified => false,
            };
            let (at, latency, failures) = {
                let health = endpoint.health();
                (
                    usable_at(&health, now),
                    health.latency_ewma.unwrap_or(0.05),
                    health.failure_ewma,
                )
            };
            let Some(at) = at else {
                continue;
            };
            if at > now {
                soonest = Some(soonest.map_or(at, |s| s.min(at)));
                continue;
            }
            let room = endpoint.concurrency.has_room(priority);
            let score =
                latency * (1.0 + endpoint.concurrency.load(priority)) * (1.0 + 20.0 * failures);
            let better = match best {
                None => true,
                Some((best_verified, best_room, best_score, _)) => {
                    (verified && !best_verified)
                        || (verified == best_verified
                            && ((room && !best_room) || (room == best_room && score < best_score)))
                }
            };
            if better {
                best = Some((verified, room, score, index));
            }
        }
        match (best, soonest) {
            (Some((_, _, _, index)), _) => Choice::Ready(index),
            (None, Some(at)) => Choice::WaitUntil(at),
            (None, None) => Choice::Exhausted,
        }
    }

    fn record_transition(&self, endpoint: &Endpoint, health: &mut Health, t: Transition) {
        let url = endpoint.label.as_str();
        let (from, to) = (t.from.as_str(), t.to.as_str());
        match t.to {
            BreakerState::Open => {
                tracing::warn!(target: "blockfill::rpc", chain = %self.chain, endpoint = url, from, to, last_error = ?health.last_error, "circuit breaker opened")
            }
            _ => {
                tracing::info!(target: "blockfill::rpc", chain = %self.chain, endpoint = url, from, to, "circuit breaker changed state")
            }
        }
        metrics::counter!("blockfill_rpc_breaker_transitions_total", "chain" => self.chain.clone(), "endpoint" => url.to_owned(), "to" => to)
            .increment(1);
        metrics::gauge!("blockfill_rpc_breaker_open", "chain" => self.chain.clone(), "endpoint" => url.to_owned())
            .set(if t.to == BreakerState::Open { 1.0 } else { 0.0 });
        let wall = Utc::now()
            - chrono::Duration::from_std(Instant::now().saturating_duration_since(t.at))
                .unwrap_or_default();
        health.transitions.push_back(TransitionView {
            from: t.from,
            to: t.to,
            at: wall,
        });
        while health.transitions.len() > TRANSITIONS_KEPT {
            health.transitions.pop_front();
        }
        if t.to == BreakerState::Open && endpoint.identity.get() == IdentityState::Verified {
            // What answers when it is back may be another node: check before trusting it again.
            self.set_identity(
                endpoint,
                health,
                IdentityState::Unverified,
                Some("down since it was verified; checked again when it answers".to_owned()),
            );
        }
    }

    /// Claims the right to send `endpoint` a request now (its breaker's single probe when
    /// half-open), recording the transition that causes. `None` when its breaker refuses.
    fn claim<'a>(&'a self, endpoint: &'a Endpoint, now: Instant) -> Option<Claim<'a>> {
        let mut health = endpoint.health();
        let admission = health.breaker.try_acquire(now).ok()?;
        if let Some(t) = admission.transition {
            self.record_transition(endpoint, &mut health, t);
        }
        health.last_sent = Some(now);
        Some(Claim {
            pool: self,
            endpoint,
            probe: admission.probe,
        })
    }

    fn on_success(&self, endpoint: &Endpoint, latency: Duration) {
        endpoint.concurrency.on_success(latency);
        let now = Instant::now();
        let mut health = endpoint.health();
        health.stats.on_success(now, latency);
        let seconds = latency.as_secs_f64();
        health.latency_ewma = Some(
            health
                .latency_ewma
                .map_or(seconds, |l| 0.8 * l + 0.2 * seconds),
        );
        health.failure_ewma *= 0.9;
        if let Some(t) = health.breaker.on_success(now) {
            self.record_transition(endpoint, &mut health, t);
        }
        metrics::histogram!("blockfill_rpc_latency_seconds", "chain" => self.chain.clone(), "endpoint" => endpoint.label.clone())
            .record(seconds);
        metrics::counter!("blockfill_rpc_requests_total", "chain" => self.chain.clone(), "endpoint" => endpoint.label.clone(), "outcome" => "ok")
            .increment(1);
    }

    /// Records a failure; `probe` is the half-open probe the request held, given back when the
    /// failure says nothing about the endpoint being up.
    fn on_failure(
        &self,
        endpoint: &Endpoint,
        probe: Option<ProbeToken>,
        error: &SourceError,
        latency: Duration,
    ) {
        let now = Instant::now();
        let kind = error_kind(error);
        metrics::counter!("blockfill_rpc_errors_total", "chain" => self.chain.clone(), "endpoint" => endpoint.label.clone(), "kind" => kind)
            .increment(1);
        metrics::counter!("blockfill_rpc_requests_total", "chain" => self.chain.clone(), "endpoint" => endpoint.label.clone(), "outcome" => "error")
            .increment(1);
        tracing::debug!(target: "blockfill::rpc", chain = %self.chain, endpoint = %endpoint.label, kind, %error, "request failed");
        // A timeout while the endpoint's concurrency can still come down is a slow node given
        // too much at once (each request waits behind the others): it halves the concurrency,
        // as a 429 does, and is no sign of the endpoint being down. Only timeouts at the lowest
        // concurrency count towards its breaker.
        let overloaded =
            matches!(error, SourceError::Timeout { .. }) && !endpoint.concurrency.at_floor();
        if matches!(
            error,
            SourceError::RateLimited { .. } | SourceError::Timeout { .. }
        ) && endpoint.concurrency.on_overload(now)
        {
            tracing::info!(target: "blockfill::rpc", chain = %self.chain, endpoint = %endpoint.label, limit = endpoint.concurrency.snapshot().limit, "endpoint pushed back; concurrency halved");
        }
        let mut health = endpoint.health();
        health.stats.on_error(now, kind, latency);
        health.last_error = Some(error.to_string());
        let release = |breaker: &mut CircuitBreaker| {
            if let Some(token) = probe {
                breaker.release_probe(token);
            }
        };
        let transition = match error {
            SourceError::RateLimited {
                retry_after_secs, ..
            } => {
                let wait = retry_after_secs
                    .map_or(Duration::from_secs(1), Duration::from_secs)
                    .min(self.settings.max_retry_after);
                let until = now + wait;
                health.cooldown_until = Some(health.cooldown_until.map_or(until, |c| c.max(until)));
                release(&mut health.breaker);
                None
            }
            SourceError::NotYetAvailable { .. } => {
                release(&mut health.breaker);
                None
            }
            SourceError::Timeout { .. } if overloaded => {
                health.failure_ewma = 0.9 * health.failure_ewma + 0.1;
                release(&mut health.breaker);
                None
            }
            SourceError::Malformed { .. } | SourceError::Rpc { .. } => {
                health.failure_ewma = 0.9 * health.failure_ewma + 0.1;
                release(&mut health.breaker);
                None
            }
            // It answered, so it is up; it is just not this chain.
            SourceError::WrongChain { detail, .. } => {
                release(&mut health.breaker);
                self.set_identity(
                    endpoint,
                    &mut health,
                    IdentityState::WrongChain,
                    Some(detail.clone()),
                );
                None
            }
            SourceError::Transport { .. }
            | SourceError::Timeout { .. }
            | SourceError::Http { .. }
            | SourceError::NoEndpoint { .. } => {
                health.failure_ewma = 0.9 * health.failure_ewma + 0.1;
                health.breaker.on_failure(now)
            }
        };
        if let Some(t) = transition {
            self.record_transition(endpoint, &mut health, t);
        }
    }

    /// Runs `op` on the best endpoint, retrying elsewhere on failure. `cost` is what the token
    /// bucket charges for one try.
    async fn run<T, F, Fut>(
        &self,
        priority: RequestPriority,
        cost: impl Fn(&dyn EndpointClient) -> u64,
        op: F,
    ) -> Result<T, SourceError>
    where
        F: Fn(Arc<dyn EndpointClient>) -> Fut,
        Fut: Future<Output = Result<T, SourceError>>,
    {
        self.run_excluding(priority, None, cost, op).await
    }

    /// [`EndpointPool::run`] that never asks the endpoint at `skip`.
    async fn run_excluding<T, F, Fut>(
        &self,
        priority: RequestPriority,
        skip: Option<&str>,
        cost: impl Fn(&dyn EndpointClient) -> u64,
        op: F,
    ) -> Result<T, SourceError>
    where
        F: Fn(Arc<dyn EndpointClient>) -> Fut,
        Fut: Future<Output = Result<T, SourceError>>,
    {
        let deadline = Instant::now() + self.settings.max_wait;
        let mut excluded: Vec<bool> = self
            .endpoints
            .iter()
            .map(|e| Some(e.client.url()) == skip)
            .collect();
        let mut tries = vec![0u32; self.endpoints.len()];
        let mut last_error: Option<SourceError> = None;
        let mut attempt = 0;
        let max_attempts = self
            .settings
            .max_attempts
            .min(self.settings.tries_per_endpoint.max(1) * self.endpoints.len() as u32)
            .max(1);
        while attempt < max_attempts {
            let now = Instant::now();
            let index = match self.choose(priority, &excluded, now) {
                Choice::Ready(index) => index,
                Choice::WaitUntil(at) if at <= deadline => {
                    tokio::time::sleep_until(at).await;
                    continue;
                }
                Choice::WaitUntil(_) | Choice::Exhausted => break,
            };
            let endpoint = &self.endpoints[index];
            if tries[index] > 0 {
                let delay = retry_delay(
                    tries[index] - 1,
                    self.settings.retry_base,
                    self.settings.retry_max,
                    rand::random::<f64>(),
                );
                tokio::time::sleep(delay).await;
            }
            let Some(claim) = self.claim(endpoint, Instant::now()) else {
                continue;
            };
            attempt += 1;
            tries[index] += 1;
            let check_failed = if endpoint.identity.get() == IdentityState::Verified {
                None
            } else {
                let started = Instant::now();
                match self.verify_before_use(endpoint).await {
                    Verification::Verified => None,
                    Verification::Failed(error) => Some((error, Some(started.elapsed()))),
                    Verification::FailedElsewhere(error) => Some((error, None)),
                }
            };
            if let Some((error, latency)) = check_failed {
                match latency {
                    Some(latency) => claim.failed(&error, latency),
                    // Recorded by the check that found it; dropping the claim gives back a
                    // probe it held.
                    None => drop(claim),
                }
                // An endpoint of another chain, or one that answers the check badly, gives this
                // request nothing.
                if endpoint.identity.get() == IdentityState::WrongChain
                    || matches!(
                        error,
                        SourceError::Malformed { .. } | SourceError::Rpc { .. }
                    )
                {
                    excluded[index] = true;
                }
                last_error = Some(error);
                continue;
            }
            let requests = cost(endpoint.client.as_ref()).max(1);
            if let (Some(rate), Some(rps)) = (&endpoint.rate, endpoint.rps) {
                let n = NonZeroU32::new(requests.min(u64::from(rps.get())) as u32)
                    .unwrap_or(NonZeroU32::MIN);
                // Cannot fail: n never exceeds the bucket's burst.
                let _ = rate.until_n_ready(n).await;
            }
            let permit = endpoint.concurrency.acquire(priority).await;
            endpoint.health().stats.on_request(Instant::now(), requests);
            let started = Instant::now();
            let result = op(Arc::clone(&endpoint.client)).await;
            let latency = started.elapsed();
            match result {
                Ok(value) => {
                    claim.succeeded(latency);
                    drop(permit);
                    return Ok(value);
                }
                Err(error) => {
                    claim.failed(&error, latency);
                    drop(permit);
                    // The same request gets the same answer there; ask elsewhere.
                    if matches!(
                        error,
                        SourceError::Malformed { .. }
                            | SourceError::Rpc { .. }
                            | SourceError::NotYetAvailable { .. }
                            | SourceError::WrongChain { .. }
                    ) {
                        excluded[index] = true;
                    }
                    last_error = Some(error);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| SourceError::NoEndpoint {
            chain: self.chain.clone(),
            detail: self.describe(Instant::now()),
        }))
    }

    async fn fetch_range_at(
        &self,
        range: BlockRange,
        priority: RequestPriority,
    ) -> Result<BlockBundle, SourceError> {
        self.run(
            priority,
            |client| client.requests_for(range),
            |client| async move {
                let bundle = client.fetch_range(range).await?;
                self.cross_check_parent(client.url(), range, bundle, priority)
                    .await
            },
        )
        .await
    }

    /// A bundle whose source could not check the first block's parent (the block below the range
    /// did not come back usable) is checked against the hash another endpoint gives for that
    /// block. A disagreement is a malformed answer of the first endpoint; no other endpoint, or
    /// none with a usable answer (a block below that is bad everywhere), leaves it to the write's
    /// check of the stored neighbour.
    async fn cross_check_parent(
        &self,
        url: &str,
        range: BlockRange,
        bundle: BlockBundle,
        priority: RequestPriority,
    ) -> Result<BlockBundle, SourceError> {
        if bundle.first_parent_verified || range.from == 0 || self.endpoints.len() < 2 {
            return Ok(bundle);
        }
        let below = BlockRange {
            from: range.from - 1,
            to: range.from - 1,
        };
        let hashes = self
            .run_excluding(
                priority,
                Some(url),
                |_| 1,
                |client| async move { client.block_hashes(below).await },
            )
            .await;
        match (hashes.as_deref(), bundle.blocks.first()) {
            (Ok([(number, hash)]), Some(first))
                if *number == below.from && *hash != first.parent_hash =>
            {
                Err(SourceError::Malformed {
                    endpoint: redact_url(url),
                    range,
                    message: format!(
                        "block {} has parent hash {} but another endpoint has block {number} with hash {hash}",
                        first.number, first.parent_hash
                    ),
                })
            }
            _ => Ok(bundle),
        }
    }
}

#[cfg(test)]
mod tests;
