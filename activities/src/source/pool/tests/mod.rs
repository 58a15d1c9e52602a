//! Pool behaviour over scripted endpoints, with paused time: nothing here really sleeps.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;

use super::breaker::BreakerSettings;
use tokio::time::Instant;

use super::*;
use chain::{TestChain, TestChainConfig};

/// What a scripted endpoint does with one request.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    Serve,
    Refuse,
    RateLimit(u64),
    Malform,
    TimeOut,
    /// Serves the range with a wrong parent hash on its first block, unchecked (as when the
    /// block below came back unusable).
    UncheckedBadParent,
    /// Answers after an hour (a request its caller gives up on first).
    Stall,
}

/// An endpoint that serves a test chain after `latency`, or fails as its script says. Every call
/// (identity checks included) takes the next step of the script.
struct Scripted {
    url: String,
    /// What it serves: [`the_chain`] unless re-pointed.
    chain: RwLock<Arc<TestChain>>,
    latency: Duration,
    script: Mutex<VecDeque<Step>>,
    then: Step,
    calls: AtomicU64,
}

impl Scripted {
    fn new(url: &str, latency: Duration, script: &[Step], then: Step) -> Arc<Self> {
        Self::serving(url, latency, script, then, the_chain())
    }

    fn serving(
        url: &str,
        latency: Duration,
        script: &[Step],
        then: Step,
        chain: TestChainConfig,
    ) -> Arc<Self> {
        Arc::new(Self {
            url: url.to_owned(),
            chain: RwLock::new(Arc::new(TestChain::new(chain))),
            latency,
            script: Mutex::new(script.iter().copied().collect()),
            then,
            calls: AtomicU64::new(0),
        })
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    fn chain(&self) -> Arc<TestChain> {
        Arc::clone(&self.chain.read().expect("chain"))
    }

    /// Its URL serves another node from now on.
    fn re_point(&self, chain: TestChainConfig) {
        *self.chain.write().expect("chain") = Arc::new(TestChain::new(chain));
    }

    async fn step(&self, range: BlockRange) -> Result<Step, SourceError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let step = self
            .script
            .lock()
            .expect("script")
            .pop_front()
            .unwrap_or(self.then);
        tokio::time::sleep(self.latency).await;
        let endpoint = self.url.clone();
        match step {
            Step::Serve | Step::UncheckedBadParent => Ok(step),
            Step::Stall => {
                tokio::time::sleep(Duration::from_secs(3_600)).await;
                Ok(step)
            }
            Step::Refuse => Err(SourceError::Transport {
                endpoint,
                message: "connection refused".into(),
            }),
            Step::RateLimit(secs) => Err(SourceError::RateLimited {
                endpoint,
                retry_after_secs: Some(secs),
            }),
            Step::Malform => Err(SourceError::Malformed {
                endpoint,
                range,
                message: "no hash".into(),
            }),
            Step::TimeOut => Err(SourceError::Timeout {
                endpoint,
                timeout: Duration::from_secs(30),
            }),
        }
    }
}

#[async_trait]
impl ChainSource for Scripted {
    async fn chain_id(&self) -> Result<u64, SourceError> {
        self.step(BlockRange { from: 0, to: 0 }).await?;
        self.chain().chain_id().await
    }

    async fn head(&self) -> Result<u64, SourceError> {
        self.step(BlockRange { from: 0, to: 0 }).await?;
        self.chain().head().await
    }

    async fn fetch_range(&self, range: BlockRange) -> Result<BlockBundle, SourceError> {
        let step = self.step(range).await?;
        let mut bundle = self.chain().fetch_range(range).await?;
        if step == Step::UncheckedBadParent
            && let Some(first) = bundle.blocks.first_mut()
        {
            first.parent_hash = format!("0x{}", "e".repeat(64));
            bundle.first_parent_verified = false;
        }
        Ok(bundle)
    }
}

impl EndpointClient for Scripted {
    fn url(&self) -> &str {
        &self.url
    }

    fn requests_for(&self, _range: BlockRange) -> u64 {
        2
    }
}

fn settings() -> PoolSettings {
    PoolSettings {
        breaker: BreakerSettings {
            failure_threshold: 3,
            open_for: Duration::from_secs(5),
            max_open_for: Duration::from_secs(20),
        },
        ..PoolSettings::default()
    }
}

/// The chain the pools of these tests serve.
fn the_chain() -> TestChainConfig {
    TestChainConfig {
        blocks: 10_000,
        ..TestChainConfig::default()
    }
}

/// Another network: its own chain id, and another genesis when `seed` differs from 0.
fn another_chain(chain_id: u64, seed: u64) -> TestChainConfig {
    TestChainConfig {
        chain_id,
        seed,
        blocks: 20_000,
    }
}

/// What [`the_chain`]'s endpoints must serve.
fn its_identity() -> ChainIdentity {
    let chain = TestChain::new(the_chain());
    ChainIdentity::new(1337, Some(format!("{:#x}", chain.block_hash(0))))
}

fn pool(endpoints: &[&Arc<Scripted>], settings: PoolSettings) -> Arc<EndpointPool> {
    pool_expecting(endpoints, its_identity(), settings)
}

fn pool_expecting(
    endpoints: &[&Arc<Scripted>],
    expected: ChainIdentity,
    settings: PoolSettings,
) -> Arc<EndpointPool> {
    let clients = endpoints
        .iter()
        .map(|e| {
            let client: Arc<dyn EndpointClient> = Arc::clone(*e) as Arc<dyn EndpointClient>;
            (client, EndpointConfig::new(e.url.clone()))
        })
        .collect();
    Arc::new(EndpointPool::with_clients("test", clients, expected, settings).expect("pool"))
}

fn range(from: u64) -> BlockRange {
    BlockRange { from, to: from + 9 }
}

fn state_of(pool: &EndpointPool, url: &str) -> EndpointSnapshot {
    pool.snapshot()
        .into_iter()
        .find(|s| s.url == url)
        .expect("endpoint in snapshot")
}

#[tokio::test(start_paused = true)]
async fn a_dead_endpoint_opens_its_breaker_is_skipped_then_probed_and_closes_when_back() {
    let dead = Scripted::new("http://dead", Duration::ZERO, &[], Step::Refuse);
    let good = Scripted::new("http://good", Duration::from_millis(10), &[], Step::Serve);
    let pool = pool(&[&dead, &good], settings());
    for i in 0..20 {
        pool.fetch_range(range(i * 10))
            .await
            .expect("failover serves every request");
    }
    let after_traffic = dead.calls();
    assert!(after_traffic >= 1, "the unknown endpoint was tried");
    assert!(
        after_traffic < 3,
        "its failures steer traffic away: {after_traffic}"
    );
    // Health checks reach the endpoint nobody routes to: threshold failures open its breaker.
    for _ in 0..5 {
        tokio::time::advance(Duration::from_millis(500)).await;
        pool.probe_idle(Duration::from_millis(500)).await;
    }
    let snapshot = state_of(&pool, "http://dead");
    assert_eq!(snapshot.breaker, BreakerState::Open, "{snapshot:?}");
    assert_eq!(snapshot.transitions.len(), 1);
    assert_eq!(snapshot.errors.get("transport"), Some(&3));
    let calls_when_opened = dead.calls();
    assert_eq!(calls_when_opened, 3, "threshold failures, then no more");
    for i in 20..40 {
        pool.fetch_range(range(i * 10)).await.expect("served");
        pool.probe_idle(Duration::ZERO).await;
    }
    assert_eq!(
        dead.calls(),
        calls_when_opened,
        "an open breaker sends nothing"
    );

    // After the open time, one probe: it fails, and the breaker opens for twice as long.
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(
        state_of(&pool, "http://dead").breaker,
        BreakerState::HalfOpen
    );
    pool.probe_idle(Duration::ZERO).await;
    assert_eq!(dead.calls(), calls_when_opened + 1, "a single probe");
    let reopened = state_of(&pool, "http://dead");
    assert_eq!(reopened.breaker, BreakerState::Open);
    let reopens_in = reopened.breaker_reopens_in_ms.expect("open");
    assert!(
        (9_900..=10_000).contains(&reopens_in),
        "twice the first open time: {reopens_in} ms"
    );

    // The endpoint comes back: the next probe closes the breaker and traffic returns.
    *dead.script.lock().expect("script") = std::iter::repeat_n(Step::Serve, 1_000).collect();
    tokio::time::advance(Duration::from_secs(10)).await;
    pool.probe_idle(Duration::ZERO).await;
    let closed = state_of(&pool, "http://dead");
    assert_eq!(closed.breaker, BreakerState::Closed, "{closed:?}");
    let states: Vec<_> = closed.transitions.iter().map(|t| t.to).collect();
    assert_eq!(
        states,
        [
            BreakerState::Open,
            BreakerState::HalfOpen,
            BreakerState::Open,
            BreakerState::HalfOpen,
            BreakerState::Closed
        ]
    );
    let before = dead.calls();
    for i in 40..200 {
        pool.fetch_range(range(i * 10)).await.expect("served");
    }
    assert!(
        dead.calls() > before,
        "a recovered endpoint gets traffic again"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_on_a_lone_endpoint_and_routed_around_with_two() {
    let limited = Scripted::new(
        "http://limited",
        Duration::ZERO,
        &[Step::RateLimit(3)],
        Step::Serve,
    );
    let alone = pool(&[&limited], settings());
    let started = Instant::now();
    alone
        .fetch_range(range(0))
        .await
        .expect("served after the wait");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(3) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    assert_eq!(
        limited.calls(),
        4,
        "the identity check (rate limited, then chain id and genesis) and the request: nothing \
         sent during the cool-down"
    );
    let snapshot = state_of(&alone, "http://limited");
    assert_eq!(snapshot.errors.get("rate_limited"), Some(&1));
    assert_eq!(
        snapshot.breaker,
        BreakerState::Closed,
        "429s are not outages"
    );
    assert_eq!(
        snapshot.concurrency_decreases, 1,
        "a 429 halves concurrency"
    );

    let limited = Scripted::new(
        "http://limited",
        Duration::ZERO,
        &[Step::RateLimit(30)],
        Step::Serve,
    );
    let other = Scripted::new("http://other", Duration::ZERO, &[], Step::Serve);
    let both = pool(&[&limited, &other], settings());
    let started = Instant::now();
    for i in 0..10 {
        both.fetch_range(range(i * 10)).await.expect("served");
    }
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(limited.calls(), 1, "cooling down for its Retry-After");
    assert_eq!(
        state_of(&both, "http://limited")
            .cooldown_ms
            .map(|ms| ms / 1_000),
        Some(30)
    );
}

#[tokio::test(start_paused = true)]
async fn retries_of_one_endpoint_back_off_exponentially_within_the_jitter_ceiling() {
    let flaky = Scripted::new(
        "http://flaky",
        Duration::ZERO,
        &[Step::Refuse, Step::Refuse, Step::TimeOut],
        Step::Serve,
    );
    let lone = pool(
        &[&flaky],
        PoolSettings {
            retry_base: Duration::from_millis(100),
            tries_per_endpoint: 4,
            breaker: BreakerSettings {
                failure_threshold: 5,
                ..BreakerSettings::default()
            },
            ..settings()
        },
    );
    let started = Instant::now();
    lone.fetch_range(range(0)).await.expect("fourth try serves");
    // Ceilings 100 + 200 + 400 ms (full jitter: anywhere below them).
    assert!(started.elapsed() <= Duration::from_millis(700));
    assert_eq!(
        flaky.calls(),
        6,
        "three failed identity checks, then the check (chain id, genesis) and the request"
    );

    for (retry, draw, expected) in [
        (0, 1.0, 100),
        (1, 1.0, 200),
        (3, 0.5, 400),
        (10, 1.0, 2_000),
        (2, 0.0, 0),
    ] {
        assert_eq!(
            retry_delay(
                retry,
                Duration::from_millis(100),
                Duration::from_secs(2),
                draw
            ),
            Duration::from_millis(expected),
            "retry {retry} draw {draw}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_malformed_answer_is_asked_elsewhere_and_returned_when_every_endpoint_agrees() {
    let bad = Scripted::new("http://bad", Duration::ZERO, &[], Step::Malform);
    let good = Scripted::new("http://good", Duration::from_millis(5), &[], Step::Serve);
    let pool_of_two = pool(&[&bad, &good], settings());
    for i in 0..10 {
        let bundle = pool_of_two
            .fetch_range(range(i * 10))
            .await
            .expect("the good endpoint answers");
        assert_eq!(bundle.blocks.len(), 10);
    }
    let snapshot = state_of(&pool_of_two, "http://bad");
    assert_eq!(
        snapshot.breaker,
        BreakerState::Closed,
        "bad answers are not outages"
    );
    assert!(snapshot.errors.get("malformed").copied().unwrap_or(0) >= 1);
    assert!(
        bad.calls() < 10,
        "its health score steers traffic away: {} calls",
        bad.calls()
    );

    let alone = pool(&[&bad], settings());
    match alone.fetch_range(range(0)).await {
        Err(SourceError::Malformed { .. }) => {}
        other => panic!("expected the malformed answer back, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn live_requests_get_through_while_backfill_holds_every_permit_it_may() {
    let slow = Scripted::new("http://slow", Duration::from_secs(10), &[], Step::Serve);
    let pool = pool(
        &[&slow],
        PoolSettings {
            concurrency: ConcurrencySettings {
                initial: 4,
                min: 2,
                max: 4,
                decrease_cooldown: Duration::from_secs(1),
            },
            ..settings()
        },
    );
    pool.probe_idle(Duration::ZERO).await;
    assert_eq!(
        state_of(&pool, "http://slow").identity,
        IdentityState::Verified
    );
    let backfill = pool.with_priority(RequestPriority::Backfill);
    let live = pool.with_priority(RequestPriority::Live);
    let mut held = Vec::new();
    for i in 0..6 {
        let source = backfill.clone();
        held.push(tokio::spawn(async move {
            source.fetch_range(range(i * 10)).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(1)).await;
    let snapshot = state_of(&pool, "http://slow");
    assert_eq!(snapshot.in_flight, 3, "backfill leaves one of four to live");
    let started = Instant::now();
    live.fetch_range(range(1_000)).await.expect("live served");
    assert!(
        started.elapsed() <= Duration::from_secs(10) + Duration::from_millis(10),
        "live did not queue behind backfill: {:?}",
        started.elapsed()
    );
    for task in held {
        task.await.expect("joined").expect("backfill served");
    }
}

#[tokio::test]
async fn the_token_bucket_holds_an_endpoint_to_its_requests_per_second() {
    let fast = Scripted::new("http://fast", Duration::ZERO, &[], Step::Serve);
    let clients = vec![(
        Arc::clone(&fast) as Arc<dyn EndpointClient>,
        EndpointConfig {
            url: fast.url.clone(),
            rps: Some(50),
            max_concurrency: None,
        },
    )];
    let pool =
        EndpointPool::with_clients("test", clients, its_identity(), settings()).expect("pool");
    let started = std::time::Instant::now();
    // 40 fetches of 2 requests each and the identity check's 2: 82 tokens from a bucket of 50
    // refilled at 50/s.
    for i in 0..40 {
        pool.fetch_range(range(i * 10)).await.expect("served");
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(550),
        "82 requests at 50/s with a burst of 50 take at least 0.6 s, took {elapsed:?}"
    );
    let snapshot = state_of(&pool, "http://fast");
    assert_eq!(snapshot.rps_limit, Some(50));
    assert_eq!(snapshot.requests, 82);
}

#[tokio::test(start_paused = true)]
async fn an_unchecked_first_parent_is_checked_against_another_endpoint() {
    let liar = Scripted::new("http://liar", Duration::ZERO, &[], Step::UncheckedBadParent);
    let honest = Scripted::new("http://honest", Duration::from_millis(5), &[], Step::Serve);
    let both = pool(&[&liar, &honest], settings());
    for i in 1..20 {
        let bundle = both.fetch_range(range(i * 10)).await.expect("served");
        let below = format!("{:#x}", honest.chain().block_hash(i * 10 - 1));
        assert_eq!(bundle.blocks[0].parent_hash, below, "range {}", i * 10);
    }
    let snapshot = state_of(&both, "http://liar");
    assert!(
        snapshot.errors.get("malformed").copied().unwrap_or(0) >= 1,
        "{snapshot:?}"
    );
    // Alone, nobody can contradict it: the write's neighbour check is what is left.
    let alone = pool(&[&liar], settings());
    let bundle = alone
        .fetch_range(range(10))
        .await
        .expect("served unchecked");
    assert!(!bundle.first_parent_verified);
}

/// A lone endpoint whose breaker opened and is now half-open, with `script` next.
async fn half_open_lone_endpoint(script: &[Step]) -> (Arc<Scripted>, Arc<EndpointPool>) {
    let lone = Scripted::new(
        "http://lone",
        Duration::ZERO,
        &[Step::Refuse, Step::Refuse, Step::Refuse],
        Step::Serve,
    );
    let pool = pool(
        &[&lone],
        PoolSettings {
            tries_per_endpoint: 3,
            max_wait: Duration::from_secs(1),
            ..settings()
        },
    );
    pool.fetch_range(range(0))
        .await
        .expect_err("three refusals in a row");
    assert_eq!(state_of(&pool, "http://lone").breaker, BreakerState::Open);
    lone.script
        .lock()
        .expect("script")
        .extend(script.iter().copied());
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(
        state_of(&pool, "http://lone").breaker,
        BreakerState::HalfOpen
    );
    (lone, pool)
}

#[tokio::test(start_paused = true)]
async fn a_half_open_probe_whose_request_is_dropped_is_given_back() {
    let (lone, pool) = half_open_lone_endpoint(&[Step::Stall]).await;
    // The probe's request is cut off mid-flight (a timeout around it, a cancelled batch).
    let dropped = tokio::time::timeout(Duration::from_secs(1), pool.fetch_range(range(10))).await;
    assert!(dropped.is_err(), "the stalled probe timed out: {dropped:?}");
    assert_eq!(lone.calls(), 4, "the probe was sent");

    // The endpoint is healthy: the next request is the new probe, and it closes the breaker.
    pool.fetch_range(range(10))
        .await
        .expect("a dropped probe does not lock the endpoint out");
    assert_eq!(state_of(&pool, "http://lone").breaker, BreakerState::Closed);
    for i in 2..10 {
        pool.fetch_range(range(i * 10)).await.expect("served");
    }
}

#[tokio::test(start_paused = true)]
async fn a_health_probe_that_is_dropped_gives_its_claim_back() {
    let (_lone, pool) = half_open_lone_endpoint(&[Step::Stall]).await;
    // A health round cut off by shutdown (or a timeout) while its probe is out.
    let dropped =
        tokio::time::timeout(Duration::from_secs(1), pool.probe_idle(Duration::ZERO)).await;
    assert!(dropped.is_err(), "the stalled probe timed out");
    pool.probe_idle(Duration::ZERO).await;
    assert_eq!(
        state_of(&pool, "http://lone").breaker,
        BreakerState::Closed,
        "the next health probe went out and closed the breaker"
    );
    pool.fetch_range(range(0)).await.expect("served");
}

mod chain;
/// The hashes of `range` on `chain`.
mod identity;

#[tokio::test(start_paused = true)]
async fn timeouts_from_an_overloaded_lone_endpoint_lower_its_concurrency_without_opening_its_breaker()
 {
    // A slow node given too much at once: every request of the first wave times out; once
    // fewer are in flight, it answers. It is overloaded, not down.
    let slow = Scripted::new("http://slow", Duration::from_millis(50), &[], Step::Serve);
    let lone = pool(
        &[&slow],
        PoolSettings {
            tries_per_endpoint: 3,
            ..settings()
        },
    );
    lone.fetch_range(range(0))
        .await
        .expect("checked and served");
    let initial = state_of(&lone, "http://slow").concurrency_limit;
    slow.script
        .lock()
        .expect("script")
        .extend([Step::TimeOut; 12]);
    let wave = futures::future::join_all((0..12).map(|i| {
        let lone = Arc::clone(&lone);
        async move { lone.fetch_range(range(100 + i * 10)).await }
    }))
    .await;
    let state = state_of(&lone, "http://slow");
    assert!(
        state.transitions.is_empty(),
        "the breaker never opened: {:?}",
        state.transitions
    );
    assert_eq!(state.breaker, BreakerState::Closed);
    assert!(
        state.concurrency_limit < initial,
        "the concurrency limit came down from {initial}: {}",
        state.concurrency_limit
    );
    assert!(
        wave.iter().all(Result::is_ok),
        "every request of the wave was served on a retry: {:?}",
        wave.iter()
            .filter_map(|r| r.as_ref().err())
            .collect::<Vec<_>>()
    );
}
