//! `GET /v1/chains/{name}/endpoints`: every RPC endpoint of a chain as the processes using it
//! (workers, the leading orchestrator) last reported it, merged: the most severe breaker state
//! and identity (`wrong_chain` when any process found it serving another chain), summed rates,
//! concurrency and errors, latency quantiles of the merged histograms, and each reporter's own
//! line.

use std::collections::BTreeMap;

use axum::{Json, Router, extract::State, routing::get};
use blockfill_activities::{
    redact::redact_url,
    source::{
        EndpointConfig, EndpointSnapshot, IdentityState,
        pool::{TransitionView, breaker::BreakerState, stats::LatencyHistogram},
    },
    store::{chains, endpoint_health},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    ApiContext, ApiError, ErrorBody,
    openapi::examples,
    params::{PathParam, Text},
};

/// Reports older than this are left out (their process is gone or cut off).
const FRESH_SECONDS: f64 = 15.0;

pub(super) fn router() -> Router<ApiContext> {
    Router::new().route("/v1/chains/{name}/endpoints", get(endpoints))
}

/// The answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EndpointsView {
    /// The chain.
    pub chain: String,
    /// Its endpoints, in configuration order.
    pub endpoints: Vec<EndpointView>,
}

/// One endpoint, merged over the processes that use it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EndpointView {
    /// The URL.
    pub url: String,
    /// Its configured limits.
    pub config: EndpointConfig,
    /// The most severe breaker state any process reports (`null` before any report).
    pub breaker: Option<BreakerState>,
    /// Whether it serves the chain, the most severe any process reports: `wrong_chain` when any
    /// found it serving another chain (it is never routed to), else `unverified` when any has
    /// not checked it (or could not), else `verified` (`null` before any report).
    pub identity: Option<IdentityState>,
    /// What it serves instead when `wrong_chain` ("serves chain id 999, expected 31337"), or why
    /// it is unverified, as the process that reported the merged state says.
    pub identity_detail: Option<String>,
    /// How many processes reported it in the last seconds.
    pub reporters: usize,
    /// Requests per second, all processes together.
    pub requests_per_second: f64,
    /// Requests-per-second limit of one process (`null`: none).
    pub rps_limit: Option<u32>,
    /// Adaptive concurrency limits added up.
    pub concurrency_limit: u32,
    /// Requests in flight, all processes together.
    pub in_flight: u32,
    /// Of which for live sync.
    pub in_flight_live: u32,
    /// Median latency over the merged histograms, milliseconds.
    pub latency_p50_ms: Option<f64>,
    /// 99th percentile latency over the merged histograms, milliseconds.
    pub latency_p99_ms: Option<f64>,
    /// Requests sent, all processes together.
    pub requests: u64,
    /// Requests answered well.
    pub successes: u64,
    /// Failures by kind, added up.
    pub errors: BTreeMap<String, u64>,
    /// Times a process halved its concurrency for this endpoint.
    pub concurrency_decreases: u64,
    /// Longest `Retry-After` cool-down still running, milliseconds.
    pub cooldown_ms: Option<u64>,
    /// Whether every process found it taking JSON-RPC batches.
    pub batches_accepted: bool,
    /// The latest breaker transitions over all processes, oldest first.
    pub transitions: Vec<ReportedTransition>,
    /// The latest failure any process saw.
    pub last_error: Option<String>,
    /// Each process's own view.
    pub by_reporter: Vec<ReporterView>,
}

/// A transition with who saw it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReportedTransition {
    /// The process.
    pub reporter: String,
    /// The transition.
    #[serde(flatten)]
    pub transition: TransitionView,
}

/// One process's line.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReporterView {
    /// The process (`worker:{name}:{pid}` or `orchestrator:{instance}`).
    pub reporter: String,
    /// Its breaker state.
    pub breaker: BreakerState,
    /// What it found the endpoint serving.
    pub identity: IdentityState,
    /// Its concurrency limit.
    pub concurrency_limit: u32,
    /// Its requests in flight.
    pub in_flight: u32,
    /// Its request rate.
    pub requests_per_second: f64,
    /// Its median latency.
    pub latency_p50_ms: Option<f64>,
    /// When it reported.
    pub updated_at: DateTime<Utc>,
}

/// A chain's RPC endpoints as the processes using them last reported them, merged.
#[utoipa::path(
    get,
    path = "/v1/chains/{name}/endpoints",
    tag = "chains",
    params(("name" = String, Path, description = "Chain name", example = "devnet")),
    responses(
        (status = 200, description = "The endpoints, in configuration order", body = EndpointsView, example = json!(examples::endpoints())),
        (status = 400, description = "The name cannot be read", body = ErrorBody, example = json!(examples::error("bad_request", "\"a\\0\" contains a NUL character"))),
        (status = 404, description = "No such chain", body = ErrorBody, example = json!(examples::error("not_found", "no chain named mainnet"))),
    ),
)]
pub(super) async fn endpoints(
    State(ctx): State<ApiContext>,
    PathParam(name): PathParam<Text>,
) -> Result<Json<EndpointsView>, ApiError> {
    let chain = chains::find(&ctx.app.db, name.as_str())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no chain named {name}")))?;
    let reports = endpoint_health::fresh_reports(&ctx.app.pool, &chain.name, FRESH_SECONDS).await?;
    let mut by_url: BTreeMap<String, Vec<(String, EndpointSnapshot, DateTime<Utc>)>> =
        BTreeMap::new();
    for endpoint_health::EndpointReport {
        endpoint: url,
        reporter,
        snapshot: body,
        updated_at: at,
    } in reports
    {
        match serde_json::from_value::<EndpointSnapshot>(body) {
            Ok(snapshot) => by_url
                .entry(url)
                .or_default()
                .push((reporter, snapshot, at)),
            Err(e) => {
                tracing::warn!(target: "blockfill::api", endpoint = url, reporter, error = %e, "unreadable endpoint report skipped")
            }
        }
    }
    let endpoints = chain
        .endpoints()
        .into_iter()
        .map(|config| {
            merge(
                config.clone(),
                by_url.remove(&config.url).unwrap_or_default(),
            )
        })
        .collect();
    Ok(Json(EndpointsView {
        chain: chain.name,
        endpoints,
    }))
}

/// Merges the reports of one endpoint.
fn merge(
    config: EndpointConfig,
    reports: Vec<(String, EndpointSnapshot, DateTime<Utc>)>,
) -> EndpointView {
    let mut latency = LatencyHistogram::default();
    let mut errors = BTreeMap::new();
    let mut transitions = Vec::new();
    let mut by_reporter = Vec::new();
    // The URL may carry an API key: answers show it redacted.
    let url = redact_url(&config.url);
    let mut view = EndpointView {
        url: url.clone(),
        config: EndpointConfig { url, ..config },
        breaker: None,
        identity: None,
        identity_detail: None,
        reporters: reports.len(),
        requests_per_second: 0.0,
        rps_limit: None,
        concurrency_limit: 0,
        in_flight: 0,
        in_flight_live: 0,
        latency_p50_ms: None,
        latency_p99_ms: None,
        requests: 0,
        successes: 0,
        errors: BTreeMap::new(),
        concurrency_decreases: 0,
        cooldown_ms: None,
        batches_accepted: true,
        transitions: Vec::new(),
        last_error: None,
        by_reporter: Vec::new(),
    };
    let mut latest_error: Option<(DateTime<Utc>, String)> = None;
    for (reporter, snapshot, at) in reports {
        view.breaker = Some(
            view.breaker
                .map_or(snapshot.breaker, |b| b.max(snapshot.breaker)),
        );
        if view.identity.is_none_or(|i| snapshot.identity > i) {
            view.identity = Some(snapshot.identity);
            view.identity_detail = snapshot.identity_detail.clone();
        }
        view.requests_per_second += snapshot.requests_per_second;
        view.rps_limit = snapshot.rps_limit;
        view.concurrency_limit += snapshot.concurrency_limit;
        view.in_flight += snapshot.in_flight;
        view.in_flight_live += snapshot.in_flight_live;
        view.requests += snapshot.requests;
        view.successes += snapshot.successes;
        view.concurrency_decreases += snapshot.concurrency_decreases;
        view.cooldown_ms = view.cooldown_ms.max(snapshot.cooldown_ms);
        view.batches_accepted &= snapshot.batches_accepted;
        latency.merge(&snapshot.latency);
        for (kind, count) in &snapshot.errors {
            *errors.entry(kind.clone()).or_insert(0) += count;
        }
        if let Some(error) = &snapshot.last_error
            && latest_error.as_ref().is_none_or(|(t, _)| at > *t)
        {
            latest_error = Some((at, error.clone()));
        }
        transitions.extend(snapshot.transitions.iter().map(|t| ReportedTransition {
            reporter: reporter.clone(),
            transition: t.clone(),
        }));
        by_reporter.push(ReporterView {
            reporter,
            breaker: snapshot.breaker,
            identity: snapshot.identity,
            concurrency_limit: snapshot.concurrency_limit,
            in_flight: snapshot.in_flight,
            requests_per_second: snapshot.requests_per_second,
            latency_p50_ms: snapshot.latency_p50_ms,
            updated_at: at,
        });
    }
    transitions.sort_by_key(|t| t.transition.at);
    let keep_from = transitions.len().saturating_sub(20);
    view.transitions = transitions.split_off(keep_from);
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    view.latency_p50_ms = latency.quantile(0.5).map(ms);
    view.latency_p99_ms = latency.quantile(0.99).map(ms);
    view.errors = errors;
    view.last_error = latest_error.map(|(_, e)| e);
    view.by_reporter = by_reporter;
    view
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(
        reporter: &str,
        identity: IdentityState,
        detail: Option<&str>,
    ) -> (String, EndpointSnapshot, DateTime<Utc>) {
        let snapshot = EndpointSnapshot {
            url: "http://rpc".into(),
            breaker: BreakerState::Closed,
            breaker_reopens_in_ms: None,
            cooldown_ms: None,
            rps_limit: None,
            requests_per_second: 0.0,
            concurrency_limit: 16,
            max_concurrency: 256,
            in_flight: 0,
            in_flight_live: 0,
            reserved_for_live: 4,
            concurrency_decreases: 0,
            requests: 0,
            successes: 0,
            errors: BTreeMap::new(),
            latency: LatencyHistogram::default(),
            latency_p50_ms: None,
            latency_p99_ms: None,
            batches_accepted: true,
            transitions: Vec::new(),
            last_error: None,
            identity,
            identity_detail: detail.map(str::to_owned),
        };
        (reporter.to_owned(), snapshot, Utc::now())
    }

    #[test]
    fn an_endpoint_any_process_found_on_another_chain_is_shown_wrong_chain() {
        let config = EndpointConfig::new("http://rpc");
        let merged = merge(
            config.clone(),
            vec![
                report("orchestrator:a", IdentityState::Verified, None),
                report(
                    "worker:w:1",
                    IdentityState::WrongChain,
                    Some("serves chain id 999, expected 31337"),
                ),
                report(
                    "worker:w:2",
                    IdentityState::Unverified,
                    Some("not checked yet"),
                ),
            ],
        );
        assert_eq!(merged.identity, Some(IdentityState::WrongChain));
        assert_eq!(
            merged.identity_detail.as_deref(),
            Some("serves chain id 999, expected 31337")
        );
        let mine: Vec<_> = merged.by_reporter.iter().map(|r| r.identity).collect();
        assert_eq!(
            mine,
            [
                IdentityState::Verified,
                IdentityState::WrongChain,
                IdentityState::Unverified
            ]
        );

        let verified = merge(
            config.clone(),
            vec![
                report("orchestrator:a", IdentityState::Verified, None),
                report("worker:w:1", IdentityState::Verified, None),
            ],
        );
        assert_eq!(verified.identity, Some(IdentityState::Verified));
        assert_eq!(merge(config, Vec::new()).identity, None, "no report yet");
    }

    #[test]
    fn a_report_from_before_identity_checks_reads_as_unverified() {
        let (_, snapshot, _) = report("old", IdentityState::Verified, None);
        let mut body = serde_json::to_value(&snapshot).unwrap_or_default();
        if let Some(fields) = body.as_object_mut() {
            fields.remove("identity");
            fields.remove("identity_detail");
        }
        let read: Result<EndpointSnapshot, _> = serde_json::from_value(body);
        assert_eq!(
            read.map(|s| s.identity).ok(),
            Some(IdentityState::Unverified)
        );
    }
}
