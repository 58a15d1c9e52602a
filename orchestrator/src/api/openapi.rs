//! The OpenAPI 3.1 document of the admin API, generated from the code: each handler's
//! `#[utoipa::path]` annotation (parameters, body, every answer with an example) and the schemas
//! its types derive. [`ApiDoc`] lists the handlers; [`CommonAnswers`] adds what every route can
//! answer (500, 408, the standby's 503, the body limit's 413, the 401/403/429 of
//! `Authorization: Bearer` keys on `/v1`). Served at `GET /openapi.json`, with Swagger UI (its
//! files built into the binary, nothing fetched at run time) at `/docs`.
//!
//! A new route is one line in `paths(...)` plus its annotation; the test
//! `every_route_is_documented_with_every_method` fails until both are there.

use axum::Router;
use utoipa::{
    Modify, OpenApi,
    openapi::{
        self as oa, Ref, RefOr,
        path::Operation,
        response::ResponseBuilder,
        security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme},
    },
};
use utoipa_swagger_ui::SwaggerUi;

use super::{
    ApiContext, ErrorBody, audit, backfills, batches, chain_config, chain_settings, chains,
    control, endpoints, fleet, health, keys, live, orchestrator, progress, reorgs, status, workers,
};

/// The admin API's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Blockfill admin API",
        description = "Register chains, request backfills and watch them, inspect batches, \
                       endpoints and the worker fleet. Every error answer is an `ErrorBody` with \
                       a stable snake_case `code`.",
    ),
    paths(
        health::healthz,
        health::readyz,
        health::metrics,
        chains::list,
        chains::register,
        chains::show,
        chain_settings::change,
        chain_config::show,
        live::resume,
        endpoints::endpoints,
        status::status,
        status::gaps,
        reorgs::list,
        fleet::show,
        fleet::supervisor,
        backfills::list,
        backfills::create,
        backfills::show,
        control::pause,
        control::resume,
        control::cancel,
        control::change,
        progress::show,
        batches::retry_failed,
        batches::list,
        batches::show,
        batches::retry_one,
        batches::quarantine,
        orchestrator::show,
        workers::list,
        keys::whoami,
        keys::list,
        keys::create,
        keys::revoke,
        audit::list,
    ),
    components(schemas(ErrorBody)),
    modifiers(&CommonAnswers),
    tags(
        (name = "chains", description = "Chains, their settings, status, gaps, endpoints and reorgs"),
        (name = "backfills", description = "Backfills of block ranges or of missing blocks"),
        (name = "batches", description = "Batches, failed work and quarantined blocks"),
        (name = "fleet", description = "Workers, their sizing and the orchestrators"),
        (name = "health", description = "Liveness, readiness and metrics"),
        (name = "access", description = "API keys, who the caller is, and the audit log"),
    ),
)]
pub struct ApiDoc;

/// Name of the bearer security scheme in the document.
const BEARER: &str = "bearer";

/// Adds the answers every route can give and the security scheme.
struct CommonAnswers;

impl Modify for CommonAnswers {
    fn modify(&self, doc: &mut oa::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key: `Authorization: Bearer <secret>`. Without any key defined, \
                         loopback clients are admins.",
                    ))
                    .build(),
            ),
        );
        for (path, item) in doc.paths.paths.iter_mut() {
            let operations = [
                (false, item.get.as_mut()),
                (false, item.head.as_mut()),
                (true, item.post.as_mut()),
                (true, item.put.as_mut()),
                (true, item.patch.as_mut()),
                (true, item.delete.as_mut()),
            ];
            for (writes, operation) in operations {
                if let Some(operation) = operation {
                    add_common_answers(path, writes, operation);
                }
            }
        }
    }
}

/// Adds to `operation` of `path` what it can answer besides its own answers.
fn add_common_answers(path: &str, writes: bool, operation: &mut Operation) {
    let mut add = |status: &str, description: &str| {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| error_answer(description));
    };
    add("408", "The request took longer than 30 s");
    add("500", "Our fault; the cause is logged, not returned");
    if writes {
        add(
            "503",
            "This orchestrator is a read-only standby (the error names the leader)",
        );
    }
    if operation.request_body.is_some() {
        add("400", "The body is not JSON");
        add("413", "The body is larger than 64 KiB");
    }
    if path.starts_with("/v1/") {
        add("401", "No valid API key");
        add("403", "The key's role is too weak for this route");
        add(
            "429",
            "Over the key's request rate; retry after `Retry-After` seconds",
        );
        operation
            .security
            .get_or_insert_with(Vec::new)
            .push(SecurityRequirement::new(BEARER, Vec::<String>::new()));
    }
}

/// An error answer: an [`ErrorBody`].
fn error_answer(description: &str) -> RefOr<oa::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            oa::ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into()
}

/// `GET /openapi.json` and Swagger UI at `/docs`.
pub(super) fn router() -> Router<ApiContext> {
    SwaggerUi::new("/docs")
        .url("/openapi.json", ApiDoc::openapi())
        .into()
}

/// Example answers for the annotations (`example = json!(examples::chain())`).
pub(super) mod examples {
    use serde_json::{Value, json};

    /// An error answer.
    pub(crate) fn error(code: &str, error: &str) -> Value {
        json!({"error": error, "code": code})
    }

    pub(crate) fn chain() -> Value {
        json!({
            "name": "devnet", "chain_id": 31337, "rpc_urls": ["http://127.0.0.1:8545"],
            "endpoints": [{"url": "http://127.0.0.1:8545", "rps": 200}], "start_block": 0,
            "confirmations": 0, "batch_size": 100, "min_workers": 1, "max_workers": 4,
            "head": 12000, "live_sync": true,
            "genesis_hash": "0x5a3b9c1d2e3f405162738495a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f",
            "max_reorg_depth": 128, "live_halted": false, "live_halted_reason": null,
            "created_at": "2026-12-01T10:00:00Z"
        })
    }

    pub(crate) fn created() -> Value {
        json!({"id": "0193c1d2-7a4e-7c3b-9a1e-3f2b8c4d5e6f", "status": "planned", "from": 0, "to": 999})
    }

    pub(crate) fn backfill() -> Value {
        json!({
            "id": "0193c1d2-7a4e-7c3b-9a1e-3f2b8c4d5e6f", "chain": "devnet", "mode": "range",
            "from": 0, "to": 999, "status": "running", "priority": 0, "paused_at": null, "cancelled_at": null,
            "requested_at": "2026-12-01T10:00:00Z", "started_at": "2026-12-01T10:00:01Z",
            "finished_at": null,
            "batches": {"planned": 2, "queued": 3, "running": 1, "done": 4, "failed": 0, "cancelled": 0},
            "blocks_done": 400, "blocks_total": 1000, "blocks_per_second": 80.0,
            "eta_seconds": 7.5, "quarantined_blocks": 0, "split_batches": 0,
            "retried_batches": 1, "failed_attempts": 1, "redeliveries": 0,
            "last_error": "rpc: timeout after 10s", "last_errors": ["rpc: timeout after 10s"]
        })
    }

    pub(crate) fn batch() -> Value {
        json!({
            "id": "devnet:0-99", "chain": "devnet", "from": 0, "to": 99,
            "backfill_id": "0193c1d2-7a4e-7c3b-9a1e-3f2b8c4d5e6f", "status": "failed",
            "attempts": 5, "deliveries": 5, "last_error": "rpc: timeout after 10s",
            "worker": "worker-1", "parent_id": null,
            "started_at": "2026-12-01T10:00:02Z", "finished_at": "2026-12-01T10:01:00Z"
        })
    }

    pub(crate) fn quarantined() -> Value {
        json!({
            "chain": "devnet", "number": 42, "batch_id": "devnet:42-42",
            "backfill_id": "0193c1d2-7a4e-7c3b-9a1e-3f2b8c4d5e6f",
            "error": "decode: invalid transaction", "attempts": 5,
            "quarantined_at": "2026-12-01T10:02:00Z"
        })
    }

    pub(crate) fn reorg() -> Value {
        json!({
            "id": 1, "common_ancestor": 11990, "depth": 2,
            "old_hashes": [{"number": 11991, "hash": "0xaa01"}, {"number": 11992, "hash": "0xaa02"}],
            "new_hashes": [{"number": 11991, "hash": "0xbb01"}, {"number": 11992, "hash": "0xbb02"}],
            "detected_by": "seam", "detected_at": "2026-12-01T10:05:00Z"
        })
    }

    pub(crate) fn status() -> Value {
        json!({
            "chain": "devnet",
            "live": {
                "head": 12000, "safe_head": 12000, "last_indexed": 11999, "lag_blocks": 1,
                "lag_seconds": 2.0, "live_sync_enabled": true, "last_live_block": 11999,
                "is_live_sync": true, "head_updated_at": "2026-12-01T10:06:00Z",
                "reorgs_seen": 1, "last_reorg": reorg(), "halted": false,
                "halted_reason": null, "halted_at": null
            },
            "historical": {
                "from": 0, "to": 12000, "indexed_blocks": 11900, "missing_blocks_count": 101,
                "gap_ranges_count": 1, "largest_gap_start": 100, "largest_gap_end": 200,
                "oldest_gap_start": 100, "percent_complete": 99.158,
                "blocks_per_second": 80.0, "eta_seconds": 1.26
            },
            "coverage": [{"start": 0, "end": 99}, {"start": 201, "end": 11999}],
            "work": {
                "retried_batches": 1, "redelivered_batches": 0, "failed_batches": 0,
                "split_batches": 0, "quarantined_blocks": 0, "last_errors": []
            }
        })
    }

    pub(crate) fn endpoints() -> Value {
        json!({
            "chain": "devnet",
            "endpoints": [{
                "url": "http://127.0.0.1:8545", "config": {"url": "http://127.0.0.1:8545"},
                "breaker": "closed", "identity": "verified", "identity_detail": null,
                "reporters": 1, "requests_per_second": 12.5, "rps_limit": null,
                "concurrency_limit": 16, "in_flight": 2, "in_flight_live": 1,
                "latency_p50_ms": 3.2, "latency_p99_ms": 20.0, "requests": 1500,
                "successes": 1498, "errors": {"timeout": 2}, "concurrency_decreases": 0,
                "cooldown_ms": null, "batches_accepted": true,
                "transitions": [{"reporter": "orchestrator:a", "from": "closed", "to": "open", "at": "2026-12-01T10:03:00Z"}],
                "last_error": "timeout after 10s",
                "by_reporter": [{
                    "reporter": "orchestrator:a", "breaker": "closed", "identity": "verified",
                    "concurrency_limit": 16, "in_flight": 2, "requests_per_second": 12.5,
                    "latency_p50_ms": 3.2, "updated_at": "2026-12-01T10:06:00Z"
                }]
            }]
        })
    }

    pub(crate) fn fleet() -> Value {
        json!({
            "chain": "devnet", "running": 2, "desired": 3, "min_workers": 1, "max_workers": 4,
            "reason": "backlog", "backlog_blocks": 50000, "per_worker_blocks_per_second": 400.0,
            "eta_seconds": 62.5, "workers_to_finish_by": 2
        })
    }

    pub(crate) fn supervisor() -> Value {
        json!({
            "enabled": true,
            "chains": {"devnet": {"workers": 2, "draining": 0}},
            "events": [{
                "at": "2026-12-01T10:00:05Z", "chain": "devnet", "action": "started",
                "worker": "devnet-1", "pid": 4242, "supervised": 2, "target": 2,
                "external": 0, "reason": "backlog"
            }]
        })
    }

    pub(crate) fn orchestrator() -> Value {
        json!({
            "instance": "host-1:4100:0193c1d2", "role": "leader",
            "leader": {
                "holder": "host-1:4100:0193c1d2", "api_addr": "127.0.0.1:8080",
                "acquired_at": "2026-12-01T09:00:00Z", "heartbeat_at": "2026-12-01T10:06:00Z"
            }
        })
    }

    pub(crate) fn worker() -> Value {
        json!({
            "id": "worker-1:host-1:4242:0193c1d2", "host": "host-1", "version": "0.1.0",
            "chains": ["devnet"], "lanes": ["backfill", "live"], "concurrency": 16,
            "in_flight": 4, "blocks_per_second": 400.0, "batches_done": 120,
            "blocks_done": 12000, "started_at": "2026-12-01T09:00:00Z",
            "last_heartbeat": "2026-12-01T10:06:00Z", "heartbeat_age_seconds": 1.2
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use utoipa::OpenApi;

    use super::ApiDoc;

    /// Every route the API router serves, with its methods, read from the router's `Debug`
    /// output (axum has no route listing): `paths: {RouteId(n): "/path", ..}` and, per route id,
    /// `MethodRouter { get: .., head: None, .. }` where a method without a handler is `None`.
    fn routes() -> BTreeMap<String, BTreeSet<String>> {
        let debug = format!("{:?}", super::super::api_routes());
        // Only the path router: the fallback router follows it.
        let debug = debug
            .split("fallback_router")
            .next()
            .expect("a path router");
        let (methods_text, paths_text) = debug.split_once("paths: {").expect("a paths map");
        // `RouteId(n): "/path"` (paths may hold braces; they hold no quotes).
        let mut paths = BTreeMap::new();
        for chunk in paths_text.split("RouteId(").skip(1) {
            let (number, rest) = chunk.split_once("): \"").expect("RouteId(n): \"path\"");
            let path = rest.split('"').next().expect("a quoted path");
            paths.insert(format!("RouteId({number})"), path.to_owned());
        }
        let mut routes = BTreeMap::new();
        for chunk in methods_text.split("RouteId(").skip(1) {
            let Some((number, rest)) = chunk.split_once("): MethodRouter(MethodRouter {") else {
                continue;
            };
            let fields = rest.split("fallback:").next().expect("the method fields");
            let methods: BTreeSet<String> = fields
                .split(", ")
                .filter_map(|field| field.trim().split_once(": "))
                .filter(|(_, handler)| !handler.starts_with("None"))
                .map(|(method, _)| method.to_owned())
                // axum answers HEAD with the GET handler.
                .filter(|method| method != "head")
                .collect();
            let path = paths
                .get(&format!("RouteId({number})"))
                .unwrap_or_else(|| panic!("route id {number} has no path in {debug}"));
            routes.insert(path.clone(), methods);
        }
        routes
    }

    /// The document's paths with their methods.
    fn documented() -> BTreeMap<String, BTreeSet<String>> {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("the document serializes");
        let paths = doc["paths"].as_object().expect("paths");
        paths
            .iter()
            .map(|(path, item)| {
                let methods = item
                    .as_object()
                    .expect("a path item")
                    .keys()
                    .filter(|k| {
                        ["get", "post", "put", "patch", "delete", "head"].contains(&k.as_str())
                    })
                    .cloned()
                    .collect();
                (path.clone(), methods)
            })
            .collect()
    }

    #[test]
    fn every_route_is_documented_with_every_method() {
        let routes = routes();
        assert!(
            routes.len() >= 20
                && routes.get("/v1/chains")
                    == Some(&BTreeSet::from(["get".to_owned(), "post".to_owned()])),
            "the router's routes could not be read (did axum's Debug output change?): {routes:?}"
        );
        let documented = documented();
        for (path, methods) in &routes {
            let have = documented.get(path).cloned().unwrap_or_default();
            let missing: Vec<_> = methods.difference(&have).collect();
            assert!(
                missing.is_empty(),
                "{path} {missing:?} is routed but not in the OpenAPI document: annotate the \
                 handler with #[utoipa::path] and list it in ApiDoc's paths(...)"
            );
        }
        for (path, methods) in &documented {
            let routed = routes.get(path).cloned().unwrap_or_default();
            let extra: Vec<_> = methods.difference(&routed).collect();
            assert!(
                extra.is_empty(),
                "{path} {extra:?} is documented but not routed"
            );
        }
    }

    #[test]
    fn every_operation_has_an_example_and_every_error_is_an_error_body() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("the document serializes");
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("a path item") {
                let responses = operation["responses"].as_object().expect("responses");
                let examples = responses
                    .values()
                    .filter(|r| {
                        r["content"]
                            .as_object()
                            .is_some_and(|c| c.values().any(|m| !m["example"].is_null()))
                    })
                    .count();
                assert!(examples > 0, "{method} {path} has no example answer");
                for (status, response) in responses {
                    if status.starts_with('4') || status.starts_with('5') {
                        let schema = &response["content"]["application/json"]["schema"];
                        let readiness = path == "/readyz" && status == "503";
                        assert!(
                            readiness || schema["$ref"] == "#/components/schemas/ErrorBody",
                            "{method} {path} {status} is not an ErrorBody: {response}"
                        );
                    }
                }
            }
        }
    }
}
