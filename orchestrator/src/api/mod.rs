//! The admin API (axum, JSON): one file per resource, each with its own request and response
//! types; entities never leak into JSON. Every route is described by its `#[utoipa::path]`
//! annotation and listed in [`openapi`], which serves the OpenAPI document at `/openapi.json`
//! and Swagger UI at `/docs`; every error answer is an [`ErrorBody`] with a `code`.

pub mod access;
mod audit;
mod backfills;
mod batches;
mod chain_config;
mod chain_settings;
mod chains;
mod control;
mod endpoints;
mod error;
mod fleet;
mod health;
mod keys;
mod live;
mod observe;
mod openapi;
mod orchestrator;
mod params;
mod progress;
mod reorgs;
pub mod status;
mod status_cache;
mod ui;
mod workers;

use std::time::Duration;

use axum::{
    Router,
    extract::{Request, State},
    http::Method,
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use blockfill_activities::store::leadership;
use tower_http::{limit::RequestBodyLimitLayer, timeout::TimeoutLayer};

pub use crate::fleet::FleetView;
pub use audit::AuditView;
pub use backfills::{BackfillView, BatchCounts, Created};
pub use batches::{BatchView, QuarantinedBlock, RetryView};
pub use chain_config::ChainConfigView;
pub use chains::ChainView;
pub use endpoints::{EndpointView, EndpointsView};
pub use error::{ApiError, ErrorBody, FieldErrors, code_for_status};
pub use keys::{CreatedKeyView, KeyView, WhoamiView};
pub use openapi::ApiDoc;
pub use orchestrator::{LeaderView, OrchestratorView};
pub use progress::{ProgressBucket, ProgressView};
pub use reorgs::ReorgView;
pub use status::{
    ChainStatus, GapPage, GapSummary, GapView, HistoricalStatus, Interval, LIVE_SYNC_TOLERANCE,
    LiveStatus, WorkStatus, chain_status, gap_page, gap_summary,
};
pub use status_cache::StatusCache;
pub use workers::WorkerView;

use crate::{context::AppContext, leader::Role};

/// What every handler can reach.
#[derive(Clone)]
pub struct ApiContext {
    /// The scheduler's context (database, queues, settings).
    pub app: AppContext,
    /// This orchestrator's identity and whether it leads (standbys are read-only).
    pub role: Role,
    /// Prometheus renderer, when metrics are installed.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// The chains' endpoints, for the reads a request needs (a backfill beyond the recorded
    /// head reads the head).
    pub sources: blockfill_activities::SourceRegistry,
    /// The local worker supervisor, when this orchestrator runs one.
    pub supervisor: Option<std::sync::Arc<crate::fleet::Supervisor>>,
    /// Who may use the API: keys, development mode, limits ([`access`]).
    pub access: std::sync::Arc<access::Access>,
    /// Recent status answers (`--status-cache`).
    pub status_cache: std::sync::Arc<StatusCache>,
}

/// The whole admin API plus the dashboard and the API's documentation.
pub fn router(ctx: ApiContext) -> Router {
    api_routes()
        .merge(ui::router())
        .merge(openapi::router())
        .fallback(error::unknown_route)
        .layer(middleware::from_fn_with_state(
            ctx.clone(),
            read_only_standby,
        ))
        .layer(middleware::from_fn_with_state(ctx.clone(), access::enforce))
        .with_state(ctx)
        .layer(RequestBodyLimitLayer::new(64 * 1024))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(middleware::map_response(error::json_errors))
        .layer(middleware::from_fn(observe::observe))
}

/// The routes of the API: each is documented (see [`openapi`], whose test holds the two lists
/// together). The dashboard and the documentation pages are not among them.
fn api_routes() -> Router<ApiContext> {
    Router::new()
        .merge(health::router())
        .merge(chains::router())
        .merge(chain_settings::router())
        .merge(chain_config::router())
        .merge(live::router())
        .merge(endpoints::router())
        .merge(backfills::router())
        .merge(control::router())
        .merge(progress::router())
        .merge(status::router())
        .merge(batches::router())
        .merge(orchestrator::router())
        .merge(reorgs::router())
        .merge(workers::router())
        .merge(fleet::router())
        .merge(keys::router())
        .merge(audit::router())
}

/// A standby orchestrator serves reads; writes go to the leader.
async fn read_only_standby(
    State(ctx): State<ApiContext>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() == Method::GET || request.method() == Method::HEAD || ctx.role.is_leader() {
        return next.run(request).await;
    }
    let leader = leadership::leader(&ctx.app.pool).await.ok().flatten();
    let hint = match leader {
        Some(leadership::Leader {
            holder,
            api_addr: Some(addr),
            ..
        }) => format!("the leader is {holder} at http://{addr}"),
        _ => "no leader is known yet; retry shortly".to_owned(),
    };
    ApiError::Unavailable(format!("this orchestrator is a read-only standby; {hint}"))
        .into_response()
}
