//! Index rows: what one fetched range becomes in PostgreSQL. The transform from JSON-RPC shapes
//! to rows is pure ([`BlockBundle::from_rpc`]) and checks the answer's consistency on the way.

use std::collections::HashMap;

use alloy_primitives::B256;

use super::rpc_types::{RpcBlock, RpcLog};
use crate::types::BlockRange;

/// One row of `blocks`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRow {
    /// Block number.
    pub number: u64,
    /// `0x`-prefixed lowercase hash.
    pub hash: String,
    /// `0x`-prefixed lowercase parent hash.
    pub parent_hash: String,
    /// Unix seconds.
    pub timestamp: u64,
    /// Fee recipient.
    pub miner: String,
    /// Gas used.
    pub gas_used: u64,
    /// Gas limit.
    pub gas_limit: u64,
    /// Base fee in wei, as a decimal string.
    pub base_fee_per_gas: Option<String>,
    /// Number of transactions.
    pub tx_count: u32,
    /// Number of logs.
    pub log_count: u32,
}

/// One row of `transactions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionRow {
    /// Including block.
    pub block_number: u64,
    /// Position in the block.
    pub tx_index: u32,
    /// Transaction hash.
    pub hash: String,
    /// Sender.
    pub from_address: String,
    /// Recipient, none for contract creation.
    pub to_address: Option<String>,
    /// Value in wei, as a decimal string.
    pub value: String,
    /// Sender nonce.
    pub nonce: u64,
    /// Gas limit.
    pub gas: u64,
    /// Gas price in wei, as a decimal string.
    pub gas_price: Option<String>,
    /// Call data, `0x`-prefixed hex.
    pub input: String,
    /// EIP-2718 type.
    pub tx_type: Option<u64>,
}

/// One row of `logs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRow {
    /// Including block.
    pub block_number: u64,
    /// Position of the log in the block.
    pub log_index: u32,
    /// Position of the emitting transaction in the block.
    pub tx_index: u32,
    /// Emitting transaction.
    pub tx_hash: String,
    /// Emitting contract.
    pub address: String,
    /// Topics, `0x`-prefixed hex.
    pub topics: Vec<String>,
    /// Data, `0x`-prefixed hex.
    pub data: String,
}

/// Everything indexed for one range: blocks in ascending order, their transactions and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockBundle {
    /// One row per block of the range, ascending.
    pub blocks: Vec<BlockRow>,
    /// All transactions of the range.
    pub transactions: Vec<TransactionRow>,
    /// All logs of the range.
    pub logs: Vec<LogRow>,
    /// Whether the source checked the first block's parent hash against the block below the
    /// range (or, for block 0, against the zero hash). When not, the pool asks another endpoint.
    pub first_parent_verified: bool,
}

/// `0x`-prefixed lowercase hex, as the index tables store hashes, addresses and byte strings.
fn hex(bytes: impl AsRef<[u8]>) -> String {
    alloy_primitives::hex::encode_prefixed(bytes)
}

impl BlockBundle {
    /// Builds the rows for `range` from the node's blocks (in any order) and logs, checking that:
    /// every block of the range is there exactly once, parent hashes link inside the range,
    /// transactions belong to their block, and every log points at a block and transaction of the
    /// range with the right hash. Returns what is wrong otherwise.
    pub fn from_rpc(
        range: BlockRange,
        mut blocks: Vec<RpcBlock>,
        logs: Vec<RpcLog>,
    ) -> Result<Self, String> {
        blocks.sort_by_key(|b| b.number);
        let expected = range.len() as usize;
        if blocks.len() != expected {
            return Err(format!("expected {expected} blocks, got {}", blocks.len()));
        }
        let mut bundle = BlockBundle::default();
        let mut hash_by_number: HashMap<u64, (B256, u32)> = HashMap::with_capacity(expected);
        for (offset, block) in blocks.iter().enumerate() {
            let number = block.number.to::<u64>();
            let want = range.from + offset as u64;
            if number != want {
                return Err(format!("expected block {want}, got block {number}"));
            }
            let hash = hex(block.hash);
            let parent_hash = hex(block.parent_hash);
            if let Some(previous) = bundle.blocks.last()
                && previous.hash != parent_hash
            {
                return Err(format!(
                    "block {number} has parent hash {parent_hash} but block {} has hash {}",
                    previous.number, previous.hash
                ));
            }
            for (index, tx) in block.transactions.iter().enumerate() {
                if tx.block_number.is_some_and(|n| n.to::<u64>() != number)
                    || tx.block_hash.is_some_and(|h| h != block.hash)
                    || tx
                        .transaction_index
                        .is_some_and(|i| i.to::<u64>() != index as u64)
                {
                    return Err(format!(
                        "transaction {} at index {index} does not belong to block {number} ({hash})",
                        hex(tx.hash)
                    ));
                }
                bundle.transactions.push(TransactionRow {
                    block_number: number,
                    tx_index: index as u32,
                    hash: hex(tx.hash),
                    from_address: hex(tx.from),
                    to_address: tx.to.as_ref().map(hex),
                    value: tx.value.to_string(),
                    nonce: tx.nonce.to::<u64>(),
                    gas: tx.gas.to::<u64>(),
                    gas_price: tx.gas_price.map(|p| p.to_string()),
                    input: hex(&tx.input),
                    tx_type: tx.tx_type.map(|t| t.to::<u64>()),
                });
            }
            hash_by_number.insert(number, (block.hash, block.transactions.len() as u32));
            bundle.blocks.push(BlockRow {
                number,
                hash,
                parent_hash,
                timestamp: block.timestamp.to::<u64>(),
                miner: hex(block.miner),
                gas_used: block.gas_used.to::<u64>(),
                gas_limit: block.gas_limit.to::<u64>(),
                base_fee_per_gas: block.base_fee_per_gas.map(|f| f.to_string()),
                tx_count: block.transactions.len() as u32,
                log_count: 0,
            });
        }
        let mut log_counts: HashMap<u64, u32> = HashMap::new();
        for log in logs {
            if log.removed {
                continue;
            }
            let number = log.block_number.to::<u64>();
            let Some((block_hash, tx_count)) = hash_by_number.get(&number) else {
                return Err(format!("log for block {number} outside the range"));
            };
            if *block_hash != log.block_hash {
                return Err(format!(
                    "log {} of block {number} has block hash {} but the block is {}",
                    log.log_index,
                    hex(log.block_hash),
                    hex(block_hash)
                ));
            }
            let tx_index = log.transaction_index.to::<u64>();
            if tx_index >= u64::from(*tx_count) {
                return Err(format!(
                    "log {} of block {number} names transaction {tx_index}, the block has {tx_count}",
                    log.log_index
                ));
            }
            *log_counts.entry(number).or_default() += 1;
            bundle.logs.push(LogRow {
                block_number: number,
                log_index: log.log_index.to::<u64>() as u32,
                tx_index: tx_index as u32,
                tx_hash: hex(log.transaction_hash),
                address: hex(log.address),
                topics: log.topics.iter().map(hex).collect(),
                data: hex(&log.data),
            });
        }
        for block in &mut bundle.blocks {
            block.log_count = log_counts.get(&block.number).copied().unwrap_or(0);
        }
        Ok(bundle)
    }
}
