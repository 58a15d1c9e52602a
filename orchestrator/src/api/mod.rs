//! The admin API (axum, JSON): one file per resource, each with its own request and response
//! types; entities never leak into JSON.

mod backfills;
mod chains;
mod error;
mod health;
mod status;
mod ui;

use std::time::Duration;

use axum::Router;
use tower_http::{limit::RequestBodyLimitLayer, timeout::TimeoutLayer, trace::TraceLayer};

pub use backfills::{BackfillView, BatchCounts, Created};
pub use chains::ChainView;
pub use error::ApiError;
pub use status::{
    ChainStatus, GapPage, GapSummary, GapView, HistoricalStatus, Interval, LIVE_SYNC_TOLERANCE,
    LiveStatus, chain_status, gap_page, gap_summary,
};

use crate::scheduler::SchedulerContext;

/// What every handler can reach.
#[derive(Clone)]
pub struct ApiContext {
    /// The scheduler's context (database, queues, settings).
    pub scheduler: SchedulerContext,
    /// Redis URL, for readiness checks.
    pub redis_url: String,
    /// Prometheus renderer, when metrics are installed.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

/// The whole admin API plus the dashboard.
pub fn router(ctx: ApiContext) -> Router {
    Router::new()
        .merge(health::router())
        .merge(chains::router())
        .merge(backfills::router())
        .merge(status::router())
        .merge(ui::router())
        .with_state(ctx)
        .layer(RequestBodyLimitLayer::new(64 * 1024))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(TraceLayer::new_for_http())
}
