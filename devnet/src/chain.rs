//! The devnet: a deterministic EVM-shaped chain generated on demand (no state, any height), with
//! transactions and logs. It is a [`ChainSource`] in-process and answers JSON-RPC through
//! [`DevnetChain::handle_rpc`], so `blockfill devnet` can serve it to the real client code.

use std::{
    collections::HashSet,
    sync::{
        RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use alloy_primitives::{Address, B256, Bytes, U64, U256, keccak256};
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json, value::RawValue};

use blockfill_activities::{
    BlockBundle, BlockRange, ChainSource,
    source::{RpcBlock, RpcLog, RpcTransaction, SourceError},
};

/// What the devnet looks like.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct DevnetConfig {
    /// Chain id reported by `eth_chainId`. Default: 1337.
    pub chain_id: u64,
    /// Number of blocks at start (head = blocks - 1). Default: 100,000.
    pub blocks: u64,
    /// Seed mixed into every hash, so two devnets differ. Default: 0.
    pub seed: u64,
    /// Transactions in every block: mainnet-like density for benchmarks. Default (`None`): 0 to
    /// 3, varying by block.
    pub transactions_per_block: Option<u64>,
    /// Logs every transaction emits. Default (`None`): one for each even transaction index.
    pub logs_per_transaction: Option<u64>,
}

impl Default for DevnetConfig {
    fn default() -> Self {
        Self {
            chain_id: 1337,
            blocks: 100_000,
            seed: 0,
            transactions_per_block: None,
            logs_per_transaction: None,
        }
    }
}

/// The "Transfer(address,address,uint256)" event signature.
const TRANSFER_TOPIC: B256 = B256::new([
    0xdd, 0xf2, 0x52, 0xad, 0x1b, 0xe2, 0xc8, 0x9b, 0x69, 0xc2, 0xb0, 0x68, 0xfc, 0x37, 0x8d, 0xaa,
    0x95, 0x2b, 0xa7, 0xf1, 0x63, 0xc4, 0xa1, 0x16, 0x28, 0xf5, 0x5a, 0x4d, 0xf5, 0x23, 0xb3, 0xef,
]);
const GENESIS_TIMESTAMP: u64 = 1_700_000_000;

/// A deterministic chain. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct DevnetChain {
    config: DevnetConfig,
    head: AtomicU64,
    /// Blocks whose every answer is malformed (see [`DevnetChain::set_malformed_blocks`]).
    malformed: RwLock<HashSet<u64>>,
    /// The few addresses transactions and logs use, hashed once.
    addresses: Vec<Address>,
}

/// Addresses depend on a block number modulo this and an index modulo [`ADDRESS_INDEXES`].
const ADDRESS_NUMBERS: u64 = 97;
const ADDRESS_INDEXES: u64 = 7;

impl DevnetChain {
    /// A devnet with `config.blocks` blocks.
    pub fn new(config: DevnetConfig) -> Self {
        let head = config.blocks.saturating_sub(1);
        let mut chain = Self {
            config,
            head: AtomicU64::new(head),
            malformed: RwLock::default(),
            addresses: Vec::new(),
        };
        chain.addresses = (0..ADDRESS_NUMBERS)
            .flat_map(|n| (0..ADDRESS_INDEXES).map(move |i| (n, i)))
            .map(|(n, i)| Address::from_word(chain.digest(b"address", n, i)))
            .collect();
        chain
    }

    /// Makes every answer for these blocks malformed until the set is replaced: over JSON-RPC,
    /// `eth_getBlockByNumber` returns the block without its `hash` field; in-process,
    /// [`ChainSource::fetch_range`] fails with [`SourceError::Malformed`]. An empty set clears it.
    pub fn set_malformed_blocks(&self, blocks: impl IntoIterator<Item = u64>) {
        let blocks: HashSet<u64> = blocks.into_iter().collect();
        *self
            .malformed
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = blocks;
    }

    /// Whether answers for block `number` are currently malformed.
    pub fn is_malformed(&self, number: u64) -> bool {
        self.malformed
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&number)
    }

    /// The current head.
    pub fn head_number(&self) -> u64 {
        self.head.load(Ordering::Relaxed)
    }

    /// Mines `blocks` more blocks (moves the head).
    pub fn advance(&self, blocks: u64) -> u64 {
        self.head.fetch_add(blocks, Ordering::Relaxed) + blocks
    }

    fn digest(&self, tag: &[u8], number: u64, index: u64) -> B256 {
        let mut input = Vec::with_capacity(tag.len() + 24);
        input.extend_from_slice(tag);
        input.extend_from_slice(&self.config.seed.to_be_bytes());
        input.extend_from_slice(&number.to_be_bytes());
        input.extend_from_slice(&index.to_be_bytes());
        keccak256(&input)
    }

    /// The hash of block `number`.
    pub fn block_hash(&self, number: u64) -> B256 {
        self.digest(b"block", number, 0)
    }

    /// How many transactions block `number` carries (the configured count, else 0 to 3,
    /// deterministic).
    pub fn tx_count(&self, number: u64) -> u64 {
        self.config
            .transactions_per_block
            .unwrap_or_else(|| (number.wrapping_mul(2_654_435_761) ^ self.config.seed) % 4)
    }

    /// How many logs transaction `index` of a block emits.
    fn logs_of_transaction(&self, index: u64) -> u64 {
        self.config
            .logs_per_transaction
            .unwrap_or(u64::from(index.is_multiple_of(2)))
    }

    fn address(&self, number: u64, index: u64) -> Address {
        self.addresses[(number % ADDRESS_NUMBERS) as usize * ADDRESS_INDEXES as usize
            + (index % ADDRESS_INDEXES) as usize]
    }

    /// Block `number` with full transactions, or `None` above the head.
    pub fn block(&self, number: u64) -> Option<RpcBlock> {
        if number > self.head_number() {
            return None;
        }
        let hash = self.block_hash(number);
        let parent_hash = if number == 0 {
            B256::ZERO
        } else {
            self.block_hash(number - 1)
        };
        let transactions = (0..self.tx_count(number))
            .map(|i| RpcTransaction {
                hash: self.digest(b"tx", number, i),
                block_hash: Some(hash),
                block_number: Some(U64::from(number)),
                transaction_index: Some(U64::from(i)),
                from: self.address(number, i),
                to: Some(self.address(number + 1, i + 1)),
                value: U256::from(number * 1_000 + i),
                nonce: U64::from(number / 97),
                gas: U64::from(21_000 + i * 10_000),
                gas_price: Some(U256::from(1_000_000_000u64)),
                input: if i % 2 == 0 {
                    Bytes::from(number.to_be_bytes().to_vec())
                } else {
                    Bytes::new()
                },
                tx_type: Some(U64::from(2)),
            })
            .collect();
        Some(RpcBlock {
            number: U64::from(number),
            hash,
            parent_hash,
            timestamp: U64::from(GENESIS_TIMESTAMP + number * 12),
            miner: self.address(number, 99),
            gas_used: U64::from(self.tx_count(number) * 21_000),
            gas_limit: U64::from(30_000_000u64),
            base_fee_per_gas: Some(U256::from(7u64)),
            transactions,
        })
    }

    /// The logs of blocks `from..=to` (clamped to the head): by default one per even transaction
    /// index, else the configured count per transaction.
    pub fn logs(&self, from: u64, to: u64) -> Vec<RpcLog> {
        let to = to.min(self.head_number());
        let mut logs = Vec::new();
        for number in from..=to {
            let hash = self.block_hash(number);
            let emitted = (0..self.tx_count(number))
                .flat_map(|i| std::iter::repeat_n(i, self.logs_of_transaction(i) as usize));
            for (log_index, i) in emitted.enumerate() {
                logs.push(RpcLog {
                    address: self.address(7, 7),
                    topics: vec![
                        TRANSFER_TOPIC,
                        self.address(number, i).into_word(),
                        self.address(number + 1, i + 1).into_word(),
                    ],
                    data: Bytes::from(U256::from(number * 1_000 + i).to_be_bytes::<32>().to_vec()),
                    block_number: U64::from(number),
                    block_hash: hash,
                    transaction_hash: self.digest(b"tx", number, i),
                    transaction_index: U64::from(i),
                    log_index: U64::from(log_index as u64),
                    removed: false,
                });
            }
        }
        logs
    }

    /// Answers one JSON-RPC request object or a batch (array) of them.
    pub fn handle_rpc(&self, request: &Value) -> Value {
        serde_json::from_slice(&self.handle_rpc_bytes(request)).unwrap_or(Value::Null)
    }

    /// [`DevnetChain::handle_rpc`]'s answer as JSON bytes, serialized straight from the typed
    /// blocks and logs (what the server sends: building a `Value` tree first would double the
    /// devnet's cost per block, and the devnet shares the benchmark's cores).
    pub fn handle_rpc_bytes(&self, request: &Value) -> Vec<u8> {
        let serialized = match request {
            Value::Array(calls) => serde_json::to_vec(
                &calls
                    .iter()
                    .map(|c| self.handle_call(c))
                    .collect::<Vec<_>>(),
            ),
            call => serde_json::to_vec(&self.handle_call(call)),
        };
        serialized.unwrap_or_else(|e| {
            serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32603, "message": e.to_string()}}))
                .unwrap_or_default()
        })
    }

    fn handle_call<'a>(&self, call: &'a Value) -> Answer<'a> {
        let id = call.get("id").unwrap_or(&Value::Null);
        let method = call.get("method").and_then(Value::as_str).unwrap_or("");
        let params = call.get("params").cloned().unwrap_or(Value::Array(vec![]));
        match self.dispatch(method, &params) {
            Ok(result) => Answer {
                jsonrpc: "2.0",
                id,
                result: Some(result),
                error: None,
            },
            Err((code, message)) => Answer {
                jsonrpc: "2.0",
                id,
                result: None,
                error: Some(json!({"code": code, "message": message})),
            },
        }
    }

    fn dispatch(&self, method: &str, params: &Value) -> Result<Box<RawValue>, (i64, String)> {
        let invalid = |what: &str| (-32602, format!("invalid params: {what}"));
        match method {
            "eth_chainId" => to_json(&format!("{:#x}", self.config.chain_id)),
            "net_version" => to_json(&self.config.chain_id.to_string()),
            "eth_blockNumber" => to_json(&format!("{:#x}", self.head_number())),
            "eth_getBlockByNumber" => {
                let tag = params.get(0).ok_or_else(|| invalid("missing block"))?;
                let number = self
                    .block_tag(tag)
                    .ok_or_else(|| invalid("bad block tag"))?;
                match self.block(number) {
                    Some(block) if self.is_malformed(number) => {
                        let mut value =
                            serde_json::to_value(&block).map_err(|e| (-32603, e.to_string()))?;
                        if let Some(object) = value.as_object_mut() {
                            object.remove("hash");
                        }
                        to_json(&value)
                    }
                    Some(block) => to_json(&block),
                    None => to_json(&Value::Null),
                }
            }
            "eth_getLogs" => {
                let filter = params.get(0).ok_or_else(|| invalid("missing filter"))?;
                let from = filter
                    .get("fromBlock")
                    .and_then(|t| self.block_tag(t))
                    .ok_or_else(|| invalid("bad fromBlock"))?;
                let to = filter
                    .get("toBlock")
                    .and_then(|t| self.block_tag(t))
                    .ok_or_else(|| invalid("bad toBlock"))?;
                if to < from {
                    return Err(invalid("toBlock before fromBlock"));
                }
                if to - from > 10_000 {
                    return Err((-32005, "query exceeds 10000 blocks".to_owned()));
                }
                to_json(&self.logs(from, to))
            }
            _ => Err((-32601, format!("method {method} not found"))),
        }
    }

    fn block_tag(&self, tag: &Value) -> Option<u64> {
        match tag.as_str()? {
            "latest" | "safe" | "finalized" | "pending" => Some(self.head_number()),
            "earliest" => Some(0),
            hex => u64::from_str_radix(hex.strip_prefix("0x")?, 16).ok(),
        }
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Box<RawValue>, (i64, String)> {
    serde_json::value::to_raw_value(value).map_err(|e| (-32603, e.to_string()))
}

/// One JSON-RPC response object; `result` is already serialized.
#[derive(serde::Serialize)]
struct Answer<'a> {
    jsonrpc: &'static str,
    id: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Value>,
}

#[async_trait]
impl ChainSource for DevnetChain {
    async fn chain_id(&self) -> Result<u64, SourceError> {
        Ok(self.config.chain_id)
    }

    async fn head(&self) -> Result<u64, SourceError> {
        Ok(self.head_number())
    }

    async fn fetch_range(&self, range: BlockRange) -> Result<BlockBundle, SourceError> {
        if let Some(number) = range.blocks().find(|n| self.is_malformed(*n)) {
            return Err(SourceError::Malformed {
                endpoint: "devnet".to_owned(),
                range,
                message: format!("block {number} is set to be malformed"),
            });
        }
        let blocks = range
            .blocks()
            .map(|n| {
                self.block(n).ok_or(SourceError::NotYetAvailable {
                    endpoint: "devnet".to_owned(),
                    block: n,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let logs = self.logs(range.from, range.to);
        let mut bundle = BlockBundle::from_rpc(range, blocks, logs).map_err(|message| {
            SourceError::Malformed {
                endpoint: "devnet".to_owned(),
                range,
                message,
            }
        })?;
        // The devnet derives every parent hash from the block below: nothing to cross-check.
        bundle.first_parent_verified = true;
        Ok(bundle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn devnet_blocks_are_deterministic_and_linked() {
        let devnet = DevnetChain::new(DevnetConfig {
            blocks: 1_000,
            ..DevnetConfig::default()
        });
        let range = BlockRange::new(0, 999).expect("valid");
        let bundle = devnet.fetch_range(range).await.expect("fetch");
        assert_eq!(bundle.blocks.len(), 1_000);
        assert!(!bundle.transactions.is_empty());
        assert!(!bundle.logs.is_empty());
        assert_eq!(
            bundle,
            devnet.fetch_range(range).await.expect("fetch again")
        );
        let above = devnet
            .fetch_range(BlockRange::new(999, 1_000).expect("valid"))
            .await;
        assert!(matches!(
            above,
            Err(SourceError::NotYetAvailable { block: 1_000, .. })
        ));
    }

    #[tokio::test]
    async fn a_dense_devnet_has_the_configured_transactions_and_logs_in_every_block() {
        let devnet = DevnetChain::new(DevnetConfig {
            blocks: 20,
            transactions_per_block: Some(100),
            logs_per_transaction: Some(2),
            ..DevnetConfig::default()
        });
        let bundle = devnet
            .fetch_range(BlockRange::new(10, 19).expect("valid"))
            .await
            .expect("fetch");
        assert_eq!(bundle.transactions.len(), 10 * 100);
        assert_eq!(bundle.logs.len(), 10 * 100 * 2);
        assert!(
            bundle
                .blocks
                .iter()
                .all(|b| b.tx_count == 100 && b.log_count == 200)
        );
        let indexes: Vec<u32> = bundle
            .logs
            .iter()
            .filter(|l| l.block_number == 10)
            .map(|l| l.log_index)
            .collect();
        assert_eq!(indexes, (0..200).collect::<Vec<u32>>());
    }

    #[test]
    fn devnet_answers_json_rpc_batches() {
        let devnet = DevnetChain::new(DevnetConfig::default());
        let answer = devnet.handle_rpc(&json!([
            {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []},
            {"jsonrpc": "2.0", "id": 2, "method": "eth_getBlockByNumber", "params": ["0x10", true]},
            {"jsonrpc": "2.0", "id": 3, "method": "eth_nope", "params": []},
        ]));
        assert_eq!(answer[0]["result"], json!("0x1869f"));
        assert_eq!(answer[1]["result"]["number"], json!("0x10"));
        assert_eq!(answer[2]["error"]["code"], json!(-32601));
    }

    #[tokio::test]
    async fn malformed_blocks_fail_until_cleared() {
        let devnet = DevnetChain::new(DevnetConfig {
            blocks: 100,
            ..DevnetConfig::default()
        });
        let request = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": ["0x10", true]});
        let range = BlockRange::new(10, 20).expect("valid");
        devnet.set_malformed_blocks([16]);
        let answer = devnet.handle_rpc(&request);
        assert_eq!(answer["result"]["number"], json!("0x10"));
        assert!(answer["result"].get("hash").is_none(), "{answer}");
        assert!(serde_json::from_value::<RpcBlock>(answer["result"].clone()).is_err());
        assert!(matches!(
            devnet.fetch_range(range).await,
            Err(SourceError::Malformed { .. })
        ));
        devnet.set_malformed_blocks([]);
        let answer = devnet.handle_rpc(&request);
        assert!(serde_json::from_value::<RpcBlock>(answer["result"].clone()).is_ok());
        assert!(devnet.fetch_range(range).await.is_ok());
    }
}
