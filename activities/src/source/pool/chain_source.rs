//! The pool as a [`ChainSource`]: head and reorg reads only from an endpoint that confirmed its
//! chain id, range fetches at the lane's priority ([`PrioritizedPool`]).

use std::sync::Arc;

use async_trait::async_trait;

use super::{EndpointPool, RequestPriority};
use crate::{
    source::{BlockBundle, ChainSource, SourceError},
    types::BlockRange,
};

#[async_trait]
impl ChainSource for EndpointPool {
    async fn chain_id(&self) -> Result<u64, SourceError> {
        self.run(
            RequestPriority::Live,
            |_| 1,
            |client| async move { client.chain_id().await },
        )
        .await
    }

    async fn head(&self) -> Result<u64, SourceError> {
        self.run(
            RequestPriority::Live,
            |_| 2,
            |client| async move {
                let head = client.head().await?;
                self.confirm_chain_id(client.as_ref()).await?;
                Ok(head)
            },
        )
        .await
    }

    async fn fetch_range(&self, range: BlockRange) -> Result<BlockBundle, SourceError> {
        self.fetch_range_at(range, RequestPriority::Backfill).await
    }

    async fn block_hashes(&self, range: BlockRange) -> Result<Vec<(u64, String)>, SourceError> {
        self.run(
            RequestPriority::Backfill,
            |client| client.requests_for(range) + 1,
            |client| async move {
                let hashes = client.block_hashes(range).await;
                // Both a list of hashes and "not there" (the node rolled back) decide reorgs.
                if matches!(hashes, Ok(_) | Err(SourceError::NotYetAvailable { .. })) {
                    self.confirm_chain_id(client.as_ref()).await?;
                }
                hashes
            },
        )
        .await
    }
}

/// An [`EndpointPool`] whose range requests run at a fixed [`RequestPriority`].
#[derive(Debug, Clone)]
pub struct PrioritizedPool {
    pub(super) pool: Arc<EndpointPool>,
    pub(super) priority: RequestPriority,
}

#[async_trait]
impl ChainSource for PrioritizedPool {
    async fn chain_id(&self) -> Result<u64, SourceError> {
        self.pool.chain_id().await
    }

    async fn head(&self) -> Result<u64, SourceError> {
        self.pool.head().await
    }

    async fn fetch_range(&self, range: BlockRange) -> Result<BlockBundle, SourceError> {
        self.pool.fetch_range_at(range, self.priority).await
    }

    async fn block_hashes(&self, range: BlockRange) -> Result<Vec<(u64, String)>, SourceError> {
        self.pool.block_hashes(range).await
    }
}
