//! Prometheus metrics: the process-wide recorder, the `/metrics` answer, and a small server for
//! processes without an HTTP API of their own (workers: `--metrics-addr`).
//!
//! Every series is named `blockfill_*`. Durations (`*_seconds`) are histograms with the buckets
//! of [`SECONDS_BUCKETS`], so `histogram_quantile` works across processes.

use std::{net::SocketAddr, sync::OnceLock};

use axum::{Router, extract::State, http::header, response::IntoResponse, routing::get};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sea_orm::sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// Histogram buckets of every `*_seconds` series: 1 ms to 60 s.
pub const SECONDS_BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
];

/// The process-wide Prometheus recorder (installed on first use; later calls reuse it).
/// `None` when another recorder was installed first.
pub fn prometheus() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &SECONDS_BUCKETS)
                .ok()?
                .install_recorder()
                .ok()
        })
        .clone()
}

/// Publishes `pool`'s use: `blockfill_db_pool_connections{state="in_use"|"idle"}` and
/// `blockfill_db_pool_max_connections`. Call it before each render.
pub fn record_pool(pool: &PgPool) {
    let size = pool.size();
    let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX).min(size);
    metrics::gauge!("blockfill_db_pool_connections", "state" => "in_use")
        .set(f64::from(size - idle));
    metrics::gauge!("blockfill_db_pool_connections", "state" => "idle").set(f64::from(idle));
    metrics::gauge!("blockfill_db_pool_max_connections")
        .set(f64::from(pool.options().get_max_connections()));
}

/// What a metrics server needs: the recorder and the database pool whose use it reports.
#[derive(Clone)]
struct Exposition {
    handle: PrometheusHandle,
    pool: PgPool,
}

/// Serves `GET /metrics` on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    handle: PrometheusHandle,
    pool: PgPool,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(render))
        .with_state(Exposition { handle, pool });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// Binds `addr` for [`serve`]; the error names the address.
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen for metrics on {addr}: {e}"))
}

async fn render(State(exposition): State<Exposition>) -> impl IntoResponse {
    record_pool(&exposition.pool);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        exposition.handle.render(),
    )
}
