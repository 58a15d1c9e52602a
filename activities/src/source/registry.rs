//! [`SourceRegistry`]: the chain source of every registered chain, built from the `chains` table
//! on first use and shared by all batches of a process.

use std::{collections::HashMap, sync::Arc};

use sea_orm::{DatabaseConnection, EntityTrait};
use tokio::sync::RwLock;

use super::{ChainSource, EvmRpcSource, RpcSettings};
use crate::{activity::ActivityError, entity::chains, types::ChainName};

/// Chain sources by chain name, built from the `chains` table on first use.
#[derive(Clone)]
pub struct SourceRegistry {
    db: DatabaseConnection,
    settings: RpcSettings,
    cache: Arc<RwLock<HashMap<String, Arc<dyn ChainSource>>>>,
}

impl SourceRegistry {
    /// An empty registry reading chains from `db`.
    pub fn new(db: DatabaseConnection, settings: RpcSettings) -> Self {
        Self {
            db,
            settings,
            cache: Arc::default(),
        }
    }

    /// The source of `chain`.
    pub async fn get(&self, chain: &ChainName) -> Result<Arc<dyn ChainSource>, ActivityError> {
        if let Some(source) = self.cache.read().await.get(chain.as_str()) {
            return Ok(Arc::clone(source));
        }
        let row = chains::Entity::find_by_id(chain.as_str().to_owned())
            .one(&self.db)
            .await
            .map_err(|e| ActivityError::Database(e.to_string()))?
            .ok_or_else(|| ActivityError::UnknownChain(chain.to_string()))?;
        let url = row
            .rpc_url_list()
            .into_iter()
            .next()
            .ok_or_else(|| ActivityError::UnknownChain(chain.to_string()))?;
        let source: Arc<dyn ChainSource> =
            Arc::new(EvmRpcSource::new(&url, self.settings.clone())?);
        self.cache
            .write()
            .await
            .insert(chain.as_str().to_owned(), Arc::clone(&source));
        Ok(source)
    }
}
