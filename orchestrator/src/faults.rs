//! Fault injection for JSON-RPC endpoints, to test how clients cope with bad nodes: endpoint
//! pools, 429 handling, circuit breakers, timeouts.
//!
//! A [`FaultProfile`] says what goes wrong (latency, jitter, HTTP 503s, HTTP 429s with
//! `Retry-After`, requests that never get an answer, refused JSON-RPC batches, corrupted
//! answers). A
//! [`FaultInjector`] holds the current profile (changeable at runtime) and counts what it
//! injected; a [`FaultLayer`] applies it in front of any axum [`Router`](axum::Router) or tower
//! service:
//!
//! ```no_run
//! # use blockfill_orchestrator::faults::{FaultInjector, FaultProfile, fault_layer};
//! # let node = axum::Router::new();
//! let injector = FaultInjector::new(FaultProfile {
//!     rate_limit_rate: 0.2,
//!     ..FaultProfile::default()
//! })?;
//! let flaky_node: axum::Router = node.layer(fault_layer(injector.clone()));
//! // Later: every request fails.
//! injector.set(FaultProfile { error_rate: 1.0, ..FaultProfile::default() })?;
//! # Ok::<(), blockfill_orchestrator::faults::FaultProfileError>(())
//! ```
//!
//! Per request, in this order: `hang` (never answer) → sleep `latency` plus up to `jitter` →
//! one uniform draw `u` in `[0, 1)`: `u < error_rate` answers 503, `u < error_rate +
//! rate_limit_rate` answers 429 → with `reject_batches`, a body that is a JSON array gets
//! [`BATCH_REJECTION`] → otherwise the inner service answers → if a second, independent
//! uniform draw is below `malform_rate` and that answer is an HTTP 200, its body is corrupted
//! (see [`FaultProfile::malform_rate`]).

use std::{
    fmt,
    sync::{
        Arc, PoisonError, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures::future::BoxFuture;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;
use tower::{Layer, Service};

/// The body of the HTTP 200 answer to a JSON-RPC batch when [`FaultProfile::reject_batches`] is
/// set: one JSON-RPC error object (code -32600, invalid request), as some providers answer.
pub const BATCH_REJECTION: &str = r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"batch requests are not supported"}}"#;

/// The body of a corrupted answer of the `unparsable` kind (see [`FaultProfile::malform_rate`]):
/// JSON cut short.
pub const TRUNCATED_ANSWER: &str = r#"{"jsonrpc":"2.0","result":"#;

/// Body of the injected HTTP 503 answers.
const ERROR_BODY: &str = "service unavailable (injected fault)";
/// Body of the injected HTTP 429 answers.
const RATE_LIMIT_BODY: &str = "too many requests (injected fault)";
/// Body of the HTTP 503 a hung request gets when it is released (server shutting down).
const RELEASED_BODY: &str = "hung request released: server shutting down (injected fault)";
/// Largest request body buffered to look for a batch; larger ones get HTTP 413.
const BODY_LIMIT: usize = 256 * 1024 * 1024;
/// How long a hung request waits at most when nothing releases it.
const HANG_LIMIT: Duration = Duration::from_secs(24 * 60 * 60);

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

/// The current [`FaultProfile`] of one or more endpoints and the counts of what was injected.
/// Cheap to clone: clones share the profile and the counters, so a test keeps one and changes
/// the profile of a running server with [`FaultInjector::set`].
#[derive(Clone, Debug, Default)]
pub struct FaultInjector {
    inner: Arc<InjectorState>,
}

#[derive(Debug, Default)]
struct InjectorState {
    profile: RwLock<FaultProfile>,
    requests: AtomicU64,
    errors: AtomicU64,
    rate_limited: AtomicU64,
    batches_rejected: AtomicU64,
    hung: AtomicU64,
    malformed: AtomicU64,
}

impl FaultInjector {
    /// An injector starting with `profile`, if it is valid.
    pub fn new(profile: FaultProfile) -> Result<Self, FaultProfileError> {
        let injector = FaultInjector::default();
        injector.set(profile)?;
        Ok(injector)
    }

    /// Replaces the profile; requests that arrive afterwards use the new one. An invalid
    /// profile is refused and the current one kept.
    pub fn set(&self, profile: FaultProfile) -> Result<(), FaultProfileError> {
        profile.validate()?;
        *self
            .inner
            .profile
            .write()
            .unwrap_or_else(PoisonError::into_inner) = profile;
        Ok(())
    }

    /// The current profile.
    pub fn profile(&self) -> FaultProfile {
        self.inner
            .profile
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// What was injected so far (over all profiles and every server sharing this injector).
    pub fn injected(&self) -> FaultCounts {
        let s = &self.inner;
        FaultCounts {
            requests: s.requests.load(Ordering::Relaxed),
            errors: s.errors.load(Ordering::Relaxed),
            rate_limited: s.rate_limited.load(Ordering::Relaxed),
            batches_rejected: s.batches_rejected.load(Ordering::Relaxed),
            hung: s.hung.load(Ordering::Relaxed),
            malformed: s.malformed.load(Ordering::Relaxed),
        }
    }
}

/// The fault layer of `injector`, for [`Router::layer`](axum::Router::layer) or a tower stack.
/// Hung requests wait (almost) forever; see [`FaultLayer::release_on`].
pub fn fault_layer(injector: FaultInjector) -> FaultLayer {
    FaultLayer::new(injector)
}

/// A tower [`Layer`] that applies a [`FaultInjector`]'s profile before the inner service.
#[derive(Clone, Debug)]
pub struct FaultLayer {
    injector: FaultInjector,
    release: CancellationToken,
}

impl FaultLayer {
    /// The fault layer of `injector` (same as [`fault_layer`]).
    pub fn new(injector: FaultInjector) -> Self {
        FaultLayer {
            injector,
            release: CancellationToken::new(),
        }
    }

    /// Releases hung requests when `shutdown` is cancelled (they get HTTP 503), so that a
    /// graceful shutdown, which waits for in-flight requests, completes.
    pub fn release_on(mut self, shutdown: CancellationToken) -> Self {
        self.release = shutdown;
        self
    }
}

impl<S> Layer<S> for FaultLayer {
    type Service = FaultService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        FaultService {
            inner,
            injector: self.injector.clone(),
            release: self.release.clone(),
        }
    }
}

/// The service of a [`FaultLayer`]: faults first, then `S`.
#[derive(Clone, Debug)]
pub struct FaultService<S> {
    inner: S,
    injector: FaultInjector,
    release: CancellationToken,
}

impl<S> Service<Request> for FaultService<S>
where
    S: Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The clone is not ready; keep it and use the one that was polled ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let injector = self.injector.clone();
        let release = self.release.clone();
        Box::pin(async move {
            match inject(&injector, &release, request).await {
                Injected::Answer(response) => Ok(response),
                Injected::Pass {
                    request,
                    malform: None,
                } => inner.call(request).await,
                Injected::Pass {
                    request,
                    malform: Some(choice),
                } => {
                    let response = inner.call(request).await?;
                    Ok(malform(&injector, response, choice).await)
                }
            }
        })
    }
}

/// The outcome of the fault layer for one request.
enum Injected {
    /// Answer this instead of the inner service.
    Answer(Response),
    /// Hand (the possibly rebuilt) request to the inner service.
    Pass {
        /// The request.
        request: Request,
        /// Corrupt the answer, with this uniform draw in `0..4` picking the damage.
        malform: Option<usize>,
    },
}

/// Applies the current profile of `injector` to `request`.
async fn inject(
    injector: &FaultInjector,
    release: &CancellationToken,
    request: Request,
) -> Injected {
    let profile = injector.profile();
    let counts = &injector.inner;
    counts.requests.fetch_add(1, Ordering::Relaxed);

    if profile.hang {
        counts.hung.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(target: "blockfill::faults", "hanging a request");
        tokio::select! {
            () = release.cancelled() => {}
            () = tokio::time::sleep(HANG_LIMIT) => {}
        }
        return Injected::Answer((StatusCode::SERVICE_UNAVAILABLE, RELEASED_BODY).into_response());
    }

    // `rand::rng()` is not `Send`: draw everything before the first await.
    let (delay, draw, malform) = {
        let mut rng = rand::rng();
        let extra = if profile.jitter.is_zero() {
            Duration::ZERO
        } else {
            rng.random_range(Duration::ZERO..profile.jitter)
        };
        let draw = rng.random::<f64>();
        let malform = (rng.random::<f64>() < profile.malform_rate)
            .then(|| rng.random_range(0..Malformation::BLOCK.len()));
        (profile.latency + extra, draw, malform)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    if draw < profile.error_rate {
        counts.errors.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(target: "blockfill::faults", "injecting HTTP 503");
        return Injected::Answer((StatusCode::SERVICE_UNAVAILABLE, ERROR_BODY).into_response());
    }
    if draw < profile.error_rate + profile.rate_limit_rate {
        counts.rate_limited.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(target: "blockfill::faults", "injecting HTTP 429");
        return Injected::Answer(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(
                    header::RETRY_AFTER,
                    HeaderValue::from(profile.retry_after_secs),
                )],
                RATE_LIMIT_BODY,
            )
                .into_response(),
        );
    }
    if !profile.reject_batches {
        return Injected::Pass { request, malform };
    }

    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(bytes) => bytes,
        Err(e) => {
            return Injected::Answer(
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("could not read the request body: {e}"),
                )
                    .into_response(),
            );
        }
    };
    if is_batch(&bytes) {
        counts.batches_rejected.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(target: "blockfill::faults", "rejecting a JSON-RPC batch");
        return Injected::Answer(
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                BATCH_REJECTION,
            )
                .into_response(),
        );
    }
    Injected::Pass {
        request: Request::from_parts(parts, Body::from(bytes)),
        malform,
    }
}

/// Corrupts the body of `response` if it is an HTTP 200 (see [`FaultProfile::malform_rate`]);
/// `choice`, uniform in `0..4`, picks the damage.
async fn malform(injector: &FaultInjector, response: Response, choice: usize) -> Response {
    if response.status() != StatusCode::OK {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // An answer that cannot be read counts as one that cannot be parsed.
    let bytes = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .unwrap_or_default();
    let (corrupted, kind) = corrupt(&bytes, choice);
    injector.inner.malformed.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(target: "blockfill::faults", kind = kind.name(), "corrupting an answer");
    parts.headers.remove(header::TRANSFER_ENCODING);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(corrupted.len()));
    Response::from_parts(parts, Body::from(corrupted))
}

/// The kinds of damage done to an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Malformation {
    /// A block's `number` (or a log's `blockNumber`) plus one.
    WrongNumber,
    /// A block without `hash`.
    MissingHash,
    /// A block whose `parentHash` has another last hex digit.
    BrokenParent,
    /// The body replaced by [`TRUNCATED_ANSWER`].
    Unparsable,
}

impl Malformation {
    /// The choices for an answer with a block.
    const BLOCK: [Malformation; 4] = [
        Malformation::WrongNumber,
        Malformation::MissingHash,
        Malformation::BrokenParent,
        Malformation::Unparsable,
    ];
    /// The choices for an answer with logs (and no block).
    const LOGS: [Malformation; 2] = [Malformation::WrongNumber, Malformation::Unparsable];

    fn name(self) -> &'static str {
        match self {
            Malformation::WrongNumber => "wrong_number",
            Malformation::MissingHash => "missing_hash",
            Malformation::BrokenParent => "broken_parent",
            Malformation::Unparsable => "unparsable",
        }
    }
}

/// The JSON-RPC answer `body` with one thing broken, and what; `choice` (uniform in `0..4`)
/// picks the damage.
fn corrupt(body: &[u8], choice: usize) -> (Bytes, Malformation) {
    if let Ok(mut answer) = serde_json::from_slice::<Value>(body)
        && let Some(kind) = damage(&mut answer, choice)
    {
        return (Bytes::from(answer.to_string()), kind);
    }
    (
        Bytes::from_static(TRUNCATED_ANSWER.as_bytes()),
        Malformation::Unparsable,
    )
}

/// Breaks the first block (or else the first logs) in the JSON-RPC `answer` (a response or a
/// batch of them) in the way `choice` picks; `None` when that is [`Malformation::Unparsable`]
/// or there is nothing to break that way.
fn damage(answer: &mut Value, choice: usize) -> Option<Malformation> {
    let responses = match answer {
        Value::Array(responses) => responses.as_mut_slice(),
        single => std::slice::from_mut(single),
    };
    let block = responses.iter().position(|response| {
        response
            .get("result")
            .and_then(Value::as_object)
            .is_some_and(|result| result.contains_key("number"))
    });
    if let Some(i) = block {
        let block = responses[i].get_mut("result")?.as_object_mut()?;
        let kind = Malformation::BLOCK[choice % Malformation::BLOCK.len()];
        return corrupt_block(block, kind).then_some(kind);
    }
    let logs = responses
        .iter_mut()
        .find_map(|response| response.get_mut("result")?.as_array_mut())?;
    match Malformation::LOGS[choice % Malformation::LOGS.len()] {
        Malformation::WrongNumber => {
            let log = logs.first_mut()?.as_object_mut()?;
            bump_quantity(log.get_mut("blockNumber")?).then_some(Malformation::WrongNumber)
        }
        _ => None,
    }
}

/// Breaks `block` in the way `kind` says; whether it could.
fn corrupt_block(block: &mut Map<String, Value>, kind: Malformation) -> bool {
    match kind {
        Malformation::WrongNumber => block.get_mut("number").is_some_and(bump_quantity),
        Malformation::MissingHash => block.remove("hash").is_some(),
        Malformation::BrokenParent => {
            block.get_mut("parentHash").is_some_and(|parent| {
                match parent.as_str().and_then(flip_last_hex_digit) {
                    Some(flipped) => {
                        *parent = Value::String(flipped);
                        true
                    }
                    None => false,
                }
            })
        }
        Malformation::Unparsable => false,
    }
}

/// Adds one to a hex quantity (`"0x1f"` becomes `"0x20"`); whether `value` was one.
fn bump_quantity(value: &mut Value) -> bool {
    let next = value
        .as_str()
        .and_then(|hex| hex.strip_prefix("0x"))
        .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_hexdigit()))
        .and_then(|digits| u128::from_str_radix(digits, 16).ok())
        .and_then(|n| n.checked_add(1));
    match next {
        Some(next) => {
            *value = Value::String(format!("0x{next:x}"));
            true
        }
        None => false,
    }
}

/// `hex` (`0x` and hex digits) with its last digit changed to the next one (`a` to `b`, `f` to
/// `0`), or `None` if it is not hex.
fn flip_last_hex_digit(hex: &str) -> Option<String> {
    let digits = hex.strip_prefix("0x")?;
    let last = digits.chars().last()?;
    let value = last.to_digit(16)?;
    let mut flipped = std::char::from_digit((value + 1) % 16, 16)?;
    if last.is_ascii_uppercase() {
        flipped = flipped.to_ascii_uppercase();
    }
    let mut out = hex[..hex.len() - 1].to_owned();
    out.push(flipped);
    Some(out)
}

/// Whether a request body is a JSON array (a JSON-RPC batch): its first non-whitespace byte is `[`.
fn is_batch(body: &Bytes) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::{Router, routing::post};
    use tower::ServiceExt;

    /// An echo router behind the fault layer of `injector`.
    fn app(injector: &FaultInjector) -> Router {
        Router::new()
            .route("/", post(|body: Bytes| async move { body }))
            .layer(fault_layer(injector.clone()))
    }

    fn injector(profile: FaultProfile) -> FaultInjector {
        FaultInjector::new(profile).unwrap()
    }

    async fn call(
        router: Router,
        body: &'static str,
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        let request = Request::post("/")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap();
        let response = router.oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, headers, String::from_utf8(body.to_vec()).unwrap())
    }

    const SINGLE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}"#;
    const BATCH: &str = r#"  [{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}]"#;

    #[tokio::test]
    async fn no_faults_pass_requests_through() {
        let injector = FaultInjector::default();
        let (status, _, body) = call(app(&injector), SINGLE).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, SINGLE);
        assert_eq!(
            injector.injected(),
            FaultCounts {
                requests: 1,
                ..FaultCounts::default()
            }
        );
    }

    #[tokio::test]
    async fn rate_limited_answers_carry_retry_after() {
        let injector = injector(FaultProfile {
            rate_limit_rate: 1.0,
            retry_after_secs: 7,
            ..FaultProfile::default()
        });
        let (status, headers, body) = call(app(&injector), SINGLE).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers[header::RETRY_AFTER], "7");
        assert_eq!(body, RATE_LIMIT_BODY);
        assert_eq!(injector.injected().rate_limited, 1);
    }

    #[tokio::test]
    async fn error_rate_one_answers_503() {
        let injector = injector(FaultProfile {
            error_rate: 1.0,
            ..FaultProfile::default()
        });
        for _ in 0..3 {
            let (status, _, body) = call(app(&injector), SINGLE).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(body, ERROR_BODY);
        }
        let counts = injector.injected();
        assert_eq!((counts.requests, counts.errors), (3, 3));
    }

    #[tokio::test]
    async fn rates_split_requests_between_503_and_429() {
        let injector = injector(FaultProfile {
            error_rate: 0.5,
            rate_limit_rate: 0.5,
            ..FaultProfile::default()
        });
        for _ in 0..50 {
            let (status, _, _) = call(app(&injector), SINGLE).await;
            assert!(
                status == StatusCode::SERVICE_UNAVAILABLE
                    || status == StatusCode::TOO_MANY_REQUESTS,
                "{status}"
            );
        }
        let counts = injector.injected();
        assert_eq!(counts.errors + counts.rate_limited, 50);
    }

    #[tokio::test]
    async fn reject_batches_rejects_arrays_and_passes_objects() {
        let injector = injector(FaultProfile {
            reject_batches: true,
            ..FaultProfile::default()
        });
        let (status, headers, body) = call(app(&injector), BATCH).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(body, BATCH_REJECTION);
        let rejection: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(rejection["error"]["code"], -32600);

        let (status, _, body) = call(app(&injector), SINGLE).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body, SINGLE,
            "the single request reaches the inner handler unchanged"
        );
        assert_eq!(injector.injected().batches_rejected, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn latency_and_jitter_delay_the_answer() {
        let injector = injector(FaultProfile {
            latency: Duration::from_millis(250),
            jitter: Duration::from_millis(100),
            ..FaultProfile::default()
        });
        for _ in 0..5 {
            let started = tokio::time::Instant::now();
            let (status, _, _) = call(app(&injector), SINGLE).await;
            let elapsed = started.elapsed();
            assert_eq!(status, StatusCode::OK);
            assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
            // The timer has millisecond resolution and rounds up: 349.2ms sleeps 350ms.
            assert!(elapsed <= Duration::from_millis(350), "{elapsed:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn latency_also_delays_injected_errors() {
        let injector = injector(FaultProfile {
            latency: Duration::from_secs(2),
            error_rate: 1.0,
            ..FaultProfile::default()
        });
        let started = tokio::time::Instant::now();
        let (status, _, _) = call(app(&injector), SINGLE).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(started.elapsed() >= Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn hung_requests_get_no_answer() {
        let injector = injector(FaultProfile {
            hang: true,
            ..FaultProfile::default()
        });
        let answered =
            tokio::time::timeout(Duration::from_secs(3600), call(app(&injector), SINGLE)).await;
        assert!(answered.is_err(), "a hung request was answered");
        assert_eq!(injector.injected().hung, 1);
    }

    #[tokio::test]
    async fn hung_requests_are_released_on_shutdown() {
        let injector = injector(FaultProfile {
            hang: true,
            ..FaultProfile::default()
        });
        let shutdown = CancellationToken::new();
        let router = Router::new()
            .route("/", post(|body: Bytes| async move { body }))
            .layer(fault_layer(injector.clone()).release_on(shutdown.clone()));
        let pending = tokio::spawn(call(router, SINGLE));
        while injector.injected().hung == 0 {
            tokio::task::yield_now().await;
        }
        shutdown.cancel();
        let (status, _, _) = pending.await.unwrap();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn set_changes_the_profile_of_a_running_router() {
        let injector = FaultInjector::default();
        let router = app(&injector);
        assert_eq!(call(router.clone(), SINGLE).await.0, StatusCode::OK);
        injector
            .set(FaultProfile {
                error_rate: 1.0,
                ..FaultProfile::default()
            })
            .unwrap();
        assert_eq!(injector.profile().error_rate, 1.0);
        assert_eq!(
            call(router.clone(), SINGLE).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        injector.set(FaultProfile::default()).unwrap();
        assert_eq!(call(router, SINGLE).await.0, StatusCode::OK);
        let counts = injector.injected();
        assert_eq!((counts.requests, counts.errors), (3, 1));
    }

    #[test]
    fn validate_rejects_bad_rates() {
        let bad = [
            (1.5, 0.0),
            (-0.1, 0.0),
            (0.0, 2.0),
            (f64::NAN, 0.0),
            (0.6, 0.5),
        ];
        for (error_rate, rate_limit_rate) in bad {
            let profile = FaultProfile {
                error_rate,
                rate_limit_rate,
                ..FaultProfile::default()
            };
            assert!(profile.validate().is_err(), "{profile:?} passed");
            assert!(FaultInjector::new(profile).is_err());
        }
        let err = FaultProfile {
            error_rate: 1.5,
            ..FaultProfile::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "error_rate must be a fraction between 0 and 1, got 1.5"
        );
        for (error_rate, rate_limit_rate) in [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (0.7, 0.3)] {
            FaultProfile {
                error_rate,
                rate_limit_rate,
                ..FaultProfile::default()
            }
            .validate()
            .unwrap();
        }
    }

    #[test]
    fn set_refuses_an_invalid_profile_and_keeps_the_current_one() {
        let injector = injector(FaultProfile {
            error_rate: 0.5,
            ..FaultProfile::default()
        });
        let refused = injector.set(FaultProfile {
            error_rate: 0.9,
            rate_limit_rate: 0.9,
            ..FaultProfile::default()
        });
        assert!(matches!(
            refused,
            Err(FaultProfileError::RatesAboveOne { .. })
        ));
        assert_eq!(injector.profile().error_rate, 0.5);
    }

    #[test]
    fn profile_reads_humantime_durations_and_fills_defaults() {
        let profile: FaultProfile = serde_json::from_str(
            r#"{"latency": "100ms", "jitter": "1s 500ms", "rate_limit_rate": 0.25}"#,
        )
        .unwrap();
        assert_eq!(
            profile,
            FaultProfile {
                latency: Duration::from_millis(100),
                jitter: Duration::from_millis(1500),
                rate_limit_rate: 0.25,
                ..FaultProfile::default()
            }
        );
        assert_eq!(profile.retry_after_secs, 1);
        let empty: FaultProfile = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, FaultProfile::default());
        assert!(!empty.injects_anything());
        assert_eq!(empty.to_string(), "none");
        let busy = FaultProfile {
            latency: Duration::from_millis(100),
            error_rate: 0.07,
            rate_limit_rate: 0.125,
            retry_after_secs: 2,
            reject_batches: true,
            malform_rate: 0.1,
            ..FaultProfile::default()
        };
        assert_eq!(
            busy.to_string(),
            "latency 100ms, 7% HTTP 503, 12.5% HTTP 429 (Retry-After 2), batches rejected, \
             10% malformed answers"
        );
        let malformed: FaultProfile = serde_json::from_str(r#"{"malform_rate": 0.25}"#).unwrap();
        assert_eq!(malformed.malform_rate, 0.25);
        assert!(malformed.injects_anything());
        assert!(serde_json::from_str::<FaultProfile>(r#"{"eror_rate": 0.1}"#).is_err());
    }

    /// A hex string of `0x` and 64 digits: `pair` 32 times.
    fn hash(pair: &str) -> String {
        format!("0x{}", pair.repeat(32))
    }

    /// A JSON-RPC batch answer with two blocks, `0x1f` and `0x20`; the parent hash of the
    /// first ends in `f`.
    fn two_blocks() -> Value {
        serde_json::json!([
            {"jsonrpc": "2.0", "id": 1, "result": {
                "number": "0x1f", "hash": hash("1f"), "parentHash": hash("ef"),
                "timestamp": "0x64", "transactions": []
            }},
            {"jsonrpc": "2.0", "id": 2, "result": {
                "number": "0x20", "hash": hash("20"), "parentHash": hash("1f"),
                "timestamp": "0x65", "transactions": []
            }}
        ])
    }

    /// A router answering every request with `answer` (as JSON), behind the fault layer of
    /// `injector`.
    fn answering(injector: &FaultInjector, answer: String) -> Router {
        Router::new()
            .route(
                "/",
                post(move || async move { ([(header::CONTENT_TYPE, "application/json")], answer) }),
            )
            .layer(fault_layer(injector.clone()))
    }

    /// Calls `router` and checks the answer is a 200 whose `Content-Length` matches its body.
    async fn call_checking_length(router: Router) -> String {
        let (status, headers, body) = call(router, BATCH).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_LENGTH], body.len().to_string());
        body
    }

    #[tokio::test]
    async fn malform_rate_one_corrupts_every_answer_in_one_of_four_ways() {
        let injector = injector(FaultProfile {
            malform_rate: 1.0,
            ..FaultProfile::default()
        });
        let original = two_blocks();
        let router = answering(&injector, original.to_string());

        let mut wrong_number = original.clone();
        wrong_number[0]["result"]["number"] = "0x20".into();
        let mut missing_hash = original.clone();
        missing_hash[0]["result"]
            .as_object_mut()
            .unwrap()
            .remove("hash");
        let mut broken_parent = original.clone();
        broken_parent[0]["result"]["parentHash"] = format!("0x{}e0", "ef".repeat(31)).into();
        let kinds = [
            ("wrong_number", wrong_number),
            ("missing_hash", missing_hash),
            ("broken_parent", broken_parent),
        ];

        let mut seen = std::collections::BTreeMap::<&str, u32>::new();
        for _ in 0..200 {
            let body = call_checking_length(router.clone()).await;
            let kind = if body == TRUNCATED_ANSWER {
                assert!(serde_json::from_str::<Value>(&body).is_err());
                "unparsable"
            } else {
                let answer: Value = serde_json::from_str(&body).unwrap();
                assert_ne!(answer, original, "an answer passed unchanged");
                let matching: Vec<&str> = kinds
                    .iter()
                    .filter(|(_, expected)| *expected == answer)
                    .map(|(name, _)| *name)
                    .collect();
                assert_eq!(matching.len(), 1, "not exactly one kind of damage: {body}");
                matching[0]
            };
            *seen.entry(kind).or_default() += 1;
        }
        assert_eq!(
            seen.keys().copied().collect::<Vec<_>>(),
            [
                "broken_parent",
                "missing_hash",
                "unparsable",
                "wrong_number"
            ],
            "{seen:?}"
        );
        let counts = injector.injected();
        assert_eq!((counts.requests, counts.malformed), (200, 200));
        assert!(counts.to_string().ends_with(", 200 malformed"), "{counts}");
    }

    #[tokio::test]
    async fn malform_rate_zero_passes_answers_unchanged() {
        let injector = FaultInjector::default();
        let original = two_blocks().to_string();
        let router = answering(&injector, original.clone());
        for _ in 0..20 {
            assert_eq!(call_checking_length(router.clone()).await, original);
        }
        assert_eq!(injector.injected().malformed, 0);
    }

    #[tokio::test]
    async fn malformed_answers_are_only_those_that_pass() {
        let injector = injector(FaultProfile {
            error_rate: 1.0,
            malform_rate: 1.0,
            ..FaultProfile::default()
        });
        let (status, _, body) = call(answering(&injector, two_blocks().to_string()), BATCH).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, ERROR_BODY);
        let counts = injector.injected();
        assert_eq!((counts.errors, counts.malformed), (1, 0));
    }

    #[tokio::test]
    async fn malformed_answers_keep_non_200_answers() {
        let injector = injector(FaultProfile {
            malform_rate: 1.0,
            ..FaultProfile::default()
        });
        let router = Router::new()
            .route(
                "/",
                post(|| async { (StatusCode::BAD_GATEWAY, "upstream down") }),
            )
            .layer(fault_layer(injector.clone()));
        let (status, _, body) = call(router, SINGLE).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::BAD_GATEWAY, "upstream down")
        );
        assert_eq!(injector.injected().malformed, 0);
    }

    #[test]
    fn malformed_logs_get_a_wrong_block_number_or_are_cut_short() {
        let logs = serde_json::json!({"jsonrpc": "2.0", "id": 7, "result": [
            {"blockNumber": "0xff", "logIndex": "0x0"},
            {"blockNumber": "0xff", "logIndex": "0x1"}
        ]});
        let body = logs.to_string();
        let mut wrong = logs.clone();
        wrong["result"][0]["blockNumber"] = "0x100".into();
        let mut kinds = std::collections::BTreeSet::new();
        for choice in 0..4 {
            let (corrupted, kind) = corrupt(body.as_bytes(), choice);
            match kind {
                Malformation::WrongNumber => {
                    assert_eq!(serde_json::from_slice::<Value>(&corrupted).unwrap(), wrong)
                }
                Malformation::Unparsable => assert_eq!(corrupted, TRUNCATED_ANSWER.as_bytes()),
                other => panic!("{other:?} on logs"),
            }
            kinds.insert(kind.name());
        }
        assert_eq!(
            kinds.into_iter().collect::<Vec<_>>(),
            ["unparsable", "wrong_number"]
        );

        // A block in the batch wins over logs before it.
        let batch = serde_json::json!([
            {"jsonrpc": "2.0", "id": 1, "result": [{"blockNumber": "0x1"}]},
            {"jsonrpc": "2.0", "id": 2, "result": {"number": "0x1", "hash": hash("aa")}}
        ]);
        let (corrupted, kind) = corrupt(batch.to_string().as_bytes(), 0);
        assert_eq!(kind, Malformation::WrongNumber);
        let corrupted: Value = serde_json::from_slice(&corrupted).unwrap();
        assert_eq!(corrupted[0], batch[0]);
        assert_eq!(corrupted[1]["result"]["number"], "0x2");
    }

    #[test]
    fn answers_with_nothing_to_corrupt_are_cut_short() {
        let nothing = [
            "not json".to_owned(),
            String::new(),
            r#"{"jsonrpc":"2.0","id":1,"result":"0x3"}"#.to_owned(),
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"x"}}"#.to_owned(),
            r#"{"jsonrpc":"2.0","id":1,"result":[]}"#.to_owned(),
        ];
        for body in &nothing {
            for choice in 0..4 {
                let (corrupted, kind) = corrupt(body.as_bytes(), choice);
                assert_eq!(kind, Malformation::Unparsable, "{body}");
                assert_eq!(corrupted, TRUNCATED_ANSWER.as_bytes());
            }
        }
        // A block lacking the field to damage is cut short too.
        let no_hash = r#"{"jsonrpc":"2.0","id":1,"result":{"number":"0x1"}}"#;
        assert_eq!(corrupt(no_hash.as_bytes(), 1).1, Malformation::Unparsable);
        assert_eq!(corrupt(no_hash.as_bytes(), 2).1, Malformation::Unparsable);
        assert_eq!(corrupt(no_hash.as_bytes(), 0).1, Malformation::WrongNumber);
    }

    #[test]
    fn hex_helpers_bump_quantities_and_flip_digits() {
        let bumped = |hex: &str| {
            let mut value = Value::from(hex);
            bump_quantity(&mut value).then(|| value.as_str().unwrap().to_owned())
        };
        assert_eq!(bumped("0x1f").as_deref(), Some("0x20"));
        assert_eq!(bumped("0x0").as_deref(), Some("0x1"));
        assert_eq!(bumped("0x"), None);
        assert_eq!(bumped("0x+1"), None);
        assert_eq!(bumped("31"), None);
        assert!(!bump_quantity(&mut Value::Null));
        assert_eq!(flip_last_hex_digit("0xaa").as_deref(), Some("0xab"));
        assert_eq!(flip_last_hex_digit("0x1f").as_deref(), Some("0x10"));
        assert_eq!(flip_last_hex_digit("0x19").as_deref(), Some("0x1a"));
        assert_eq!(flip_last_hex_digit("0xAF").as_deref(), Some("0xA0"));
        assert_eq!(flip_last_hex_digit("0xAE").as_deref(), Some("0xAF"));
        assert_eq!(flip_last_hex_digit("0x"), None);
        assert_eq!(flip_last_hex_digit("0xg"), None);
    }

    #[test]
    fn validate_rejects_bad_malform_rates() {
        for malform_rate in [1.5, -0.1, f64::NAN] {
            let profile = FaultProfile {
                malform_rate,
                ..FaultProfile::default()
            };
            assert!(profile.validate().is_err(), "{profile:?} passed");
            assert!(FaultInjector::new(profile).is_err());
        }
        let err = FaultProfile {
            malform_rate: 1.5,
            ..FaultProfile::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(
            err,
            FaultProfileError::RateOutOfRange {
                name: "malform_rate",
                value: 1.5
            }
        );
        assert_eq!(
            err.to_string(),
            "malform_rate must be a fraction between 0 and 1, got 1.5"
        );
        // Drawn separately: it does not count towards the 503/429 sum.
        FaultProfile {
            error_rate: 0.5,
            rate_limit_rate: 0.5,
            malform_rate: 1.0,
            ..FaultProfile::default()
        }
        .validate()
        .unwrap();
    }

    #[test]
    fn batches_are_recognised_after_whitespace() {
        assert!(is_batch(&Bytes::from_static(b" \n\t[{}]")));
        assert!(!is_batch(&Bytes::from_static(b"{\"a\": [1]}")));
        assert!(!is_batch(&Bytes::new()));
    }
}
