//! Growing a node's chain deterministically ([`Anvil::build_chain`], [`Anvil::mine`]) and
//! reorganizing it ([`Anvil::reorg`], [`Anvil::snapshot`] + [`Anvil::reorg_from_snapshot`]).

use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, ensure};
use serde_json::{Value, json};

use super::{
    Anvil, CALL_GAS, LOG_CONTRACT, TRANSFER_GAS, TRANSFER_VALUE, parse_quantity, quantity,
};

/// What [`Anvil::build_chain`] mines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainSpec {
    /// Number of new blocks.
    pub blocks: u64,
    /// Every `tx_every`-th new block carries transactions (0: none do).
    pub tx_every: u64,
    /// Transactions in each of those blocks (0: none).
    pub txs_per_block: u64,
}

/// What [`Anvil::build_chain`] mined.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainSummary {
    /// First new block (the head before the build + 1).
    pub first_block: u64,
    /// Head after the build (`first_block + spec.blocks - 1`).
    pub head: u64,
    /// Transactions mined.
    pub transactions: u64,
    /// Logs emitted (one per call to [`LOG_CONTRACT`]).
    pub logs: u64,
    /// Wall-clock time of the build.
    pub seconds: f64,
}

/// A replaced branch. `old_hashes[i]` and `new_hashes[i]` are the hashes at height
/// `fork_point + 1 + i` before and after the reorg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReorgOutcome {
    /// Last block common to both branches.
    pub fork_point: u64,
    /// Head before the reorg.
    pub old_head: u64,
    /// Head after the reorg.
    pub new_head: u64,
    /// Hashes of the old branch, heights `fork_point + 1 ..= old_head`.
    pub old_hashes: Vec<String>,
    /// Hashes of the new branch, heights `fork_point + 1 ..= new_head`.
    pub new_hashes: Vec<String>,
}

impl Anvil {
    /// Mines `blocks` empty blocks (`anvil_mine`; pending transactions, if any, go into the
    /// first). About 17,000 blocks/s on a default node.
    pub async fn mine(&self, blocks: u64) -> Result<()> {
        if blocks > 0 {
            self.rpc("anvil_mine", json!([quantity(blocks)])).await?;
        }
        Ok(())
    }

    /// Mines one block holding one call to [`LOG_CONTRACT`] (so one log), sent by the first
    /// dev account with unique calldata (so the block differs from any earlier one).
    pub async fn mine_with_transaction(&self) -> Result<()> {
        let seq = self.tx_seq.fetch_add(1, Ordering::Relaxed);
        let data = format!("0x{:064x}", (0xb10c_u128 << 64) | u128::from(seq));
        let tx = json!({
            "from": self.accounts[0],
            "to": LOG_CONTRACT,
            "data": data,
            "gas": quantity(CALL_GAS),
        });
        self.rpc("eth_sendTransaction", json!([tx])).await?;
        self.rpc("evm_mine", json!([])).await?;
        Ok(())
    }

    /// Mines `spec.blocks` new blocks. The `tx_every`-th, `2 * tx_every`-th, ... new block
    /// carries `txs_per_block` transactions, all other blocks are empty. The `j`-th transaction
    /// block (1-based) gets its transactions from dev account `j % 10` with consecutive nonces
    /// (so their order is fixed); the transactions
    /// of a build alternate, starting with a plain transfer of 1 gwei to the next dev account,
    /// then a call to [`LOG_CONTRACT`] whose 32-byte calldata (the log's data) is
    /// `block_number << 32 | transaction_index`.
    ///
    /// Per transaction block: one batch of `eth_sendTransaction` with explicit nonces, then one
    /// `anvil_mine` that mines it and the empty stretch after it. The node is the bottleneck:
    /// about 0.7 ms per transaction (anvil signs each one) plus about 13,000 empty blocks/s;
    /// 20,000 blocks with `tx_every = 10, txs_per_block = 2` (4,000 transactions) take 4.7-6.2 s
    /// on 2 cores (8.3 s while other tests run), the same 20,000 blocks without transactions
    /// 1.5 s.
    pub async fn build_chain(&self, spec: ChainSpec) -> Result<ChainSummary> {
        let started = Instant::now();
        let start = self.block_number().await?;
        let tx_blocks = if spec.tx_every == 0 || spec.txs_per_block == 0 {
            0
        } else {
            spec.blocks / spec.tx_every
        };
        let mut transactions = 0;
        let mut logs = 0;
        if tx_blocks == 0 {
            self.mine(spec.blocks).await?;
        } else {
            let accounts = self.accounts.len() as u64;
            let nonce_calls: Vec<(&str, Value)> = self
                .accounts
                .iter()
                .map(|a| ("eth_getTransactionCount", json!([a, "pending"])))
                .collect();
            let mut nonces = self
                .rpc_batch(&nonce_calls)
                .await?
                .iter()
                .map(parse_quantity)
                .collect::<Result<Vec<u64>>>()?;
            // The empty stretch before the first transaction block.
            self.mine(spec.tx_every - 1).await?;
            for k in 1..=tx_blocks {
                let number = start + k * spec.tx_every;
                let sender = usize::try_from(k % accounts)?;
                let recipient = &self.accounts[(sender + 1) % self.accounts.len()];
                let mut sends = Vec::new();
                for index in 0..spec.txs_per_block {
                    let nonce = quantity(nonces[sender]);
                    nonces[sender] += 1;
                    let tx = if transactions % 2 == 0 {
                        json!({
                            "from": self.accounts[sender],
                            "to": recipient,
                            "value": quantity(TRANSFER_VALUE),
                            "gas": quantity(TRANSFER_GAS),
                            "nonce": nonce,
                        })
                    } else {
                        logs += 1;
                        json!({
                            "from": self.accounts[sender],
                            "to": LOG_CONTRACT,
                            "data": format!("0x{:064x}", (u128::from(number) << 32) | u128::from(index)),
                            "gas": quantity(CALL_GAS),
                            "nonce": nonce,
                        })
                    };
                    transactions += 1;
                    sends.push(("eth_sendTransaction", json!([tx])));
                }
                self.rpc_batch(&sends)
                    .await
                    .with_context(|| format!("sending the transactions of block {number}"))?;
                // This block, then the empty stretch up to the next transaction block (or the
                // end of the build).
                let next = if k == tx_blocks {
                    start + spec.blocks
                } else {
                    number + spec.tx_every - 1
                };
                self.mine(next - number + 1).await?;
            }
        }
        let head = self.block_number().await?;
        ensure!(
            head == start + spec.blocks,
            "build_chain: head is {head}, expected {}",
            start + spec.blocks
        );
        let summary = ChainSummary {
            first_block: start + 1,
            head,
            transactions,
            logs,
            seconds: started.elapsed().as_secs_f64(),
        };
        tracing::debug!(?spec, ?summary, "built chain");
        Ok(summary)
    }

    /// Replaces the last `depth` blocks by a branch of `depth + 1` blocks whose first block
    /// holds one call to [`LOG_CONTRACT`] (calldata = hash of the replaced block at that
    /// height, so the new block always differs; the other new blocks are empty, and still get
    /// new hashes since their parents changed). The new head is `old_head + 1`.
    ///
    /// Uses `anvil_reorg [depth, [[tx, 0]]]` then `evm_mine`: works only on a node started
    /// with `--prune-history N`, N > depth (e.g. `Anvil::start_with_args(&["--prune-history",
    /// "64"])`). Measured with N = 64: depth 63 works on a fresh chain, 64 does not, and every
    /// earlier reorg whose blocks are still among the last N lowers the limit by one (after ten
    /// reorgs: 54); keep depths well below N. On a default node (`--prune-history` without a
    /// number) anvil answers `BlockOutOfRangeError` or "Required data unavailable" and this
    /// returns an error saying what to do; use [`Anvil::snapshot`] +
    /// [`Anvil::reorg_from_snapshot`] there. Takes about 6 ms.
    pub async fn reorg(&self, depth: u64) -> Result<ReorgOutcome> {
        ensure!(depth >= 1, "reorg depth must be at least 1");
        let old_head = self.block_number().await?;
        ensure!(
            depth <= old_head,
            "reorg depth {depth} exceeds the chain height {old_head}"
        );
        let fork_point = old_head - depth;
        let old_hashes = self.block_hashes(fork_point + 1, old_head).await?;
        let tx = json!({
            "from": self.accounts[0],
            "to": LOG_CONTRACT,
            "data": old_hashes[0],
            "gas": quantity(CALL_GAS),
        });
        self.rpc("anvil_reorg", json!([depth, [[tx, 0]]]))
            .await
            .with_context(|| {
                format!(
                    "anvil_reorg depth {depth}: the node must be started with --prune-history N, \
                     N > depth (Anvil::start_with_args(&[\"--prune-history\", \"64\"])); on \
                     other nodes use snapshot() + reorg_from_snapshot()"
                )
            })?;
        self.rpc("evm_mine", json!([])).await?;
        let new_head = self.block_number().await?;
        ensure!(
            new_head == old_head + 1,
            "after anvil_reorg + evm_mine the head is {new_head}, expected {}",
            old_head + 1
        );
        let new_hashes = self.block_hashes(fork_point + 1, new_head).await?;
        ensure!(
            new_hashes[0] != old_hashes[0],
            "anvil_reorg rebuilt block {} with the same hash",
            fork_point + 1
        );
        Ok(ReorgOutcome {
            fork_point,
            old_head,
            new_head,
            old_hashes,
            new_hashes,
        })
    }

    /// `evm_snapshot`: remembers the current state and head. Take it before mining the blocks
    /// a later [`Anvil::reorg_from_snapshot`] should replace. Works on every node. A snapshot
    /// can be reverted to once.
    pub async fn snapshot(&self) -> Result<String> {
        let head = self.block_number().await?;
        let id = self.rpc("evm_snapshot", json!([])).await?;
        let id = id
            .as_str()
            .with_context(|| format!("evm_snapshot returned {id}"))?
            .to_owned();
        self.snapshots
            .lock()
            .map_err(|_| anyhow!("snapshot map poisoned"))?
            .insert(id.clone(), head);
        Ok(id)
    }

    /// Reorganizes back to a [`Anvil::snapshot`]: `evm_revert`s to it (dropping every block
    /// mined since), then mines `new_blocks` blocks, the first holding one call to
    /// [`LOG_CONTRACT`] (calldata = hash of the old block at that height, if there was one),
    /// so every height above the snapshot gets a new hash. Pass more blocks than were mined
    /// since the snapshot to make the new branch the longer one. Works on every node (also
    /// the default `--prune-history` one and long chains).
    pub async fn reorg_from_snapshot(
        &self,
        snapshot_id: &str,
        new_blocks: u64,
    ) -> Result<ReorgOutcome> {
        ensure!(
            new_blocks >= 1,
            "reorg_from_snapshot needs at least one new block"
        );
        let fork_point = self
            .snapshots
            .lock()
            .map_err(|_| anyhow!("snapshot map poisoned"))?
            .remove(snapshot_id)
            .with_context(|| {
                format!(
                    "unknown or already used snapshot {snapshot_id} (take it with Anvil::snapshot)"
                )
            })?;
        let old_head = self.block_number().await?;
        let old_hashes = self.block_hashes(fork_point + 1, old_head).await?;
        let reverted = self.rpc("evm_revert", json!([snapshot_id])).await?;
        ensure!(
            reverted == Value::Bool(true),
            "evm_revert {snapshot_id} returned {reverted}"
        );
        let head = self.block_number().await?;
        ensure!(
            head == fork_point,
            "after evm_revert {snapshot_id} the head is {head}, expected {fork_point}"
        );
        let seq = self.tx_seq.fetch_add(1, Ordering::Relaxed);
        let data = old_hashes
            .first()
            .cloned()
            .unwrap_or_else(|| format!("0x{:064x}", (0x5eed_u128 << 64) | u128::from(seq)));
        let tx = json!({
            "from": self.accounts[0],
            "to": LOG_CONTRACT,
            "data": data,
            "gas": quantity(CALL_GAS),
        });
        self.rpc("eth_sendTransaction", json!([tx])).await?;
        self.mine(new_blocks).await?;
        let new_head = self.block_number().await?;
        ensure!(
            new_head == fork_point + new_blocks,
            "after the reorg the head is {new_head}, expected {}",
            fork_point + new_blocks
        );
        let new_hashes = self.block_hashes(fork_point + 1, new_head).await?;
        Ok(ReorgOutcome {
            fork_point,
            old_head,
            new_head,
            old_hashes,
            new_hashes,
        })
    }
}
