//! Domain types shared by every crate: chain names, block ranges, batch ids and job payloads.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::telemetry::TraceContext;

/// Why a domain value was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DomainError {
    /// A chain name must be usable in URLs and Redis keys.
    #[error(
        "invalid chain name {0:?}: use 1-64 characters from a-z, 0-9, '-' and '_', starting with a letter"
    )]
    InvalidChainName(String),
    /// A range must not be empty or reversed.
    #[error("invalid block range {from}-{to}: `from` must not be greater than `to`")]
    EmptyRange {
        /// First block asked for.
        from: u64,
        /// Last block asked for.
        to: u64,
    },
    /// Block numbers are stored as PostgreSQL `bigint`.
    #[error("block number {0} is too large: at most {max} is supported", max = i64::MAX)]
    BlockTooLarge(u64),
    /// A batch id has the form `{chain}:{from}-{to}`.
    #[error("invalid batch id {0:?}: expected `{{chain}}:{{from}}-{{to}}`")]
    InvalidBatchId(String),
}

/// The name a chain is registered under; used in URLs, batch ids and Redis keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChainName(String);

impl ChainName {
    /// Checks and wraps a chain name.
    pub fn parse(name: &str) -> Result<Self, DomainError> {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(DomainError::InvalidChainName(name.to_owned()))
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ChainName {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ChainName> for String {
    fn from(value: ChainName) -> Self {
        value.0
    }
}

impl fmt::Display for ChainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An inclusive range of block numbers, never empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BlockRange {
    /// First block, inclusive.
    pub from: u64,
    /// Last block, inclusive.
    pub to: u64,
}

impl BlockRange {
    /// A range from `from` to `to`, both inclusive.
    pub fn new(from: u64, to: u64) -> Result<Self, DomainError> {
        if from > to {
            return Err(DomainError::EmptyRange { from, to });
        }
        if to > i64::MAX as u64 {
            return Err(DomainError::BlockTooLarge(to));
        }
        Ok(Self { from, to })
    }

    /// How many blocks the range holds.
    pub fn len(&self) -> u64 {
        self.to - self.from + 1
    }

    /// A range is never empty; here for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether `block` lies in the range.
    pub fn contains(&self, block: u64) -> bool {
        self.from <= block && block <= self.to
    }

    /// Every block number in the range.
    pub fn blocks(&self) -> std::ops::RangeInclusive<u64> {
        self.from..=self.to
    }

    /// The range cut in two halves (the lower one takes the middle block of an odd range); a
    /// single block has no halves and comes back whole.
    pub fn halves(&self) -> Vec<BlockRange> {
        if self.len() < 2 {
            return vec![*self];
        }
        let mid = self.from + (self.len() / 2) - 1;
        vec![
            BlockRange {
                from: self.from,
                to: mid,
            },
            BlockRange {
                from: mid + 1,
                to: self.to,
            },
        ]
    }

    /// The part of both ranges, if any.
    pub fn intersect(&self, other: &BlockRange) -> Option<BlockRange> {
        let from = self.from.max(other.from);
        let to = self.to.min(other.to);
        (from <= to).then_some(BlockRange { from, to })
    }
}

impl fmt::Display for BlockRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.from, self.to)
    }
}

/// A batch's deterministic id, `{chain}:{from}-{to}`: planning the same range twice yields the same id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BatchId(String);

impl BatchId {
    /// The id of the batch covering `range` on `chain`.
    pub fn new(chain: &ChainName, range: BlockRange) -> Self {
        Self(format!("{chain}:{range}"))
    }

    /// Parses `{chain}:{from}-{to}` back into its parts.
    pub fn parse(id: &str) -> Result<(ChainName, BlockRange), DomainError> {
        let invalid = || DomainError::InvalidBatchId(id.to_owned());
        let (chain, range) = id.rsplit_once(':').ok_or_else(invalid)?;
        let (from, to) = range.split_once('-').ok_or_else(invalid)?;
        let from = from.parse().map_err(|_| invalid())?;
        let to = to.parse().map_err(|_| invalid())?;
        Ok((ChainName::parse(chain)?, BlockRange::new(from, to)?))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The payload of a batch job: fetch and index one range of one chain.
///
/// Ids and ranges only, never database rows: the worker reads the rest from PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchJob {
    /// Deterministic batch id, also the queue task id.
    pub batch_id: String,
    /// The chain to fetch from.
    pub chain: ChainName,
    /// The blocks to index.
    pub range: BlockRange,
    /// The backfill that planned this batch.
    pub backfill_id: Uuid,
    /// The trace this batch belongs to (W3C `traceparent`/`tracestate`), when traces are
    /// exported: the worker's span continues it. Absent in jobs pushed without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_context: Option<TraceContext>,
}

impl BatchJob {
    /// The queue task id of this batch in queue round `round`: the same batch, backfill and round
    /// always give the same id (so a repeated push is deduplicated); a new round gives a new one.
    pub fn task_id(&self, round: i32) -> String {
        task_id_of(&self.batch_id, self.backfill_id, round)
    }
}

/// The queue task id of batch `batch_id` of `backfill_id` in queue round `round` (see
/// [`BatchJob::task_id`]).
pub fn task_id_of(batch_id: &str, backfill_id: Uuid, round: i32) -> String {
    if round == 0 {
        format!("{batch_id}@{backfill_id}")
    } else {
        format!("{batch_id}@{backfill_id}#{round}")
    }
}

/// The payload of a scheduler job: plan one bounded window of one backfill, then continue as new.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedulerJob {
    /// The backfill to plan.
    pub backfill_id: Uuid,
    /// Incremented on every continue-as-new; a job whose generation is behind the checkpoint is stale.
    pub generation: i64,
    /// The trace of the request (or generation) that pushed it, when traces are exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_context: Option<TraceContext>,
}

impl SchedulerJob {
    /// Queue task id: unique per backfill and generation, so a re-push of the same generation is a no-op.
    pub fn task_id(&self) -> String {
        format!("{}:{}", self.backfill_id, self.generation)
    }
}

/// Queue names other than the batch lanes' (those are [`crate::store::Lane::queue`]).
pub mod lanes {
    /// Scheduler generations.
    pub const SCHEDULER: &str = "scheduler";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_names_are_checked() {
        assert!(ChainName::parse("eth-mainnet_1").is_ok());
        for bad in ["", "Eth", "1eth", "a b", "a:b", &"x".repeat(65)] {
            assert!(ChainName::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn ranges_reject_reversed_and_huge_bounds() {
        assert_eq!(
            BlockRange::new(5, 4),
            Err(DomainError::EmptyRange { from: 5, to: 4 })
        );
        assert!(BlockRange::new(0, u64::MAX).is_err());
        let range = BlockRange::new(3, 7).expect("valid");
        assert_eq!(range.len(), 5);
        assert_eq!(
            range.intersect(&BlockRange { from: 6, to: 10 }),
            Some(BlockRange { from: 6, to: 7 })
        );
        assert_eq!(range.intersect(&BlockRange { from: 8, to: 10 }), None);
    }

    #[test]
    fn halves_cover_the_range_without_overlap() {
        for (from, to) in [(0, 1), (0, 99), (10, 20), (7, 7), (5, 6)] {
            let range = BlockRange::new(from, to).expect("valid");
            let halves = range.halves();
            assert_eq!(halves.first().map(|h| h.from), Some(from));
            assert_eq!(halves.last().map(|h| h.to), Some(to));
            assert_eq!(halves.iter().map(BlockRange::len).sum::<u64>(), range.len());
            if range.len() > 1 {
                assert_eq!(halves.len(), 2);
                assert_eq!(halves[0].to + 1, halves[1].from);
                assert!(halves[0].len().abs_diff(halves[1].len()) <= 1);
            } else {
                assert_eq!(halves, vec![range]);
            }
        }
    }

    #[test]
    fn batch_ids_round_trip() {
        let chain = ChainName::parse("devnet").expect("valid");
        let range = BlockRange::new(100, 199).expect("valid");
        let id = BatchId::new(&chain, range);
        assert_eq!(id.as_str(), "devnet:100-199");
        assert_eq!(BatchId::parse(id.as_str()), Ok((chain, range)));
        assert!(BatchId::parse("devnet:100").is_err());
        assert!(BatchId::parse("devnet:9-1").is_err());
    }
}
