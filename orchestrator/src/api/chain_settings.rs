//! `PATCH /v1/chains/{name}`: changes the settings an operator changes after registration:
//! `rpc_urls` (with each endpoint's own limits, `rps` and `max_concurrency`), `confirmations`,
//! `batch_size`, `min_workers`, `max_workers`, `live_sync` and `max_reorg_depth`.
//!
//! Only the fields in the body change: a body with only `max_workers` keeps `min_workers`. Each
//! field is checked as registration checks it (the same functions); `min_workers` may not exceed
//! `max_workers`, counting the stored value of the one the body leaves out (checked again with the
//! row locked, so concurrent changes cannot cross). New endpoints must serve the chain's id and
//! genesis block. Every bad field is named in one 422 answer (`fields`); a body naming nothing to
//! change is a 422 too (most likely a client bug); an unknown chain is a 404. The answer is the
//! updated chain, as `GET /v1/chains/{name}` shows it.
//!
//! Nothing caches these settings past a second: the fleet answer, the scheduler (the next
//! generation's batch size), the head tracker (confirmations and live sync, every poll) and reorg
//! repairs read the row each time, and every process's endpoint pool compares the stored
//! endpoints within a second (`SourceRegistry`), so a change takes effect without a restart.

use std::ops::RangeInclusive;

use axum::{
    Json, Router,
    extract::{State, rejection::JsonRejection},
    routing::patch,
};
use blockfill_activities::{
    entity::chains,
    redact::redact_url,
    store::chains::{self as chain_rows, SettingsChange, SettingsChanged},
};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::{
    ApiContext, ApiError, ErrorBody, FieldErrors,
    chains::{
        ChainView, EndpointEntry, EndpointSpec, check_rpc_urls, json_type, out_of_range,
        probe_endpoints, setting_range,
    },
    openapi::examples,
    params::{PathParam, Text},
};

pub(super) fn router() -> Router<ApiContext> {
    Router::new().route("/v1/chains/{name}", patch(change))
}

/// The fields a change may carry.
const CHANGEABLE: &str =
    "rpc_urls, confirmations, batch_size, min_workers, max_workers, live_sync, max_reorg_depth";

/// Body of `PATCH /v1/chains/{name}` as documented (the handler reads it field by field,
/// [`ChainPatch::parse`]): at least one field; each present one replaces the stored value.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(super) struct ChainChange {
    /// The chain's endpoints (new ones must serve the chain's id and genesis block).
    #[schema(min_items = 1)]
    rpc_urls: Option<Vec<EndpointEntry>>,
    /// Confirmation depth.
    #[schema(minimum = 0, maximum = 10_000)]
    confirmations: Option<u64>,
    /// Blocks per batch.
    #[schema(minimum = 1, maximum = 10_000)]
    batch_size: Option<u64>,
    /// Fewest workers (at most `max_workers`).
    #[schema(minimum = 0, maximum = 10_000)]
    min_workers: Option<u64>,
    /// Most workers.
    #[schema(minimum = 1, maximum = 10_000)]
    max_workers: Option<u64>,
    /// Follow the head with the live lane.
    live_sync: Option<bool>,
    /// Deepest reorg repaired automatically.
    #[schema(minimum = 1, maximum = 100_000)]
    max_reorg_depth: Option<u64>,
}

/// The fields present in a change body, checked one by one.
#[derive(Debug, Default)]
struct ChainPatch {
    /// The entries as given, and as they are stored.
    rpc_urls: Option<(Vec<EndpointSpec>, Vec<Value>)>,
    confirmations: Option<u64>,
    batch_size: Option<u64>,
    min_workers: Option<u64>,
    max_workers: Option<u64>,
    live_sync: Option<bool>,
    max_reorg_depth: Option<u64>,
}

impl ChainPatch {
    /// Reads every field of `body`; the error names each bad one and why.
    fn parse(body: Map<String, Value>) -> Result<Self, FieldErrors> {
        let mut patch = Self::default();
        let mut errors = FieldErrors::new();
        for (field, value) in body {
            let outcome = if value.is_null() {
                Err("must not be null (leave the field out to keep its value)".to_owned())
            } else {
                match (field.as_str(), setting_range(&field)) {
                    ("rpc_urls", _) => {
                        parse_rpc_urls(value).map(|urls| patch.rpc_urls = Some(urls))
                    }
                    ("live_sync", _) => value
                        .as_bool()
                        .ok_or_else(|| format!("must be true or false, not {}", json_type(&value)))
                        .map(|on| patch.live_sync = Some(on)),
                    (name, Some(range)) => {
                        whole_number(&value, range).map(|n| patch.set_number(name, n))
                    }
                    (name, None) => Err(not_changeable(name)),
                }
            };
            if let Err(why) = outcome {
                errors.insert(field, why);
            }
        }
        if errors.is_empty() {
            Ok(patch)
        } else {
            Err(errors)
        }
    }

    fn set_number(&mut self, field: &str, value: u64) {
        let slot = match field {
            "confirmations" => &mut self.confirmations,
            "batch_size" => &mut self.batch_size,
            "min_workers" => &mut self.min_workers,
            "max_workers" => &mut self.max_workers,
            "max_reorg_depth" => &mut self.max_reorg_depth,
            _ => return,
        };
        *slot = Some(value);
    }

    /// Why `min_workers` would exceed `max_workers` once applied to `row`, named by the field of
    /// the body at fault; `None` when they are in order or the body names neither.
    fn workers_out_of_order(&self, row: &chains::Model) -> Option<(&'static str, String)> {
        if self.min_workers.is_none() && self.max_workers.is_none() {
            return None;
        }
        let min = self
            .min_workers
            .unwrap_or_else(|| u64::try_from(row.min_workers).unwrap_or(0));
        let max = self
            .max_workers
            .unwrap_or_else(|| u64::try_from(row.max_workers).unwrap_or(0));
        if min <= max {
            return None;
        }
        Some(match (self.min_workers, self.max_workers) {
            (Some(_), Some(_)) => (
                "min_workers",
                format!("must not exceed max_workers ({max})"),
            ),
            (Some(_), None) => (
                "min_workers",
                format!("must not exceed max_workers ({max}, the stored value)"),
            ),
            (None, _) => (
                "max_workers",
                format!("must be at least min_workers ({min}, the stored value)"),
            ),
        })
    }

    /// The change as stored (every value was range-checked, so each fits its column).
    fn change(&self) -> SettingsChange {
        let int = |v: Option<u64>| v.and_then(|v| i32::try_from(v).ok());
        let big = |v: Option<u64>| v.and_then(|v| i64::try_from(v).ok());
        SettingsChange {
            rpc_urls: self
                .rpc_urls
                .as_ref()
                .map(|(_, stored)| Value::Array(stored.clone())),
            confirmations: big(self.confirmations),
            batch_size: int(self.batch_size),
            min_workers: int(self.min_workers),
            max_workers: int(self.max_workers),
            live_sync: self.live_sync,
            max_reorg_depth: big(self.max_reorg_depth),
        }
    }
}

/// Reads `rpc_urls` as registration does.
fn parse_rpc_urls(value: Value) -> Result<(Vec<EndpointSpec>, Vec<Value>), String> {
    let specs: Vec<EndpointSpec> = serde_json::from_value(value).map_err(|e| {
        format!("must be a list of URLs or {{url, rps?, max_concurrency?}} entries: {e}")
    })?;
    let stored = check_rpc_urls(&specs)?;
    Ok((specs, stored))
}

/// A whole number within `range`.
fn whole_number(value: &Value, range: RangeInclusive<u64>) -> Result<u64, String> {
    match value.as_u64() {
        Some(n) => out_of_range(n, range).map_or(Ok(n), Err),
        None => {
            let got = match value {
                Value::Number(n) => n.to_string(),
                other => json_type(other).to_owned(),
            };
            Err(format!(
                "must be a whole number between {} and {} (got {got})",
                range.start(),
                range.end()
            ))
        }
    }
}

/// Why a field of the chain's answer, or an unknown one, cannot be changed.
fn not_changeable(field: &str) -> String {
    match field {
        "name" | "chain_id" | "genesis_hash" | "start_block" | "created_at" | "head" => {
            "cannot be changed after registration".to_owned()
        }
        "endpoints" => "is read-only: set each endpoint's limits in its rpc_urls entry \
                        ({url, rps?, max_concurrency?})"
            .to_owned(),
        "live_halted" | "live_halted_reason" => "is read-only: resume halted live sync with \
                                                  POST /v1/chains/{name}/live/resume"
            .to_owned(),
        _ => format!("unknown field; the fields that can be changed are {CHANGEABLE}"),
    }
}

/// A 422 naming one field.
fn field_error(field: &str, why: String) -> ApiError {
    ApiError::InvalidFields(FieldErrors::from([(field.to_owned(), why)]))
}

/// New endpoints must serve the chain: when `specs` name a URL the chain does not have yet, the
/// endpoints are read as at registration (those that answer must agree, at least one must answer)
/// and must report the chain's id and genesis block.
async fn check_new_endpoints(specs: &[EndpointSpec], row: &chains::Model) -> Result<(), String> {
    let stored = row.rpc_url_list();
    if specs.iter().all(|s| stored.iter().any(|u| u == s.url())) {
        return Ok(());
    }
    let urls: Vec<&str> = specs.iter().map(EndpointSpec::url).collect();
    let probed = probe_endpoints(&urls).await?;
    let expected = row.identity();
    if let Some(id) = expected.chain_id
        && id != probed.chain_id
    {
        return Err(format!(
            "the endpoints serve chain id {}, this chain is {id}",
            probed.chain_id
        ));
    }
    if let Some(genesis) = &expected.genesis_hash
        && !genesis.eq_ignore_ascii_case(&probed.genesis_hash)
    {
        return Err(format!(
            "the endpoints have genesis block {}, this chain has {genesis} (another network or a fork)",
            probed.genesis_hash
        ));
    }
    Ok(())
}

/// Changes a chain's settings; only the fields in the body change.
#[utoipa::path(
    patch,
    path = "/v1/chains/{name}",
    tag = "chains",
    params(("name" = String, Path, description = "Chain name", example = "devnet")),
    request_body(content = ChainChange, example = json!({"max_workers": 8, "batch_size": 200})),
    responses(
        (status = 200, description = "The updated chain", body = ChainView, example = json!(examples::chain())),
        (status = 400, description = "The body is not a JSON object, or the name cannot be read", body = ErrorBody, example = json!(examples::error("bad_request", "Failed to parse the request body as JSON: expected value at line 1 column 1"))),
        (status = 404, description = "No such chain", body = ErrorBody, example = json!(examples::error("not_found", "no chain named mainnet"))),
        (status = 422, description = "Fields are invalid (each named in `fields`), or the body names nothing to change", body = ErrorBody,
         example = json!({"error": "invalid fields: batch_size: must be between 1 and 10000 (got 0)", "code": "invalid_fields", "fields": {"batch_size": "must be between 1 and 10000 (got 0)"}})),
    ),
)]
pub(super) async fn change(
    State(ctx): State<ApiContext>,
    PathParam(name): PathParam<Text>,
    body: Result<Json<Map<String, Value>>, JsonRejection>,
) -> Result<Json<ChainView>, ApiError> {
    let Json(body) = body?;
    let row = chain_rows::find(&ctx.app.db, name.as_str())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no chain named {name}")))?;
    if body.is_empty() {
        return Err(ApiError::Unprocessable(format!(
            "nothing to change: name at least one of {CHANGEABLE}"
        )));
    }
    let patch = ChainPatch::parse(body).map_err(ApiError::InvalidFields)?;
    if let Some((field, why)) = patch.workers_out_of_order(&row) {
        return Err(field_error(field, why));
    }
    if let Some((specs, _)) = &patch.rpc_urls {
        check_new_endpoints(specs, &row)
            .await
            .map_err(|why| field_error("rpc_urls", why))?;
    }
    let changed =
        chain_rows::change_settings(&ctx.app.db, name.as_str(), &patch.change(), |locked| {
            match patch.workers_out_of_order(locked) {
                Some((field, why)) => Err(field_error(field, why)),
                None => Ok(()),
            }
        })
        .await?;
    let (before, after) = match changed {
        SettingsChanged::NotFound => {
            return Err(ApiError::NotFound(format!("no chain named {name}")));
        }
        SettingsChanged::Refused(e) => return Err(e),
        SettingsChanged::Changed { before, after } => (before, after),
    };
    ctx.status_cache.forget_chain(name.as_str());
    let changes = describe_changes(&before, &after);
    if changes.is_empty() {
        tracing::debug!(target: "blockfill::api", chain = %name, "chain settings unchanged: the body repeats the stored values");
    } else {
        tracing::info!(target: "blockfill::api", chain = %name, changes = %changes.join("; "), "chain settings changed");
    }
    Ok(Json((*after).into()))
}

/// Each setting that differs, as `field old -> new`; endpoint URLs are redacted (their paths and
/// queries may hold API keys).
fn describe_changes(before: &chains::Model, after: &chains::Model) -> Vec<String> {
    let mut changes = Vec::new();
    if before.rpc_urls != after.rpc_urls {
        changes.push(format!(
            "rpc_urls {} -> {}",
            endpoints_text(before),
            endpoints_text(after)
        ));
    }
    let settings = [
        ("confirmations", before.confirmations, after.confirmations),
        (
            "batch_size",
            i64::from(before.batch_size),
            i64::from(after.batch_size),
        ),
        (
            "min_workers",
            i64::from(before.min_workers),
            i64::from(after.min_workers),
        ),
        (
            "max_workers",
            i64::from(before.max_workers),
            i64::from(after.max_workers),
        ),
        (
            "max_reorg_depth",
            before.max_reorg_depth,
            after.max_reorg_depth,
        ),
    ];
    for (field, old, new) in settings {
        if old != new {
            changes.push(format!("{field} {old} -> {new}"));
        }
    }
    if before.live_sync != after.live_sync {
        changes.push(format!(
            "live_sync {} -> {}",
            before.live_sync, after.live_sync
        ));
    }
    changes
}

/// The chain's endpoints for a log line: redacted URLs with their own limits.
fn endpoints_text(row: &chains::Model) -> String {
    let each: Vec<String> = row
        .endpoints()
        .iter()
        .map(|e| {
            let mut text = redact_url(&e.url);
            if let Some(rps) = e.rps {
                text.push_str(&format!(" rps {rps}"));
            }
            if let Some(max) = e.max_concurrency {
                text.push_str(&format!(" max_concurrency {max}"));
            }
            text
        })
        .collect();
    format!("[{}]", each.join(", "))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::ChainPatch;

    fn parse(body: Value) -> Result<ChainPatch, super::FieldErrors> {
        let Value::Object(map) = body else {
            panic!("an object")
        };
        ChainPatch::parse(map)
    }

    #[test]
    fn every_bad_field_is_named_with_why() {
        let errors = parse(json!({
            "batch_size": 0,
            "confirmations": -1,
            "max_workers": "9",
            "live_sync": 1,
            "rpc_urls": [],
            "surprise": true,
            "chain_id": 5,
            "max_reorg_depth": null,
            "min_workers": 2.5,
        }))
        .expect_err("bad fields");
        let named: Vec<&str> = errors.keys().map(String::as_str).collect();
        assert_eq!(
            named,
            [
                "batch_size",
                "chain_id",
                "confirmations",
                "live_sync",
                "max_reorg_depth",
                "max_workers",
                "min_workers",
                "rpc_urls",
                "surprise"
            ]
        );
        assert_eq!(errors["batch_size"], "must be between 1 and 10000 (got 0)");
        assert!(errors["confirmations"].contains("(got -1)"), "{errors:?}");
        assert!(errors["max_workers"].contains("got a string"), "{errors:?}");
        assert!(errors["min_workers"].contains("got 2.5"), "{errors:?}");
        assert!(
            errors["surprise"].starts_with("unknown field"),
            "{errors:?}"
        );
        assert!(
            errors["chain_id"].contains("after registration"),
            "{errors:?}"
        );
        assert!(
            errors["rpc_urls"].contains("at least one URL"),
            "{errors:?}"
        );
    }

    #[test]
    fn only_the_fields_present_change() {
        let patch = parse(json!({"max_workers": 9})).expect("a valid body");
        let change = patch.change();
        assert_eq!(change.max_workers, Some(9));
        assert_eq!(change.min_workers, None);
        assert_eq!(change.batch_size, None);
        assert_eq!(change.rpc_urls, None);
        assert_eq!(change.live_sync, None);
    }

    #[test]
    fn workers_are_ordered_against_the_stored_bound_the_body_leaves_out() {
        let mut row = blockfill_activities::entity::chains::Model {
            name: "c".into(),
            chain_id: Some(1),
            rpc_urls: json!([]),
            start_block: 0,
            confirmations: 0,
            batch_size: 100,
            min_workers: 2,
            max_workers: 3,
            head_block: None,
            head_updated_at: None,
            created_at: chrono::Utc::now().into(),
            updated_at: chrono::Utc::now().into(),
            live_sync: true,
            live_cursor: None,
            live_backfill_id: None,
            genesis_hash: None,
            max_reorg_depth: 128,
            live_halted: false,
            live_halted_reason: None,
            live_halted_at: None,
        };
        let raised = parse(json!({"max_workers": 9})).expect("a valid body");
        assert_eq!(raised.workers_out_of_order(&row), None);
        let too_many = parse(json!({"min_workers": 5})).expect("a valid body");
        assert_eq!(
            too_many.workers_out_of_order(&row),
            Some((
                "min_workers",
                "must not exceed max_workers (3, the stored value)".into()
            ))
        );
        let too_few = parse(json!({"max_workers": 1})).expect("a valid body");
        assert_eq!(
            too_few.workers_out_of_order(&row).expect("out of order").0,
            "max_workers"
        );
        let crossed = parse(json!({"min_workers": 4, "max_workers": 3})).expect("a valid body");
        assert_eq!(
            crossed.workers_out_of_order(&row),
            Some(("min_workers", "must not exceed max_workers (3)".into()))
        );
        row.max_workers = 1;
        let other = parse(json!({"batch_size": 10})).expect("a valid body");
        assert_eq!(
            other.workers_out_of_order(&row),
            None,
            "a body naming neither bound leaves them alone"
        );
    }
}
