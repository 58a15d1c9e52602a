//! The batch queues: one Redis queue per lane and chain, `{prefix}:{lane}:{chain}`, so a worker
//! serves chosen chains (`blockfill-worker --chains`) and a chain nobody serves never fills
//! another chain's room under the bound. All share one Redis connection.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use crate::{
    queue::{JobQueue, QueueDepth, QueueError, QueueSettings},
    store::Lane,
    types::{BatchJob, ChainName},
};

/// The queues opened so far, by lane and chain.
type OpenQueues = HashMap<(Lane, ChainName), JobQueue<BatchJob>>;

/// The batch queues of every lane and chain, opened on first use. Cheap to clone.
#[derive(Clone)]
pub struct BatchQueues {
    /// The connection every queue shares (itself the queue of no lane and chain: never pushed to).
    connection: JobQueue<BatchJob>,
    opened: Arc<Mutex<OpenQueues>>,
}

impl std::fmt::Debug for BatchQueues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchQueues")
            .field("connection", &self.connection)
            .finish_non_exhaustive()
    }
}

impl BatchQueues {
    /// Connects to Redis (failing within a few seconds when it does not answer).
    pub async fn connect(settings: &QueueSettings) -> Result<Self, QueueError> {
        Ok(Self {
            connection: JobQueue::connect(settings, "batch-queues").await?,
            opened: Arc::default(),
        })
    }

    /// The queue of `lane`'s batches of `chain`.
    pub fn get(&self, lane: Lane, chain: &ChainName) -> JobQueue<BatchJob> {
        let mut opened = self.opened.lock().unwrap_or_else(PoisonError::into_inner);
        opened
            .entry((lane, chain.clone()))
            .or_insert_with(|| self.connection.sibling(&Self::lane_of_chain(lane, chain)))
            .clone()
    }

    /// The queue name, under the prefix, of `lane`'s batches of `chain`: `{lane}:{chain}`.
    ///
    /// Persisted names: never rename one that may still hold jobs.
    #[must_use]
    pub fn lane_of_chain(lane: Lane, chain: &ChainName) -> String {
        format!("{}:{chain}", lane.queue())
    }

    /// Whether Redis answers (reads the depth of an empty queue).
    pub async fn ping(&self) -> Result<QueueDepth, QueueError> {
        self.connection.depth().await
    }

    /// Removes finished jobs from the queues of `chains` in every lane; returns how many.
    pub async fn vacuum(&self, chains: &[ChainName]) -> Result<usize, QueueError> {
        let mut total = 0;
        for chain in chains {
            for lane in Lane::ALL {
                total += self.get(lane, chain).vacuum().await?;
            }
        }
        Ok(total)
    }
}
