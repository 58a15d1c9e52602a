//! A fault-injecting HTTP proxy in front of a JSON-RPC node (Anvil, the devnet, ...), to test
//! RPC resilience (endpoint pools, 429 handling, circuit breakers, timeouts) against a real
//! node, plus [`dead_endpoint`], a URL where nothing listens.
//!
//! [`FaultProxy::start`] binds a free port of 127.0.0.1 and forwards every `POST /` body as-is
//! to the upstream URL, answering with the upstream's status, `Content-Type`, `Retry-After` and
//! body (HTTP 502 when the upstream cannot be reached). The
//! [fault layer](blockfill_devnet::faults) sits in front: change the faults of a running
//! proxy with `proxy.injector.set(profile)` and read what it injected with
//! `proxy.injector.injected()`. [`FaultProxy::set_upstream`] re-points a running proxy (a
//! provider URL that starts serving another node). The proxy stops when the handle is dropped.

use std::{
    net::SocketAddr,
    sync::{Arc, PoisonError, RwLock},
};

use anyhow::{Context, Result};
use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use blockfill_devnet::faults::{FaultInjector, FaultLayer, FaultProfile};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A running fault proxy; stops when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// The bound address.
    pub addr: SocketAddr,
    /// The proxy's faults and counters (shared with the running server).
    pub injector: FaultInjector,
    upstream: Arc<RwLock<String>>,
    shutdown: CancellationToken,
}

/// Where and how the proxy forwards.
#[derive(Clone)]
struct Upstream {
    url: Arc<RwLock<String>>,
    client: reqwest::Client,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (a URL such as [`Anvil::url`](crate::anvil::Anvil::url))
    /// with the faults of `profile`, which must be valid.
    pub async fn start(upstream: &str, profile: FaultProfile) -> Result<FaultProxy> {
        let injector = FaultInjector::new(profile).context("invalid fault profile")?;
        let shutdown = CancellationToken::new();
        let url = Arc::new(RwLock::new(upstream.to_owned()));
        let state = Upstream {
            url: Arc::clone(&url),
            client: reqwest::Client::new(),
        };
        let router = Router::new()
            .route("/", post(forward))
            .layer(DefaultBodyLimit::disable())
            .layer(FaultLayer::new(injector.clone()).release_on(shutdown.clone()))
            .with_state(state);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the fault proxy to 127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "fault proxy stopped");
            }
        });
        Ok(FaultProxy {
            url: format!("http://{addr}"),
            addr,
            injector,
            upstream: url,
            shutdown,
        })
    }

    /// The upstream URL requests are forwarded to now.
    pub fn upstream(&self) -> String {
        self.upstream
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Forwards every request from now on to `upstream` (requests in flight finish where they
    /// went): the proxy's URL now serves another node.
    pub fn set_upstream(&self, upstream: &str) {
        *self
            .upstream
            .write()
            .unwrap_or_else(PoisonError::into_inner) = upstream.to_owned();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Forwards one request body to the upstream and hands back its answer.
async fn forward(State(upstream): State<Upstream>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("application/json"));
    let url = upstream
        .url
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let sent = upstream
        .client
        .post(&url)
        .header(header::CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await;
    let answer = match sent {
        Ok(answer) => answer,
        Err(e) => return bad_gateway(&url, &e),
    };
    let status = answer.status();
    let mut kept = HeaderMap::new();
    for name in [header::CONTENT_TYPE, header::RETRY_AFTER] {
        if let Some(value) = answer.headers().get(&name) {
            kept.insert(name, value.clone());
        }
    }
    match answer.bytes().await {
        Ok(body) => (status, kept, body).into_response(),
        Err(e) => bad_gateway(&url, &e),
    }
}

fn bad_gateway(url: &str, error: &reqwest::Error) -> Response {
    (
        StatusCode::BAD_GATEWAY,
        format!("fault proxy: upstream {url} failed: {error}"),
    )
        .into_response()
}

/// `http://127.0.0.1:{port}` of a port that was just bound and released, so connections to it
/// are refused (unless something else binds the port meanwhile, which is unlikely).
///
/// # Panics
/// If no port of 127.0.0.1 can be bound.
pub async fn dead_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding a free port of 127.0.0.1");
    let port = listener
        .local_addr()
        .expect("the address of a bound listener")
        .port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}
