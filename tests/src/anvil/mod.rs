//! Anvil (Foundry 1.7.1) as a real EVM node on loopback for integration tests and benchmarks.
//!
//! [`anvil_binary`] finds or installs the binary (npm package `@foundry-rs/anvil-linux-amd64`,
//! installed by `scripts/install-anvil.sh` into `<workspace>/.cache/anvil`). [`Anvil::start`]
//! runs one node per test on a free port of 127.0.0.1 and kills it when the handle is dropped.
//!
//! Every node is started with `--hardfork cancun --prune-history --quiet --timestamp
//! 1700000000` (without cancun, i.e. with the default prague, mining is ~200x slower; without
//! `--prune-history` anvil writes gigabytes of state under `~/.foundry/anvil/tmp`), and
//! then configured so that chains are deterministic and only grow when a helper mines:
//!
//! - automine is off (`evm_setAutomine false`): a transaction sent through [`Anvil::rpc`] stays
//!   pending until something mines (`evm_mine`, [`Anvil::mine`], ...);
//! - block `n` has timestamp [`GENESIS_TIMESTAMP`]` + n * `[`BLOCK_TIME_SECS`]
//!   (`anvil_setBlockTimestampInterval`; `--timestamp` alone is not enough, anvil adds the
//!   wall-clock time elapsed since start);
//! - the log-emitting contract of the chain README is present at [`LOG_CONTRACT`] from genesis
//!   on (installed with `anvil_setCode`, so no block is mined for it and it survives every
//!   revert and reorg). A call emits one log `LOG2(topic0 = `[`TRANSFER_TOPIC`]`, topic1 =
//!   caller, data = calldata)`.
//!
//! Building the same [`ChainSpec`] on two fresh nodes yields identical block hashes.
//!
//! Reorgs: [`Anvil::reorg`] uses `anvil_reorg` and needs a node started with
//! `--prune-history N`, N > depth (`Anvil::start_with_args(&["--prune-history", "64"])`), and
//! mining on such nodes gets slower as the chain grows (keep them to a few thousand blocks;
//! 2,000 blocks with 400 transactions take 0.6 s).
//! [`Anvil::snapshot`] + [`Anvil::reorg_from_snapshot`] (`evm_snapshot`/`evm_revert`) work on
//! every node, including the default `--prune-history` one and long chains.
//!
//! # Layout
//! - `binary`: finding or installing the anvil binary ([`anvil_binary`]).
//! - `node`: one running node ([`Anvil`]): starting it, JSON-RPC calls and batches ([`RpcError`]).
//! - `chain`: growing and reorganizing its chain ([`Anvil::build_chain`], [`Anvil::reorg`],
//!   [`Anvil::reorg_from_snapshot`]).

mod binary;
mod chain;
mod node;
#[cfg(test)]
mod tests;

use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;

pub use binary::anvil_binary;
pub use chain::{ChainSpec, ChainSummary, ReorgOutcome};
pub use node::{Anvil, RpcError};

/// The Anvil release `scripts/install-anvil.sh` installs.
pub const ANVIL_VERSION: &str = "1.7.1";
/// Environment variable naming an anvil binary to use instead of the cached/installed one.
pub const ANVIL_BIN_ENV: &str = "BLOCKFILL_ANVIL_BIN";
/// Timestamp of block 0 (`--timestamp`).
pub const GENESIS_TIMESTAMP: u64 = 1_700_000_000;
/// Seconds between consecutive blocks: block `n` has timestamp `GENESIS_TIMESTAMP + n * 12`.
pub const BLOCK_TIME_SECS: u64 = 12;
/// Address of the log-emitting contract present on every node started by this module.
pub const LOG_CONTRACT: &str = "0x00000000000000000000000000000000000b10cf";
/// Init code of the log-emitting contract (from the chain README): a 12-byte constructor that
/// returns the 45-byte runtime [`LOG_CONTRACT_RUNTIME`].
pub const LOG_CONTRACT_INIT_CODE: &str = "0x602d600c600039602d6000f3366000600037337fddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef366000a200";
/// Runtime code of the log-emitting contract: copies the calldata to memory and emits
/// `LOG2(topic0 = TRANSFER_TOPIC, topic1 = caller, data = calldata)`.
pub const LOG_CONTRACT_RUNTIME: &str =
    "0x366000600037337fddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef366000a200";
/// `keccak256("Transfer(address,address,uint256)")`, topic 0 of every log of [`LOG_CONTRACT`].
pub const TRANSFER_TOPIC: &str =
    "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";

/// Where `scripts/install-anvil.sh` puts the binary, relative to the workspace root.
const CACHED_BIN: &str = ".cache/anvil/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil";
/// Gas limit of a plain value transfer.
const TRANSFER_GAS: u64 = 21_000;
/// Gas limit of a call to [`LOG_CONTRACT`] (uses about 24k with 32 bytes of calldata).
const CALL_GAS: u64 = 100_000;
/// Value of the plain transfers, in wei.
const TRANSFER_VALUE: u64 = 1_000_000_000;
/// How long [`Anvil::start`] waits for `eth_chainId` to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Start attempts (a free port can be taken by someone else before anvil binds it).
const START_ATTEMPTS: usize = 3;
/// Elements per JSON-RPC batch in the helpers.
const BATCH: u64 = 500;
/// Bytes of anvil's stderr kept for error messages.
const STDERR_KEEP: usize = 16 * 1024;

/// `n` as a JSON-RPC quantity (`0x`-prefixed hex, no leading zeros).
fn quantity(n: u64) -> String {
    format!("{n:#x}")
}

/// Parses a JSON-RPC quantity.
fn parse_quantity(value: &Value) -> Result<u64> {
    let s = value
        .as_str()
        .with_context(|| format!("expected a hex quantity, got {value}"))?;
    let digits = s
        .strip_prefix("0x")
        .with_context(|| format!("expected a hex quantity, got {s}"))?;
    u64::from_str_radix(digits, 16).with_context(|| format!("expected a hex quantity, got {s}"))
}
