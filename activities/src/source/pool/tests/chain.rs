//! A test-only block generator for the pool tests: linked, empty blocks whose hashes depend on a
//! seed, so that two chains with different seeds have different genesis blocks. The full
//! deterministic devnet (transactions, logs, JSON-RPC) is in the `blockfill-devnet` crate, which
//! depends on this one and so cannot serve these in-crate tests.

use alloy_primitives::{B256, keccak256};
use async_trait::async_trait;

use crate::{
    source::{BlockBundle, BlockRow, ChainSource, SourceError},
    types::BlockRange,
};

/// What a [`TestChain`] looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TestChainConfig {
    /// Chain id reported by [`ChainSource::chain_id`]. Default: 1337.
    pub(super) chain_id: u64,
    /// Number of blocks (head = blocks - 1). Default: 100,000.
    pub(super) blocks: u64,
    /// Seed mixed into every hash, so two chains differ. Default: 0.
    pub(super) seed: u64,
}

impl Default for TestChainConfig {
    fn default() -> Self {
        Self {
            chain_id: 1337,
            blocks: 100_000,
            seed: 0,
        }
    }
}

/// A chain of `blocks` linked blocks without transactions.
#[derive(Debug)]
pub(super) struct TestChain {
    config: TestChainConfig,
}

impl TestChain {
    pub(super) fn new(config: TestChainConfig) -> Self {
        Self { config }
    }

    /// The newest block.
    pub(super) fn head_number(&self) -> u64 {
        self.config.blocks.saturating_sub(1)
    }

    /// The hash of block `number`.
    pub(super) fn block_hash(&self, number: u64) -> B256 {
        let mut input = Vec::with_capacity(21);
        input.extend_from_slice(b"block");
        input.extend_from_slice(&self.config.seed.to_be_bytes());
        input.extend_from_slice(&number.to_be_bytes());
        keccak256(&input)
    }

    fn block(&self, number: u64) -> BlockRow {
        let parent = if number == 0 {
            B256::ZERO
        } else {
            self.block_hash(number - 1)
        };
        BlockRow {
            number,
            hash: format!("{:#x}", self.block_hash(number)),
            parent_hash: format!("{parent:#x}"),
            timestamp: 1_700_000_000 + number * 12,
            miner: format!("{:#x}", alloy_primitives::Address::ZERO),
            gas_used: 0,
            gas_limit: 30_000_000,
            base_fee_per_gas: Some("7".to_owned()),
            tx_count: 0,
            log_count: 0,
        }
    }
}

#[async_trait]
impl ChainSource for TestChain {
    async fn chain_id(&self) -> Result<u64, SourceError> {
        Ok(self.config.chain_id)
    }

    async fn head(&self) -> Result<u64, SourceError> {
        Ok(self.head_number())
    }

    async fn fetch_range(&self, range: BlockRange) -> Result<BlockBundle, SourceError> {
        if range.to > self.head_number() {
            return Err(SourceError::NotYetAvailable {
                endpoint: "test chain".to_owned(),
                block: range.from.max(self.head_number() + 1),
            });
        }
        Ok(BlockBundle {
            blocks: range.blocks().map(|n| self.block(n)).collect(),
            // Every parent hash derives from the block below: nothing to cross-check.
            first_parent_verified: true,
            ..BlockBundle::default()
        })
    }
}

#[tokio::test]
async fn test_chains_link_their_blocks_and_differ_by_seed() {
    let chain = TestChain::new(TestChainConfig {
        blocks: 100,
        ..TestChainConfig::default()
    });
    let bundle = chain
        .fetch_range(BlockRange { from: 0, to: 99 })
        .await
        .expect("served");
    assert_eq!(bundle.blocks.len(), 100);
    assert_eq!(bundle.blocks[0].parent_hash, format!("{:#x}", B256::ZERO));
    for pair in bundle.blocks.windows(2) {
        assert_eq!(pair[1].parent_hash, pair[0].hash);
    }
    assert!(matches!(
        chain.fetch_range(BlockRange { from: 99, to: 100 }).await,
        Err(SourceError::NotYetAvailable { block: 100, .. })
    ));
    let other = TestChain::new(TestChainConfig {
        seed: 7,
        ..TestChainConfig::default()
    });
    assert_ne!(chain.block_hash(0), other.block_hash(0));
}
