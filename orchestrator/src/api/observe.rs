//! The outermost layer of the API: one `http_request` span per request (continuing the caller's
//! trace when it sends a W3C `traceparent`), and the HTTP metrics
//! `blockfill_http_requests_total{method, route, status}` and
//! `blockfill_http_request_duration_seconds{method, route}`. Routes are the matched templates
//! (`/v1/backfills/{id}`), `unmatched` for anything else, so no caller can grow the series.
//! Probes and scrapes (`/healthz`, `/readyz`, `/metrics`) are counted but not traced.

use std::time::Instant;

use axum::{
    extract::{MatchedPath, Request},
    middleware::Next,
    response::Response,
};
use blockfill_activities::telemetry::traces;
use tracing::Instrument as _;

/// Routes counted but never traced: they run every few seconds and say nothing about work.
const UNTRACED: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

pub(super) async fn observe(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = request.method().as_str().to_owned();
    let span = if UNTRACED.contains(&route.as_str()) {
        tracing::Span::none()
    } else {
        let span = tracing::info_span!(
            "http_request",
            otel.name = format!("{method} {route}"),
            otel.kind = "server",
            http.request.method = %method,
            http.route = %route,
            http.response.status_code = tracing::field::Empty,
            trace_id = tracing::field::Empty,
        );
        traces::continue_trace(&span, traces::from_headers(request.headers()).as_ref());
        span
    };
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    metrics::counter!(
        "blockfill_http_requests_total",
        "method" => method.clone(), "route" => route.clone(), "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!(
        "blockfill_http_request_duration_seconds",
        "method" => method, "route" => route
    )
    .record(started.elapsed().as_secs_f64());
    response
}
