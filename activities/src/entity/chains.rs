//! `chains`: one row per registered chain.

use sea_orm::entity::prelude::*;

use crate::source::{ChainIdentity, EndpointConfig};

/// A registered chain.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "chains")]
pub struct Model {
    /// Name used in URLs and batch ids.
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    /// Chain id reported by the node.
    pub chain_id: Option<i64>,
    /// JSON array of RPC URLs.
    pub rpc_urls: Json,
    /// First block the chain should cover.
    pub start_block: i64,
    /// Confirmation depth: blocks below head - confirmations are final.
    pub confirmations: i64,
    /// Blocks per batch.
    pub batch_size: i32,
    /// Fewest workers the fleet keeps.
    pub min_workers: i32,
    /// Most workers the fleet runs.
    pub max_workers: i32,
    /// Last head seen by the head tracker.
    pub head_block: Option<i64>,
    /// When the head was last seen.
    pub head_updated_at: Option<DateTimeWithTimeZone>,
    /// Registration time.
    pub created_at: DateTimeWithTimeZone,
    /// Last change.
    pub updated_at: DateTimeWithTimeZone,
    /// Whether the live lane follows the head.
    pub live_sync: bool,
    /// Highest block handed to the live lane.
    pub live_cursor: Option<i64>,
    /// The `live` backfill that owns live batches.
    pub live_backfill_id: Option<Uuid>,
    /// Hash of block 0 read at registration: every endpoint must serve the same genesis.
    pub genesis_hash: Option<String>,
    /// Deepest reorg repaired automatically; a deeper one halts live sync for an operator.
    pub max_reorg_depth: i64,
    /// Whether live sync is halted (a reorg deeper than `max_reorg_depth`).
    pub live_halted: bool,
    /// Why live sync is halted.
    pub live_halted_reason: Option<String>,
    /// When live sync was halted.
    pub live_halted_at: Option<DateTimeWithTimeZone>,
}

/// No relations are navigated through sea-orm.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// What every endpoint of the chain must serve: its chain id and, for chains registered
    /// since it is recorded, its genesis hash.
    pub fn identity(&self) -> ChainIdentity {
        ChainIdentity {
            chain_id: self.chain_id.and_then(|id| u64::try_from(id).ok()),
            genesis_hash: self.genesis_hash.clone(),
        }
    }

    /// The RPC URLs as strings.
    pub fn rpc_url_list(&self) -> Vec<String> {
        self.endpoints().into_iter().map(|e| e.url).collect()
    }

    /// The RPC endpoints: each entry of `rpc_urls` is a URL or an object
    /// `{url, rps?, max_concurrency?}`; entries that are neither are skipped.
    pub fn endpoints(&self) -> Vec<EndpointConfig> {
        endpoints_of(&self.rpc_urls)
    }
}

/// The RPC endpoints of a stored `rpc_urls` value (see [`Model::endpoints`]).
pub fn endpoints_of(rpc_urls: &Json) -> Vec<EndpointConfig> {
    rpc_urls
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter_map(|entry| match entry {
                    Json::String(url) => Some(EndpointConfig::new(url.clone())),
                    other => serde_json::from_value(other.clone()).ok(),
                })
                .collect()
        })
        .unwrap_or_default()
}
