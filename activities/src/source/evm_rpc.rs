//! [`EvmRpcSource`]: blocks over Ethereum JSON-RPC, with batched `eth_getBlockByNumber` (full
//! transactions) and one `eth_getLogs` per range, every answer validated before it becomes rows.

use std::{
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::Duration,
};

use async_trait::async_trait;
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::{Value, json, value::RawValue};
use tracing::Instrument as _;

use super::{BlockBundle, ChainSource, RpcBlock, RpcLog, SourceError, redact_url};
use crate::types::BlockRange;

/// How the JSON-RPC client behaves.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct RpcSettings {
    /// Requests per HTTP batch. Default: `--rpc-batch-size`'s.
    pub batch_size: usize,
    /// Per-request timeout. Default: `--rpc-timeout`'s.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for RpcSettings {
    fn default() -> Self {
        let flags = crate::settings::RpcArgs::default();
        Self {
            batch_size: flags.batch_size.max(1) as usize,
            timeout: flags.timeout,
        }
    }
}

/// A JSON-RPC chain source on one endpoint.
#[derive(Debug)]
pub struct EvmRpcSource {
    endpoint: String,
    /// The endpoint as errors and logs name it ([`redact_url`]).
    label: String,
    client: reqwest::Client,
    settings: RpcSettings,
    next_id: AtomicU64,
    /// Cleared when the endpoint rejects a JSON-RPC batch.
    batching: AtomicBool,
}

/// One JSON-RPC response object, its result left as the raw text it arrived as (borrowed from
/// the answer's bytes): each result is parsed once, straight into its type.
#[derive(Deserialize)]
struct Response<'a> {
    #[serde(default)]
    id: Value,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(default)]
    error: Option<ErrorObject>,
}

#[derive(Deserialize)]
struct ErrorObject {
    code: i64,
    message: String,
}

/// Single requests in flight at once for one batch, once an endpoint has rejected batches.
const SINGLE_REQUEST_CONCURRENCY: usize = 8;

/// Why one HTTP request of calls failed.
enum BatchError {
    /// The endpoint answered a batch with a single object: it does not take batches.
    Rejected(String),
    /// Anything else.
    Source(SourceError),
}

impl From<SourceError> for BatchError {
    fn from(e: SourceError) -> Self {
        Self::Source(e)
    }
}

/// JSON-RPC's "limit exceeded", used by providers for rate limiting.
const RATE_LIMIT_CODE: i64 = -32005;

impl EvmRpcSource {
    /// A source for `endpoint` (an `http://` or `https://` URL).
    pub fn new(endpoint: &str, settings: RpcSettings) -> Result<Self, SourceError> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| SourceError::Transport {
                endpoint: redact_url(endpoint),
                message: e.to_string(),
            })?;
        Ok(Self {
            endpoint: endpoint.to_owned(),
            label: redact_url(endpoint),
            client,
            settings,
            next_id: AtomicU64::new(1),
            batching: AtomicBool::new(true),
        })
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn transport(&self, message: impl ToString) -> SourceError {
        SourceError::Transport {
            endpoint: self.label.clone(),
            message: message.to_string(),
        }
    }

    async fn post(&self, body: &Value) -> Result<bytes::Bytes, SourceError> {
        let response = self
            .client
            .post(&self.endpoint)
            .json(body)
            .send()
            .await
            .map_err(|e| self.request_error(e))?;
        let status = response.status();
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            let retry_after_secs = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok());
            return Err(SourceError::RateLimited {
                endpoint: self.label.clone(),
                retry_after_secs,
            });
        }
        if !status.is_success() {
            return Err(SourceError::Http {
                endpoint: self.label.clone(),
                status: status.as_u16(),
            });
        }
        response.bytes().await.map_err(|e| self.request_error(e))
    }

    fn request_error(&self, e: reqwest::Error) -> SourceError {
        if e.is_timeout() {
            SourceError::Timeout {
                endpoint: self.label.clone(),
                timeout: self.settings.timeout,
            }
        } else {
            // reqwest quotes the whole URL (API key included); the label names the endpoint.
            self.transport(e.without_url())
        }
    }

    /// Whether this endpoint takes JSON-RPC batches (false once it rejected one).
    pub fn batches_accepted(&self) -> bool {
        self.batching.load(Ordering::Relaxed)
    }

    /// How many HTTP requests fetching `range` takes (for rate limiting).
    pub fn requests_for(&self, range: BlockRange) -> u64 {
        if self.batches_accepted() {
            range.len().div_ceil(self.settings.batch_size.max(1) as u64) + 1
        } else {
            range.len() + 1
        }
    }

    /// Calls several methods and returns their results in call order: in one HTTP batch, or one
    /// request each (a few at a time) once the endpoint has rejected a batch.
    async fn batch<T: DeserializeOwned>(
        &self,
        calls: &[(&str, Value)],
        range: BlockRange,
    ) -> Result<Vec<T>, SourceError> {
        if calls.len() > 1 && self.batches_accepted() {
            match self.http_batch(calls, range).await {
                Err(BatchError::Rejected(detail)) => {
                    if self.batching.swap(false, Ordering::Relaxed) {
                        tracing::warn!(target: "blockfill::rpc", endpoint = %self.label, detail, "endpoint rejects JSON-RPC batches; sending single requests from now on");
                    }
                }
                Err(BatchError::Source(e)) => return Err(e),
                Ok(results) => return Ok(results),
            }
        }
        if let [call] = calls {
            return Ok(vec![self.single(call, range).await?]);
        }
        let mut results = Vec::with_capacity(calls.len());
        for chunk in calls.chunks(SINGLE_REQUEST_CONCURRENCY) {
            let answers =
                futures::future::try_join_all(chunk.iter().map(|call| self.single(call, range)))
                    .await?;
            results.extend(answers);
        }
        Ok(results)
    }

    /// One call in its own HTTP request.
    async fn single<T: DeserializeOwned>(
        &self,
        call: &(&str, Value),
        range: BlockRange,
    ) -> Result<T, SourceError> {
        let mut one = self
            .http_batch::<T>(std::slice::from_ref(call), range)
            .await
            .map_err(|e| match e {
                BatchError::Source(e) => e,
                BatchError::Rejected(detail) => self.transport(detail),
            })?;
        one.pop()
            .ok_or_else(|| self.transport(format!("{}: empty answer", call.0)))
    }

    /// Sends `calls` in one HTTP request (a JSON-RPC batch, or a single call when there is one)
    /// and returns their results in call order. Traced as one `rpc` span: endpoint (redacted),
    /// first method, batch size and outcome.
    async fn http_batch<T: DeserializeOwned>(
        &self,
        calls: &[(&str, Value)],
        range: BlockRange,
    ) -> Result<Vec<T>, BatchError> {
        let span = tracing::info_span!(
            "rpc",
            otel.kind = "client",
            endpoint = %self.label,
            method = calls.first().map_or("", |c| c.0),
            batch_size = calls.len(),
            outcome = tracing::field::Empty,
        );
        let answer = self.send_batch(calls, range).instrument(span.clone()).await;
        span.record(
            "outcome",
            match &answer {
                Ok(_) => "ok",
                Err(BatchError::Rejected(_)) => "batch_rejected",
                Err(BatchError::Source(e)) => super::pool::stats::error_kind(e),
            },
        );
        answer
    }

    async fn send_batch<T: DeserializeOwned>(
        &self,
        calls: &[(&str, Value)],
        range: BlockRange,
    ) -> Result<Vec<T>, BatchError> {
        let first_id = self
            .next_id
            .fetch_add(calls.len() as u64, Ordering::Relaxed);
        let body: Vec<Value> = calls
            .iter()
            .enumerate()
            .map(|(i, (method, params))| {
                json!({"jsonrpc": "2.0", "id": first_id + i as u64, "method": method, "params": params})
            })
            .collect();
        let body = match <[Value; 1]>::try_from(body) {
            Ok([single]) => single,
            Err(many) => Value::Array(many),
        };
        let sent_batch = body.is_array();
        let bytes = self.post(&body).await?;
        let malformed = |message: String| SourceError::Malformed {
            endpoint: self.label.clone(),
            range,
            message,
        };
        // Broken JSON is a transport failure (a cut answer); JSON of the wrong shape is malformed.
        let unparsable = |e: serde_json::Error| -> BatchError {
            match e.classify() {
                serde_json::error::Category::Data => {
                    malformed(format!("bad JSON-RPC response object: {e}")).into()
                }
                _ => self
                    .transport(format!("unparsable JSON-RPC body: {e}"))
                    .into(),
            }
        };
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
        let responses: Vec<Response<'_>> = match first {
            Some(b'[') => serde_json::from_slice(&bytes).map_err(unparsable)?,
            Some(b'{') => {
                let single: Response<'_> = serde_json::from_slice(&bytes).map_err(unparsable)?;
                if sent_batch {
                    // One error object for a whole batch: the endpoint does not take batches.
                    let detail = single.error.map_or_else(
                        || "a single answer to a batch".to_owned(),
                        |e| format!("{} ({})", e.message, e.code),
                    );
                    return Err(BatchError::Rejected(detail));
                }
                vec![single]
            }
            _ => {
                // Not an object or an array: valid JSON is a wrong answer, anything else is cut.
                let answer: Value = serde_json::from_slice(&bytes).map_err(unparsable)?;
                let shown: String = answer.to_string().chars().take(200).collect();
                return Err(malformed(format!("expected a JSON-RPC response, got {shown}")).into());
            }
        };
        let mut slots: Vec<Option<Response>> = (0..calls.len()).map(|_| None).collect();
        for response in responses {
            let index = response
                .id
                .as_u64()
                .and_then(|id| id.checked_sub(first_id))
                .filter(|i| *i < calls.len() as u64)
                .ok_or_else(|| malformed(format!("unexpected response id {}", response.id)))?;
            slots[index as usize] = Some(response);
        }
        let mut results = Vec::with_capacity(calls.len());
        for (slot, (method, params)) in slots.into_iter().zip(calls) {
            let response =
                slot.ok_or_else(|| malformed(format!("no answer to {method}({params})")))?;
            if let Some(error) = response.error {
                return Err(self.rpc_error(method, Some(error)).into());
            }
            let Some(result) = response.result else {
                if *method == "eth_getBlockByNumber" {
                    let block = params
                        .get(0)
                        .and_then(Value::as_str)
                        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
                        .unwrap_or(range.from);
                    return Err(SourceError::NotYetAvailable {
                        endpoint: self.label.clone(),
                        block,
                    }
                    .into());
                }
                return Err(malformed(format!("null result for {method}")).into());
            };
            results.push(
                serde_json::from_str(result.get())
                    .map_err(|e| malformed(format!("{method} answer does not parse: {e}")))?,
            );
        }
        Ok(results)
    }

    fn rpc_error(&self, method: &str, error: Option<ErrorObject>) -> SourceError {
        match error {
            Some(e) if e.code == RATE_LIMIT_CODE => SourceError::RateLimited {
                endpoint: self.label.clone(),
                retry_after_secs: None,
            },
            Some(e) => SourceError::Rpc {
                endpoint: self.label.clone(),
                method: method.to_owned(),
                code: e.code,
                message: e.message,
            },
            None => self.transport(format!("{method}: answer has neither result nor error")),
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        params: Value,
    ) -> Result<T, SourceError> {
        let range = BlockRange { from: 0, to: 0 };
        let mut results = self.batch::<T>(&[(method, params)], range).await?;
        results
            .pop()
            .ok_or_else(|| self.transport(format!("{method}: empty answer")))
    }
}

fn quantity(n: u64) -> String {
    format!("{n:#x}")
}

/// The full blocks of `range`, `per_request` calls (`eth_getBlockByNumber`) a request.
fn block_calls(range: BlockRange, per_request: usize) -> Vec<Vec<(&'static str, Value)>> {
    let numbers: Vec<u64> = range.blocks().collect();
    numbers
        .chunks(per_request.max(1))
        .map(|chunk| {
            chunk
                .iter()
                .map(|n| ("eth_getBlockByNumber", json!([quantity(*n), true])))
                .collect()
        })
        .collect()
}

/// The logs of `range`, and the block below it (its hash must be the first block's parent:
/// without it a corrupted parent hash at a batch edge would pass for a reorg), in one request.
fn side_calls(range: BlockRange) -> Vec<(&'static str, Value)> {
    let mut calls = vec![(
        "eth_getLogs",
        json!([{"fromBlock": quantity(range.from), "toBlock": quantity(range.to)}]),
    )];
    if range.from > 0 {
        calls.push((
            "eth_getBlockByNumber",
            json!([quantity(range.from - 1), false]),
        ));
    }
    calls
}

/// The JSON-RPC bodies fetching `range` sends to an endpoint that takes batches, with
/// `per_request` block calls a request: what a benchmark replays to measure the node alone.
pub fn range_request_bodies(range: BlockRange, per_request: usize) -> Vec<Value> {
    block_calls(range, per_request)
        .into_iter()
        .chain(std::iter::once(side_calls(range)))
        .map(|calls| {
            let mut bodies: Vec<Value> = calls
                .into_iter()
                .enumerate()
                .map(|(id, (method, params))| {
                    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
                })
                .collect();
            // One call goes alone, as `http_batch` sends it.
            match bodies.len() {
                1 => bodies.remove(0),
                _ => Value::Array(bodies),
            }
        })
        .collect()
}

#[async_trait]
impl ChainSource for EvmRpcSource {
    async fn chain_id(&self) -> Result<u64, SourceError> {
        let id: alloy_primitives::U64 = self.call("eth_chainId", json!([])).await?;
        Ok(id.to::<u64>())
    }

    async fn head(&self) -> Result<u64, SourceError> {
        let head: alloy_primitives::U64 = self.call("eth_blockNumber", json!([])).await?;
        Ok(head.to::<u64>())
    }

    async fn genesis_hash(&self) -> Result<String, SourceError> {
        let genesis: BlockAnchor = self
            .call("eth_getBlockByNumber", json!([quantity(0), false]))
            .await?;
        if genesis.number.to::<u64>() != 0 {
            return Err(SourceError::Malformed {
                endpoint: self.label.clone(),
                range: BlockRange { from: 0, to: 0 },
                message: format!("asked for block 0, got block {}", genesis.number),
            });
        }
        Ok(format!("{:#x}", genesis.hash))
    }

    #[tracing::instrument(name = "fetch_range", skip(self), fields(endpoint = %self.label, range = %range))]
    async fn fetch_range(&self, range: BlockRange) -> Result<BlockBundle, SourceError> {
        let block_requests = block_calls(range, self.settings.batch_size)
            .into_iter()
            .map(|calls| async move { self.batch::<RpcBlock>(&calls, range).await });
        let side_calls = side_calls(range);
        let side_request = self.batch::<Box<RawValue>>(&side_calls, range);
        let (blocks, side) =
            tokio::join!(futures::future::try_join_all(block_requests), side_request);
        let blocks: Vec<RpcBlock> = blocks?.into_iter().flatten().collect();
        let malformed = |message: String| SourceError::Malformed {
            endpoint: self.label.clone(),
            range,
            message,
        };
        let mut side = side?.into_iter();
        let logs: Vec<RpcLog> = side
            .next()
            .map(|raw| serde_json::from_str(raw.get()))
            .transpose()
            .map_err(|e| malformed(format!("eth_getLogs answer does not parse: {e}")))?
            .unwrap_or_default();
        // An anchor that does not parse or is another block cannot vouch for anything (and a
        // bad block below must not fail the range above it): the check is skipped, and the
        // write still checks the stored neighbour.
        let below = range.from.saturating_sub(1);
        let anchor = side
            .next()
            .and_then(|raw| serde_json::from_str::<BlockAnchor>(raw.get()).ok())
            .filter(|a| a.number.to::<u64>() == below);
        let mut bundle = BlockBundle::from_rpc(range, blocks, logs).map_err(malformed)?;
        if let Some(first) = bundle.blocks.first() {
            let expected = match (range.from, anchor) {
                (0, _) => Some(format!("{:#x}", alloy_primitives::B256::ZERO)),
                (_, Some(anchor)) => Some(format!("{:#x}", anchor.hash)),
                (_, None) => None,
            };
            if let Some(expected) = expected {
                if first.parent_hash != expected {
                    return Err(malformed(format!(
                        "block {} has parent hash {} but block {below} has hash {expected}",
                        first.number, first.parent_hash
                    )));
                }
                bundle.first_parent_verified = true;
            }
        }
        Ok(bundle)
    }
}

/// The block below a range, as much of it as the parent check needs.
#[derive(Deserialize)]
struct BlockAnchor {
    number: alloy_primitives::U64,
    hash: alloy_primitives::B256,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_is_fetched_in_chunks_of_full_blocks_plus_one_request_for_logs_and_the_block_below() {
        let range = BlockRange::new(100, 349).expect("range");
        let bodies = range_request_bodies(range, 100);
        assert_eq!(bodies.len(), 4, "3 chunks of blocks and the side request");
        let sizes: Vec<usize> = bodies
            .iter()
            .map(|b| b.as_array().map_or(1, Vec::len))
            .collect();
        assert_eq!(sizes, [100, 100, 50, 2]);
        assert_eq!(bodies[0][0]["method"], "eth_getBlockByNumber");
        assert_eq!(bodies[0][0]["params"], json!(["0x64", true]));
        assert_eq!(bodies[3][0]["method"], "eth_getLogs");
        assert_eq!(bodies[3][1]["params"], json!(["0x63", false]));
        // From block 0 there is no block below: the logs request goes alone, unbatched.
        let first = range_request_bodies(BlockRange::new(0, 9).expect("range"), 100);
        assert_eq!(first.len(), 2);
        assert_eq!(first[1]["method"], "eth_getLogs");
    }
}
