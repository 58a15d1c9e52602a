//! Serves a [`DevnetChain`] over JSON-RPC on loopback, so the demo, the benchmark and tests drive
//! the same client code as against a real node; optionally on several endpoints and behind a
//! [`FaultLayer`] (see [`crate::faults`]) to exercise RPC resilience. [`run`] is `blockfill
//! devnet`.

use std::{io, net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::header,
    response::{IntoResponse as _, Response},
    routing::post,
};
use clap::Args;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    DevnetChain, DevnetConfig,
    faults::{FaultInjector, FaultLayer, FaultProfile, FaultProfileError},
};

/// The devnet's JSON-RPC router: `POST /`, and `POST` on any path, as providers serve a key
/// in the path (`/v2/KEY`).
pub fn devnet_router(chain: Arc<DevnetChain>) -> Router {
    Router::new()
        .route("/", post(rpc))
        .route("/{*path}", post(rpc))
        .with_state(chain)
}

async fn rpc(State(chain): State<Arc<DevnetChain>>, body: Bytes) -> Response {
    match serde_json::from_slice::<Value>(&body) {
        Ok(request) => (
            [(header::CONTENT_TYPE, "application/json")],
            chain.handle_rpc_bytes(&request),
        )
            .into_response(),
        Err(e) => Json(
            json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": format!("parse error: {e}")}}),
        )
        .into_response(),
    }
}

/// Binds `addr` (port 0 for any) and serves the devnet until `shutdown`; returns the bound address.
pub async fn spawn_devnet(
    chain: Arc<DevnetChain>,
    addr: SocketAddr,
    shutdown: CancellationToken,
) -> io::Result<SocketAddr> {
    serve(devnet_router(chain), addr, shutdown).await
}

/// Like [`spawn_devnet`], with the faults of `injector` applied to every request (change them
/// at runtime with [`FaultInjector::set`]). Hung requests are released at `shutdown`.
pub async fn spawn_devnet_with_faults(
    chain: Arc<DevnetChain>,
    addr: SocketAddr,
    injector: FaultInjector,
    shutdown: CancellationToken,
) -> io::Result<SocketAddr> {
    let router = devnet_router(chain).layer(FaultLayer::new(injector).release_on(shutdown.clone()));
    serve(router, addr, shutdown).await
}

/// Serves the same chain on `count` endpoints, all behind the faults of `injector` (one shared
/// profile and counters): on consecutive ports from `addr`'s port, or on `count` free ports
/// when it is 0. Returns the bound addresses in order. If one cannot be bound, those already
/// started are stopped and the error names the endpoint.
pub async fn spawn_devnet_endpoints(
    chain: Arc<DevnetChain>,
    addr: SocketAddr,
    count: u16,
    injector: FaultInjector,
    shutdown: CancellationToken,
) -> io::Result<Vec<SocketAddr>> {
    let addrs = endpoint_addrs(addr, count)?;
    let started = shutdown.child_token();
    let mut bound = Vec::with_capacity(addrs.len());
    for (i, addr) in addrs.into_iter().enumerate() {
        let spawned =
            spawn_devnet_with_faults(Arc::clone(&chain), addr, injector.clone(), started.clone())
                .await;
        match spawned {
            Ok(addr) => bound.push(addr),
            Err(e) => {
                started.cancel();
                return Err(io::Error::new(
                    e.kind(),
                    format!(
                        "binding devnet endpoint {} of {count} at {addr}: {e}",
                        i + 1
                    ),
                ));
            }
        }
    }
    Ok(bound)
}

/// The listen addresses of `count` endpoints starting at `addr`: consecutive ports, or all port
/// 0 when `addr`'s port is 0.
fn endpoint_addrs(addr: SocketAddr, count: u16) -> io::Result<Vec<SocketAddr>> {
    if count == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the devnet needs at least one endpoint",
        ));
    }
    if addr.port() == 0 {
        return Ok(vec![addr; usize::from(count)]);
    }
    let last = u32::from(addr.port()) + u32::from(count) - 1;
    if last > u32::from(u16::MAX) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{count} devnet endpoints from port {} would end at port {last}, above 65535",
                addr.port()
            ),
        ));
    }
    Ok((addr.port()..=addr.port() + (count - 1))
        .map(|port| SocketAddr::new(addr.ip(), port))
        .collect())
}

/// Binds `addr` and serves `router` on it until `shutdown`.
async fn serve(
    router: Router,
    addr: SocketAddr,
    shutdown: CancellationToken,
) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::error!(target: "blockfill::devnet", error = %e, "devnet server stopped");
        }
    });
    Ok(bound)
}

/// Flags of `blockfill devnet`.
#[derive(Debug, Clone, Args)]
pub struct DevnetArgs {
    /// Listen address (of the first endpoint, see --endpoints).
    #[arg(long, default_value = "127.0.0.1:8545")]
    pub addr: SocketAddr,
    /// Number of blocks.
    #[arg(long, default_value_t = 100_000)]
    pub blocks: u64,
    /// Chain id.
    #[arg(long, default_value_t = 1337)]
    pub chain_id: u64,
    /// Transactions in every block (mainnet-like density); default 0 to 3, varying by block.
    #[arg(long, value_name = "N")]
    pub transactions_per_block: Option<u64>,
    /// Logs every transaction emits; default one for each even transaction index.
    #[arg(long, value_name = "N")]
    pub logs_per_transaction: Option<u64>,
    /// Serve the same chain on N endpoints: consecutive ports from --addr's port, or N free
    /// ports when it is 0. All share one fault profile.
    #[arg(
        long,
        env = "BLOCKFILL_DEVNET_ENDPOINTS",
        default_value_t = 1,
        value_name = "N",
        value_parser = clap::value_parser!(u16).range(1..)
    )]
    pub endpoints: u16,
    /// Faults injected into every endpoint.
    #[command(flatten)]
    pub faults: DevnetFaultArgs,
}

/// Fault flags of `blockfill devnet` (see [`FaultProfile`]).
#[derive(Debug, Clone, Args)]
pub struct DevnetFaultArgs {
    /// Delay added before every answer, e.g. `100ms`.
    #[arg(long, env = "BLOCKFILL_DEVNET_LATENCY", default_value = "0s", value_parser = humantime::parse_duration)]
    pub latency: Duration,
    /// Uniform extra delay in 0..JITTER on top of --latency, e.g. `50ms`.
    #[arg(long, env = "BLOCKFILL_DEVNET_JITTER", default_value = "0s", value_parser = humantime::parse_duration)]
    pub jitter: Duration,
    /// Fraction of requests answered HTTP 503, between 0 and 1.
    #[arg(long, env = "BLOCKFILL_DEVNET_ERROR_RATE", default_value_t = 0.0)]
    pub error_rate: f64,
    /// Fraction of requests answered HTTP 429 with Retry-After, between 0 and 1 (with
    /// --error-rate at most 1 in total).
    #[arg(long, env = "BLOCKFILL_DEVNET_RATE_LIMIT_RATE", default_value_t = 0.0)]
    pub rate_limit_rate: f64,
    /// Retry-After of the 429 answers, in seconds.
    #[arg(
        long,
        env = "BLOCKFILL_DEVNET_RETRY_AFTER",
        default_value_t = 1,
        value_name = "SECS"
    )]
    pub retry_after: u64,
    /// Answer JSON-RPC batches with one "batch requests are not supported" error.
    #[arg(long, env = "BLOCKFILL_DEVNET_REJECT_BATCHES", value_parser = clap::builder::BoolishValueParser::new())]
    pub reject_batches: bool,
    /// Accept requests and never answer them (to test client timeouts).
    #[arg(long, env = "BLOCKFILL_DEVNET_HANG", value_parser = clap::builder::BoolishValueParser::new())]
    pub hang: bool,
    /// Fraction of answers corrupted (a block with a wrong number, no hash or a broken parent
    /// hash, or truncated JSON), between 0 and 1; drawn independently of --error-rate and
    /// --rate-limit-rate.
    #[arg(long, env = "BLOCKFILL_DEVNET_MALFORM_RATE", default_value_t = 0.0)]
    pub malform_rate: f64,
}

impl DevnetFaultArgs {
    /// The profile these flags describe, if valid; the error names the flags.
    pub fn profile(&self) -> Result<FaultProfile, FaultFlagError> {
        let profile = FaultProfile {
            latency: self.latency,
            jitter: self.jitter,
            error_rate: self.error_rate,
            rate_limit_rate: self.rate_limit_rate,
            retry_after_secs: self.retry_after,
            hang: self.hang,
            reject_batches: self.reject_batches,
            malform_rate: self.malform_rate,
        };
        match profile.validate() {
            Ok(()) => Ok(profile),
            Err(FaultProfileError::RateOutOfRange { name, value }) => {
                Err(FaultFlagError::RateOutOfRange {
                    flag: name.replace('_', "-"),
                    value,
                })
            }
            Err(FaultProfileError::RatesAboveOne {
                error_rate,
                rate_limit_rate,
            }) => Err(FaultFlagError::RatesAboveOne {
                error_rate,
                rate_limit_rate,
            }),
        }
    }
}

/// Invalid fault flags of `blockfill devnet`, named as the flags are spelled.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultFlagError {
    /// A rate flag is not a fraction in `[0, 1]`.
    #[error("--{flag} must be a fraction between 0 and 1, got {value}")]
    RateOutOfRange {
        /// The flag without its dashes (`error-rate`).
        flag: String,
        /// Its value.
        value: f64,
    },
    /// `--error-rate` and `--rate-limit-rate` add up to more than 1.
    #[error(
        "--error-rate ({error_rate}) plus --rate-limit-rate ({rate_limit_rate}) must be at most 1"
    )]
    RatesAboveOne {
        /// `--error-rate`.
        error_rate: f64,
        /// `--rate-limit-rate`.
        rate_limit_rate: f64,
    },
}

/// Why `blockfill devnet` could not serve.
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    /// The fault flags are invalid.
    #[error(transparent)]
    Flags(#[from] FaultFlagError),
    /// The fault profile is invalid.
    #[error(transparent)]
    Profile(#[from] FaultProfileError),
    /// An endpoint could not be bound.
    #[error("starting the devnet at {addr}")]
    Start {
        /// The address asked for.
        addr: SocketAddr,
        /// What binding said.
        #[source]
        source: io::Error,
    },
}

/// `blockfill devnet`: serves the devnet on every endpoint until `shutdown`, printing one line
/// per endpoint (the first as `devnet: {blocks} blocks, chain id {chain_id}, JSON-RPC at
/// http://{addr}`), the active faults, and at the end what was injected.
pub async fn run(args: DevnetArgs, shutdown: CancellationToken) -> Result<(), DevnetError> {
    let profile = args.faults.profile()?;
    let injector = FaultInjector::new(profile.clone())?;
    let DevnetArgs {
        addr,
        blocks,
        chain_id,
        endpoints,
        transactions_per_block,
        logs_per_transaction,
        ..
    } = args;
    let chain = Arc::new(DevnetChain::new(DevnetConfig {
        blocks,
        chain_id,
        transactions_per_block,
        logs_per_transaction,
        ..DevnetConfig::default()
    }));
    let bound = spawn_devnet_endpoints(chain, addr, endpoints, injector.clone(), shutdown.clone())
        .await
        .map_err(|source| DevnetError::Start { addr, source })?;
    for (i, bound) in bound.iter().enumerate() {
        if i == 0 {
            println!("devnet: {blocks} blocks, chain id {chain_id}, JSON-RPC at http://{bound}");
        } else {
            println!(
                "devnet: endpoint {} of {endpoints}, JSON-RPC at http://{bound}",
                i + 1
            );
        }
    }
    if profile.injects_anything() {
        println!("devnet: faults: {profile}");
    }
    shutdown.cancelled().await;
    if profile.injects_anything() {
        println!("devnet: injected: {}", injector.injected());
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        devnet: DevnetArgs,
    }

    fn parse(args: &[&str]) -> DevnetArgs {
        Cli::try_parse_from(std::iter::once("devnet").chain(args.iter().copied()))
            .unwrap()
            .devnet
    }

    #[test]
    fn endpoints_take_consecutive_ports_or_all_free_ports() {
        let addrs = endpoint_addrs("127.0.0.1:8545".parse().unwrap(), 3).unwrap();
        let ports: Vec<u16> = addrs.iter().map(SocketAddr::port).collect();
        assert_eq!(ports, [8545, 8546, 8547]);
        let free = endpoint_addrs("127.0.0.1:0".parse().unwrap(), 2).unwrap();
        assert_eq!(free, vec!["127.0.0.1:0".parse::<SocketAddr>().unwrap(); 2]);
        assert_eq!(
            endpoint_addrs("127.0.0.1:65535".parse().unwrap(), 1)
                .unwrap()
                .len(),
            1
        );
        let err = endpoint_addrs("127.0.0.1:65535".parse().unwrap(), 2).unwrap_err();
        assert!(err.to_string().contains("above 65535"), "{err}");
        assert!(endpoint_addrs("127.0.0.1:0".parse().unwrap(), 0).is_err());
    }

    #[test]
    fn fault_flags_build_a_profile() {
        let args = parse(&[
            "--latency",
            "100ms",
            "--jitter",
            "20ms",
            "--error-rate",
            "0.1",
            "--rate-limit-rate",
            "0.2",
            "--retry-after",
            "3",
            "--reject-batches",
            "--malform-rate",
            "0.05",
            "--endpoints",
            "4",
        ]);
        assert_eq!(args.endpoints, 4);
        assert_eq!(
            args.faults.profile().unwrap(),
            FaultProfile {
                latency: Duration::from_millis(100),
                jitter: Duration::from_millis(20),
                error_rate: 0.1,
                rate_limit_rate: 0.2,
                retry_after_secs: 3,
                hang: false,
                reject_batches: true,
                malform_rate: 0.05,
            }
        );
        assert_eq!(
            parse(&[]).faults.profile().unwrap(),
            FaultProfile::default()
        );
        assert!(
            Cli::try_parse_from(["devnet", "--endpoints", "0"]).is_err(),
            "--endpoints 0 is refused"
        );
    }

    #[test]
    fn invalid_fault_flags_give_one_line_naming_the_flag() {
        let err = parse(&["--error-rate", "1.5"])
            .faults
            .profile()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "--error-rate must be a fraction between 0 and 1, got 1.5"
        );
        let err = parse(&["--error-rate", "0.6", "--rate-limit-rate", "0.6"])
            .faults
            .profile()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "--error-rate (0.6) plus --rate-limit-rate (0.6) must be at most 1"
        );
        for (flag, shown) in [
            ("--malform-rate=1.5", "1.5"),
            ("--malform-rate=-0.5", "-0.5"),
        ] {
            let err = parse(&[flag]).faults.profile().unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("--malform-rate must be a fraction between 0 and 1, got {shown}")
            );
        }
        // Not part of the 503/429 sum.
        parse(&[
            "--error-rate",
            "0.5",
            "--rate-limit-rate",
            "0.5",
            "--malform-rate",
            "1",
        ])
        .faults
        .profile()
        .unwrap();
    }

    #[tokio::test]
    async fn endpoints_serve_the_same_chain_and_share_the_faults() {
        let chain = Arc::new(DevnetChain::new(DevnetConfig {
            blocks: 10,
            ..DevnetConfig::default()
        }));
        let shutdown = CancellationToken::new();
        let injector = FaultInjector::default();
        let bound = spawn_devnet_endpoints(
            chain,
            "127.0.0.1:0".parse().unwrap(),
            2,
            injector.clone(),
            shutdown.clone(),
        )
        .await
        .unwrap();
        assert_eq!(bound.len(), 2);
        assert_ne!(bound[0], bound[1]);
        let client = reqwest::Client::new();
        let call = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []});
        let mut answers = Vec::new();
        for addr in &bound {
            let answer: Value = client
                .post(format!("http://{addr}"))
                .json(&call)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            answers.push(answer["result"].clone());
        }
        assert_eq!(answers[0], answers[1]);
        injector
            .set(FaultProfile {
                error_rate: 1.0,
                ..FaultProfile::default()
            })
            .unwrap();
        for addr in &bound {
            let status = client
                .post(format!("http://{addr}"))
                .json(&call)
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, reqwest::StatusCode::SERVICE_UNAVAILABLE);
        }
        let counts = injector.injected();
        assert_eq!((counts.requests, counts.errors), (4, 2));
        shutdown.cancel();
    }
}
