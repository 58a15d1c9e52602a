//! The JSON-RPC shapes of blocks, transactions and logs, as much of them as we index.
//!
//! Strictly typed with alloy's primitives: a hash that is not 32 bytes or a quantity that is not
//! hex fails to parse, which makes it a malformed answer instead of a bad row.

use alloy_primitives::{Address, B256, Bytes, U64, U256};
use serde::{Deserialize, Serialize};

/// A block as `eth_getBlockByNumber(n, true)` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RpcBlock {
    /// Block number.
    pub number: U64,
    /// Block hash.
    pub hash: B256,
    /// Parent block hash.
    pub parent_hash: B256,
    /// Unix timestamp in seconds.
    pub timestamp: U64,
    /// Fee recipient.
    pub miner: Address,
    /// Gas used by all transactions.
    pub gas_used: U64,
    /// Gas limit.
    pub gas_limit: U64,
    /// EIP-1559 base fee, absent before London.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_fee_per_gas: Option<U256>,
    /// Full transactions, in block order.
    pub transactions: Vec<RpcTransaction>,
}

/// A transaction inside a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RpcTransaction {
    /// Transaction hash.
    pub hash: B256,
    /// Hash of the including block.
    pub block_hash: Option<B256>,
    /// Number of the including block.
    pub block_number: Option<U64>,
    /// Position in the block.
    pub transaction_index: Option<U64>,
    /// Sender.
    pub from: Address,
    /// Recipient; none for contract creation.
    pub to: Option<Address>,
    /// Value in wei.
    pub value: U256,
    /// Sender nonce.
    pub nonce: U64,
    /// Gas limit.
    pub gas: U64,
    /// Gas price (legacy) or effective gas price where the node reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gas_price: Option<U256>,
    /// Call data.
    pub input: Bytes,
    /// EIP-2718 transaction type.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub tx_type: Option<U64>,
}

/// A log as `eth_getLogs` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RpcLog {
    /// Emitting contract.
    pub address: Address,
    /// Indexed topics.
    pub topics: Vec<B256>,
    /// Non-indexed data.
    pub data: Bytes,
    /// Number of the including block.
    pub block_number: U64,
    /// Hash of the including block.
    pub block_hash: B256,
    /// Emitting transaction.
    pub transaction_hash: B256,
    /// Position of the transaction in the block.
    pub transaction_index: U64,
    /// Position of the log in the block.
    pub log_index: U64,
    /// True when the log was removed by a reorg (subscriptions only).
    #[serde(default)]
    pub removed: bool,
}
