//! The tower side of the fault layer: [`FaultLayer`] and its [`FaultService`], and the
//! per-request decision (hang, delay, 503, 429, batch rejection, pass with or without damage).

use std::{
    sync::atomic::Ordering,
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
use tokio_util::sync::CancellationToken;
use tower::{Layer, Service};

use super::{
    BATCH_REJECTION, BODY_LIMIT, ERROR_BODY, FaultInjector, HANG_LIMIT, RATE_LIMIT_BODY,
    RELEASED_BODY,
    malform::{Malformation, malform},
};

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

/// Whether a request body is a JSON array (a JSON-RPC batch): its first non-whitespace byte is `[`.
pub(super) fn is_batch(body: &Bytes) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[')
}
