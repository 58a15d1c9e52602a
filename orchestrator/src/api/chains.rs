//! `POST /v1/chains`, `GET /v1/chains`, `GET /v1/chains/{name}`, and the checks registration
//! shares with `PATCH /v1/chains/{name}` ([`super::chain_settings`]).

use std::time::Duration;

use axum::{
    Json, Router,
    extract::{State, rejection::JsonRejection},
    http::StatusCode,
    routing::get,
};
use blockfill_activities::{
    ChainName, ChainSource, EvmRpcSource,
    entity::chains,
    redact::redact_url,
    source::{EndpointConfig, RpcSettings},
    store::chains as chain_rows,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    ApiContext, ApiError, ErrorBody,
    openapi::examples,
    params::{PathParam, Text},
};

pub(super) fn router() -> Router<ApiContext> {
    Router::new()
        .route("/v1/chains", get(list).post(register))
        .route("/v1/chains/{name}", get(show))
}

/// Body of `POST /v1/chains`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RegisterChain {
    /// Name used in URLs: a lowercase letter, then lowercase letters, digits, `-` and `_` (at
    /// most 64).
    #[schema(example = "devnet", pattern = "^[a-z][a-z0-9_-]{0,63}$")]
    name: String,
    /// The chain's JSON-RPC endpoints (at least one; they must agree on chain id and genesis).
    #[schema(value_type = Vec<EndpointEntry>, min_items = 1)]
    rpc_urls: Vec<EndpointSpec>,
    /// First block to cover (default 0).
    #[serde(default)]
    start_block: u64,
    /// Confirmation depth, 0..=10000 (default by chain id: 12 for Ethereum, 0 for unknown chains).
    confirmations: Option<u64>,
    /// Blocks per batch, 1..=10000 (default 100).
    batch_size: Option<u32>,
    /// Fewest workers, 0..=10000 (default 1).
    min_workers: Option<u32>,
    /// Most workers, 1..=10000 (default 4, at least `min_workers`).
    max_workers: Option<u32>,
    /// Follow the head with the live lane (default true).
    live_sync: Option<bool>,
    /// Deepest reorg repaired automatically (default by chain id); a deeper one halts live sync.
    max_reorg_depth: Option<u64>,
}

/// One entry of `rpc_urls` as documented: a URL, or a URL with its own limits
/// ([`EndpointSpec`] reads it).
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(super) enum EndpointEntry {
    /// An `http(s)` URL.
    #[schema(example = "http://127.0.0.1:8545")]
    Url(String),
    /// A URL with its own limits.
    Configured(EndpointConfig),
}

/// One entry of `rpc_urls`: a URL, or a URL with its own limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "serde_json::Value")]
pub(super) enum EndpointSpec {
    Url(String),
    Configured(EndpointConfig),
}

impl TryFrom<serde_json::Value> for EndpointSpec {
    type Error = String;

    /// A string is a URL; an object is read as an [`EndpointConfig`], so a misspelt key is named.
    fn try_from(value: serde_json::Value) -> Result<Self, Self::Error> {
        match value {
            serde_json::Value::String(url) => Ok(Self::Url(url)),
            object @ serde_json::Value::Object(_) => serde_json::from_value(object)
                .map(Self::Configured)
                .map_err(|e| format!("an entry {{url, rps?, max_concurrency?}}: {e}")),
            other => Err(format!(
                "an entry must be a URL or {{url, rps?, max_concurrency?}}, not {}",
                json_type(&other)
            )),
        }
    }
}

/// The JSON type of `value`, for messages (never the value: it may hold a secret).
pub(super) fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

impl EndpointSpec {
    pub(super) fn url(&self) -> &str {
        match self {
            Self::Url(url) => url,
            Self::Configured(c) => &c.url,
        }
    }

    /// Checks the entry; returns what is stored for it, or why it is refused (naming the URL
    /// redacted: it may carry an API key).
    fn validate(&self) -> Result<serde_json::Value, String> {
        let url = self.url();
        let shown = redact_url(url);
        if url.contains(char::is_control) {
            return Err(format!("{shown} must not contain control characters"));
        }
        let parsed = url::Url::parse(url).map_err(|e| format!("it is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("{shown} must be http or https"));
        }
        match self {
            Self::Url(url) => Ok(serde_json::json!(url)),
            Self::Configured(c) => {
                if c.rps == Some(0) {
                    return Err(format!(
                        "rps of {shown} must be at least 1 (leave it out for no limit)"
                    ));
                }
                if c.max_concurrency.is_some_and(|m| m < 2) {
                    return Err(format!("max_concurrency of {shown} must be at least 2"));
                }
                Ok(serde_json::to_value(c).unwrap_or_else(|_| serde_json::json!(url)))
            }
        }
    }
}

/// Checks the entries of `rpc_urls` (at least one, each a valid `http(s)` URL with valid limits,
/// none twice) for registration and for a change; returns what is stored, or why they are
/// refused (the message does not name the field).
pub(super) fn check_rpc_urls(entries: &[EndpointSpec]) -> Result<Vec<serde_json::Value>, String> {
    if entries.is_empty() {
        return Err("must name at least one URL".into());
    }
    let stored = entries
        .iter()
        .enumerate()
        .map(|(i, entry)| entry.validate().map_err(|why| format!("entry {i}: {why}")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut seen = std::collections::HashSet::new();
    if let Some(twice) = entries.iter().position(|e| !seen.insert(e.url())) {
        return Err(format!(
            "entry {twice} ({}) is listed twice",
            redact_url(entries[twice].url())
        ));
    }
    Ok(stored)
}

/// Most blocks per batch.
pub(super) const BATCH_SIZE_MAX: u64 = 10_000;
/// Deepest confirmation depth.
pub(super) const CONFIRMATIONS_MAX: u64 = 10_000;
/// Most workers a chain may ask for (`min_workers` and `max_workers`).
pub(super) const WORKERS_MAX: u64 = 10_000;

/// Why `value` is outside `range`, if it is.
pub(super) fn out_of_range(value: u64, range: std::ops::RangeInclusive<u64>) -> Option<String> {
    (!range.contains(&value)).then(|| {
        format!(
            "must be between {} and {} (got {value})",
            range.start(),
            range.end()
        )
    })
}

/// The accepted values of each numeric setting, for registration and for a change.
pub(super) fn setting_range(field: &str) -> Option<std::ops::RangeInclusive<u64>> {
    Some(match field {
        "batch_size" => 1..=BATCH_SIZE_MAX,
        "confirmations" => 0..=CONFIRMATIONS_MAX,
        "min_workers" => 0..=WORKERS_MAX,
        // A chain no worker may serve would never be indexed.
        "max_workers" => 1..=WORKERS_MAX,
        "max_reorg_depth" => 1..=MAX_REORG_DEPTH_LIMIT,
        _ => return None,
    })
}

/// What the endpoints said at registration.
#[derive(Debug)]
pub(super) struct Probed {
    pub(super) chain_id: u64,
    /// Hash of block 0.
    pub(super) genesis_hash: String,
    /// Head of the first endpoint that answered.
    pub(super) head: Option<u64>,
}

/// Reads the chain id and the hash of block 0 from every endpoint at once; those that answer
/// must agree on both (an endpoint that answers one but not the other counts as not answering).
pub(super) async fn probe_endpoints(urls: &[&str]) -> Result<Probed, String> {
    let settings = RpcSettings {
        timeout: Duration::from_secs(5),
        ..RpcSettings::default()
    };
    let answers = futures::future::join_all(urls.iter().map(|url| {
        let settings = settings.clone();
        async move {
            let source = EvmRpcSource::new(url, settings)?;
            let chain_id = source.chain_id().await?;
            let genesis_hash = source.genesis_hash().await?;
            Ok::<_, blockfill_activities::source::SourceError>(Probed {
                chain_id,
                genesis_hash,
                head: source.head().await.ok(),
            })
        }
    }))
    .await;
    let mut found: Option<(Probed, String)> = None;
    let mut failures = Vec::new();
    for (url, answer) in urls.iter().zip(answers) {
        // Messages name endpoints redacted: the URL may carry an API key.
        let url = redact_url(url);
        match answer {
            Ok(probed) => match &found {
                None => found = Some((probed, url)),
                Some((first, first_url)) if first.chain_id != probed.chain_id => {
                    return Err(format!(
                        "rpc_urls disagree: {first_url} serves chain id {}, {url} serves {}",
                        first.chain_id, probed.chain_id
                    ));
                }
                Some((first, first_url))
                    if !first
                        .genesis_hash
                        .eq_ignore_ascii_case(&probed.genesis_hash) =>
                {
                    return Err(format!(
                        "rpc_urls disagree: {first_url} has genesis block {}, {url} has {} (same chain id {}: another network or a fork)",
                        first.genesis_hash, probed.genesis_hash, probed.chain_id
                    ));
                }
                Some(_) => {}
            },
            Err(e) => failures.push(format!("{url}: {e}")),
        }
    }
    match found {
        Some((probed, _)) => {
            if !failures.is_empty() {
                tracing::warn!(target: "blockfill::api", unreachable = ?failures, "registering a chain with endpoints that do not answer yet");
            }
            Ok(probed)
        }
        None => Err(format!(
            "cannot read eth_chainId and block 0 from any endpoint ({}); check the URLs and that the node is up",
            failures.join("; ")
        )),
    }
}

/// A chain as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChainView {
    /// Name used in URLs.
    pub name: String,
    /// Chain id reported by the node.
    pub chain_id: Option<i64>,
    /// RPC endpoints, redacted (`GET /v1/chains/{name}/config` shows them raw, to admins).
    pub rpc_urls: Vec<String>,
    /// RPC endpoints with their own limits, if any (URLs redacted).
    pub endpoints: Vec<EndpointConfig>,
    /// First block to cover.
    pub start_block: i64,
    /// Confirmation depth.
    pub confirmations: i64,
    /// Blocks per batch.
    pub batch_size: i32,
    /// Fewest workers.
    pub min_workers: i32,
    /// Most workers.
    pub max_workers: i32,
    /// Last head seen.
    pub head: Option<i64>,
    /// Whether the live lane follows the head.
    pub live_sync: bool,
    /// Hash of block 0 every endpoint must serve.
    pub genesis_hash: Option<String>,
    /// Deepest reorg repaired automatically.
    pub max_reorg_depth: i64,
    /// Whether live sync is halted for an operator (a reorg deeper than `max_reorg_depth`).
    pub live_halted: bool,
    /// Why.
    pub live_halted_reason: Option<String>,
    /// Registration time.
    pub created_at: DateTime<Utc>,
}

impl From<chains::Model> for ChainView {
    fn from(row: chains::Model) -> Self {
        Self {
            rpc_urls: row.rpc_url_list().iter().map(|u| redact_url(u)).collect(),
            endpoints: row
                .endpoints()
                .into_iter()
                .map(|e| EndpointConfig {
                    url: redact_url(&e.url),
                    ..e
                })
                .collect(),
            name: row.name,
            chain_id: row.chain_id,
            start_block: row.start_block,
            confirmations: row.confirmations,
            batch_size: row.batch_size,
            min_workers: row.min_workers,
            max_workers: row.max_workers,
            head: row.head_block,
            live_sync: row.live_sync,
            genesis_hash: row.genesis_hash,
            max_reorg_depth: row.max_reorg_depth,
            live_halted: row.live_halted,
            live_halted_reason: row.live_halted_reason,
            created_at: row.created_at.with_timezone(&Utc),
        }
    }
}

/// Default confirmation depth for well-known chain ids.
fn default_confirmations(chain_id: u64) -> u64 {
    match chain_id {
        1 | 11_155_111 | 17_000 => 12, // Ethereum mainnet, Sepolia, Holesky
        10 | 8453 | 42_161 => 10,      // OP, Base, Arbitrum One
        137 => 64,                     // Polygon PoS
        56 => 15,                      // BNB Smart Chain
        _ => 0,                        // local and unknown chains
    }
}

/// Highest `max_reorg_depth` accepted.
pub(crate) const MAX_REORG_DEPTH_LIMIT: u64 = 100_000;

/// Default deepest reorg repaired automatically, by chain id: beyond it, finality (or common
/// sense) says the node is wrong, not the index.
pub(crate) fn default_max_reorg_depth(chain_id: u64) -> u64 {
    match chain_id {
        1 | 11_155_111 | 17_000 => 64, // Ethereum: finalised after two epochs
        10 | 8453 | 42_161 => 64,      // rollups: reorgs follow L1's
        137 => 256,                    // Polygon PoS
        56 => 64,                      // BNB Smart Chain
        _ => 128,                      // local and unknown chains
    }
}

/// Registers a chain: reads its chain id and genesis block from the endpoints first.
#[utoipa::path(
    post,
    path = "/v1/chains",
    tag = "chains",
    request_body(content = RegisterChain, example = json!({"name": "devnet", "rpc_urls": ["http://127.0.0.1:8545"], "confirmations": 0, "batch_size": 100})),
    responses(
        (status = 201, description = "Registered", body = ChainView, example = json!(examples::chain())),
        (status = 400, description = "The body is not JSON", body = ErrorBody, example = json!(examples::error("bad_request", "Failed to parse the request body as JSON: expected value at line 1 column 1"))),
        (status = 409, description = "A chain of that name exists", body = ErrorBody, example = json!(examples::error("conflict", "chain devnet is already registered"))),
        (status = 422, description = "A field is invalid, or no endpoint answers", body = ErrorBody, example = json!(examples::error("unprocessable", "batch_size must be between 1 and 10000 (got 0)"))),
    ),
)]
pub(super) async fn register(
    State(ctx): State<ApiContext>,
    body: Result<Json<RegisterChain>, JsonRejection>,
) -> Result<(StatusCode, Json<ChainView>), ApiError> {
    let Json(body) = body?;
    let name = ChainName::parse(&body.name).map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let stored_urls = check_rpc_urls(&body.rpc_urls)
        .map_err(|why| ApiError::Unprocessable(format!("rpc_urls: {why}")))?;
    let batch_size = body.batch_size.unwrap_or(100);
    let min_workers = body.min_workers.unwrap_or(1);
    let max_workers = body.max_workers.unwrap_or(4.max(min_workers));
    let numbers = [
        ("batch_size", Some(u64::from(batch_size))),
        ("confirmations", body.confirmations),
        ("min_workers", Some(u64::from(min_workers))),
        ("max_workers", Some(u64::from(max_workers))),
        ("max_reorg_depth", body.max_reorg_depth),
    ];
    for (field, value) in numbers {
        let why = value
            .zip(setting_range(field))
            .and_then(|(v, r)| out_of_range(v, r));
        if let Some(why) = why {
            return Err(ApiError::Unprocessable(format!("{field} {why}")));
        }
    }
    if min_workers > max_workers {
        return Err(ApiError::Unprocessable(
            "min_workers must not exceed max_workers".into(),
        ));
    }
    if body.start_block > i64::MAX as u64 {
        return Err(ApiError::Unprocessable("start_block out of range".into()));
    }
    // Answers early without probing the endpoints; the insert below is what settles a race.
    if chain_rows::find(&ctx.app.db, name.as_str())
        .await?
        .is_some()
    {
        return Err(ApiError::Conflict(format!(
            "chain {name} is already registered"
        )));
    }
    let urls: Vec<&str> = body.rpc_urls.iter().map(EndpointSpec::url).collect();
    let Probed {
        chain_id,
        genesis_hash,
        head,
    } = probe_endpoints(&urls)
        .await
        .map_err(ApiError::Unprocessable)?;
    let max_reorg_depth = body
        .max_reorg_depth
        .unwrap_or_else(|| default_max_reorg_depth(chain_id));
    let new = chain_rows::NewChain {
        name: name.to_string(),
        chain_id: chain_id as i64,
        rpc_urls: serde_json::Value::Array(stored_urls),
        start_block: body.start_block as i64,
        confirmations: body
            .confirmations
            .unwrap_or_else(|| default_confirmations(chain_id)) as i64,
        batch_size: batch_size as i32,
        min_workers: min_workers as i32,
        max_workers: max_workers as i32,
        head_block: head.map(|h| h as i64),
        live_sync: body.live_sync.unwrap_or(true),
        genesis_hash,
        max_reorg_depth: max_reorg_depth as i64,
    };
    let row = chain_rows::register(&ctx.app.db, new)
        .await?
        .ok_or_else(|| ApiError::Conflict(format!("chain {name} is already registered")))?;
    tracing::info!(target: "blockfill::api", chain = %name, chain_id, genesis = row.genesis_hash.as_deref().unwrap_or(""), "chain registered");
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// Every registered chain.
#[utoipa::path(
    get,
    path = "/v1/chains",
    tag = "chains",
    responses((status = 200, description = "The chains, by name", body = Vec<ChainView>, example = json!([examples::chain()]))),
)]
pub(super) async fn list(State(ctx): State<ApiContext>) -> Result<Json<Vec<ChainView>>, ApiError> {
    let rows = chain_rows::all(&ctx.app.db).await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

/// One chain.
#[utoipa::path(
    get,
    path = "/v1/chains/{name}",
    tag = "chains",
    params(("name" = String, Path, description = "Chain name", example = "devnet")),
    responses(
        (status = 200, description = "The chain", body = ChainView, example = json!(examples::chain())),
        (status = 400, description = "The name cannot be read (invalid UTF-8, a NUL character)", body = ErrorBody, example = json!(examples::error("bad_request", "\"a\\0\" contains a NUL character"))),
        (status = 404, description = "No such chain", body = ErrorBody, example = json!(examples::error("not_found", "no chain named mainnet"))),
    ),
)]
pub(super) async fn show(
    State(ctx): State<ApiContext>,
    PathParam(name): PathParam<Text>,
) -> Result<Json<ChainView>, ApiError> {
    let row = chain_rows::find(&ctx.app.db, name.as_str())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no chain named {name}")))?;
    Ok(Json(row.into()))
}
