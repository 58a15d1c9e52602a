//! Which chain an endpoint serves. [`ChainIdentity`] is what the chain's row says every endpoint
//! must serve (its chain id and genesis hash); [`IdentityState`] is what the pool found an endpoint
//! serving. Only a `verified` endpoint is routed to, and the state sits in an atomic
//! (`IdentityCell`) so that choosing an endpoint pays one load for it.

use std::sync::atomic::{AtomicU8, Ordering};

use serde::{Deserialize, Serialize};

/// What every endpoint of a chain must serve.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainIdentity {
    /// The `eth_chainId` every endpoint must answer (`None`: not checked).
    pub chain_id: Option<u64>,
    /// The hash of block 0 every endpoint must serve (`None`: not checked, as for chains
    /// registered before genesis hashes were recorded).
    pub genesis_hash: Option<String>,
}

impl ChainIdentity {
    /// A chain with `chain_id` and, when known, `genesis_hash`.
    pub fn new(chain_id: u64, genesis_hash: Option<String>) -> Self {
        Self {
            chain_id: Some(chain_id),
            genesis_hash,
        }
    }

    /// Why an endpoint that answers `chain_id` does not serve this chain; `None` when it does.
    pub fn chain_id_mismatch(&self, chain_id: u64) -> Option<String> {
        self.chain_id
            .filter(|expected| *expected != chain_id)
            .map(|expected| format!("serves chain id {chain_id}, expected {expected}"))
    }

    /// Why an endpoint whose block 0 is `genesis` does not serve this chain; `None` when it does.
    pub fn genesis_mismatch(&self, genesis: &str) -> Option<String> {
        self.genesis_hash
            .as_deref()
            .filter(|expected| !expected.eq_ignore_ascii_case(genesis))
            .map(|expected| format!("genesis {genesis} differs from the chain's {expected}"))
    }
}

impl std::fmt::Display for ChainIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.chain_id, &self.genesis_hash) {
            (Some(id), Some(genesis)) => write!(f, "chain id {id}, genesis {genesis}"),
            (Some(id), None) => write!(f, "chain id {id}"),
            (None, Some(genesis)) => write!(f, "genesis {genesis}"),
            (None, None) => f.write_str("any chain"),
        }
    }
}

/// What an endpoint was found serving, ordered by severity (the API merges reports with `max`).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum IdentityState {
    /// Its chain id and genesis match the chain's: it is routed to.
    Verified,
    /// Not checked yet, unreachable when checked, or down since it was verified: checked before
    /// it is used.
    #[default]
    Unverified,
    /// It serves another chain: never routed to, checked again periodically.
    WrongChain,
}

impl IdentityState {
    /// The name used in the API, logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verified => "verified",
            Self::Unverified => "unverified",
            Self::WrongChain => "wrong_chain",
        }
    }

    fn from_u8(value: u8) -> Self {
        match value {
            0 => Self::Verified,
            2 => Self::WrongChain,
            _ => Self::Unverified,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            Self::Verified => 0,
            Self::Unverified => 1,
            Self::WrongChain => 2,
        }
    }
}

/// One endpoint's [`IdentityState`], read without a lock.
#[derive(Debug)]
pub(super) struct IdentityCell(AtomicU8);

impl Default for IdentityCell {
    fn default() -> Self {
        Self(AtomicU8::new(IdentityState::Unverified.to_u8()))
    }
}

impl IdentityCell {
    /// The state now.
    pub(super) fn get(&self) -> IdentityState {
        IdentityState::from_u8(self.0.load(Ordering::Acquire))
    }

    /// Sets the state; returns the previous one.
    pub(super) fn set(&self, state: IdentityState) -> IdentityState {
        IdentityState::from_u8(self.0.swap(state.to_u8(), Ordering::AcqRel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mismatch_says_what_the_endpoint_serves_and_what_was_expected() {
        let genesis = format!("0x{}", "ab".repeat(32));
        let chain = ChainIdentity::new(31_337, Some(genesis.clone()));
        assert_eq!(chain.chain_id_mismatch(31_337), None);
        assert_eq!(
            chain.chain_id_mismatch(999).as_deref(),
            Some("serves chain id 999, expected 31337")
        );
        assert_eq!(chain.genesis_mismatch(&genesis.to_uppercase()[..]), None);
        let other = format!("0x{}", "cd".repeat(32));
        assert_eq!(
            chain.genesis_mismatch(&other),
            Some(format!(
                "genesis {other} differs from the chain's {genesis}"
            ))
        );
        let older_row = ChainIdentity::new(31_337, None);
        assert_eq!(older_row.genesis_mismatch(&other), None, "nothing to check");
        assert_eq!(older_row.to_string(), "chain id 31337");
    }

    #[test]
    fn the_cell_round_trips_every_state_and_merging_takes_the_most_severe() {
        let cell = IdentityCell::default();
        assert_eq!(cell.get(), IdentityState::Unverified);
        for state in [
            IdentityState::Verified,
            IdentityState::WrongChain,
            IdentityState::Unverified,
        ] {
            cell.set(state);
            assert_eq!(cell.get(), state);
        }
        assert_eq!(
            IdentityState::Verified.max(IdentityState::WrongChain),
            IdentityState::WrongChain
        );
        assert_eq!(
            serde_json::to_value(IdentityState::WrongChain).ok(),
            Some(serde_json::json!("wrong_chain"))
        );
    }
}
