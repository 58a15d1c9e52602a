//! [`SourceRegistry`]: the endpoint pool of every registered chain, built from the `chains` table
//! on first use and shared by all batches (both lanes) of a process; it also runs the pools'
//! health checks and publishes their state to PostgreSQL for the admin API.

use std::{collections::HashMap, sync::Arc, time::Duration};

use sea_orm::{
    DatabaseConnection,
    sqlx::{self, PgPool},
};
use tokio::sync::RwLock;
use tokio_util::sync::CancellationToken;

use super::{ChainSource, EndpointPool, PoolSettings, RequestPriority};
use crate::{
    activity::ActivityError,
    store::{chains, endpoint_health},
    types::ChainName,
};

/// How often a process drops endpoint reports nobody refreshed for an hour.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

/// Endpoint pools by chain name, built from the `chains` table on first use.
#[derive(Clone)]
pub struct SourceRegistry {
    db: DatabaseConnection,
    settings: PoolSettings,
    cache: Arc<RwLock<HashMap<String, Arc<EndpointPool>>>>,
}

impl SourceRegistry {
    /// An empty registry reading chains from `db`.
    pub fn new(db: DatabaseConnection, settings: PoolSettings) -> Self {
        Self {
            db,
            settings,
            cache: Arc::default(),
        }
    }

    /// The endpoint pool of `chain`.
    pub async fn pool(&self, chain: &ChainName) -> Result<Arc<EndpointPool>, ActivityError> {
        if let Some(pool) = self.cache.read().await.get(chain.as_str()) {
            return Ok(Arc::clone(pool));
        }
        let row = chains::find(&self.db, chain.as_str())
            .await
            .map_err(|e| ActivityError::Database(e.to_string()))?
            .ok_or_else(|| ActivityError::UnknownChain(chain.to_string()))?;
        let endpoints = row.endpoints();
        if endpoints.is_empty() {
            return Err(ActivityError::UnknownChain(chain.to_string()));
        }
        let expected = row.identity();
        if expected.genesis_hash.is_none() {
            tracing::info!(target: "blockfill::rpc", chain = %chain, expected = %expected, "chain registered without a genesis hash: its endpoints' chain id is checked, not their genesis");
        }
        let pool = Arc::new(EndpointPool::connect(
            chain.as_str(),
            &endpoints,
            expected,
            self.settings.clone(),
        )?);
        let mut cache = self.cache.write().await;
        Ok(Arc::clone(
            cache.entry(chain.as_str().to_owned()).or_insert(pool),
        ))
    }

    /// The source of `chain` for backfill work.
    pub async fn get(&self, chain: &ChainName) -> Result<Arc<dyn ChainSource>, ActivityError> {
        self.get_for(chain, RequestPriority::Backfill).await
    }

    /// The source of `chain` whose range requests run at `priority`.
    pub async fn get_for(
        &self,
        chain: &ChainName,
        priority: RequestPriority,
    ) -> Result<Arc<dyn ChainSource>, ActivityError> {
        let pool = self.pool(chain).await?;
        Ok(Arc::new(pool.with_priority(priority)))
    }

    /// Until `shutdown`: every `interval`, health-checks the idle endpoints of every built pool
    /// and publishes every endpoint's state as `reporter` to `endpoint_health` (best effort: a
    /// database outage only delays the report).
    pub async fn run_health_reports(
        self,
        pool: PgPool,
        reporter: String,
        interval: Duration,
        shutdown: CancellationToken,
    ) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut pruned_at: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_INTERVAL) {
                pruned_at = Some(tokio::time::Instant::now());
                if let Err(e) = endpoint_health::prune(&pool).await {
                    tracing::debug!(target: "blockfill::rpc", error = %e, "cannot prune endpoint health");
                }
            }
            let pools: Vec<Arc<EndpointPool>> = self.cache.read().await.values().cloned().collect();
            let round = async {
                futures::future::join_all(pools.iter().map(|p| p.probe_idle(interval))).await;
                for endpoint_pool in &pools {
                    if let Err(e) = publish(&pool, &reporter, endpoint_pool).await {
                        tracing::debug!(target: "blockfill::rpc", chain = endpoint_pool.chain(), error = %e, "cannot publish endpoint health");
                    }
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = round => {}
            }
        }
    }
}

/// Upserts one process's view of `endpoints`.
async fn publish(
    pool: &PgPool,
    reporter: &str,
    endpoints: &EndpointPool,
) -> Result<(), sqlx::Error> {
    let snapshots = endpoints.snapshot();
    let urls: Vec<String> = snapshots.iter().map(|s| s.url.clone()).collect();
    let bodies: Vec<serde_json::Value> = snapshots
        .iter()
        .map(|s| serde_json::to_value(s).unwrap_or(serde_json::Value::Null))
        .collect();
    endpoint_health::publish(pool, endpoints.chain(), reporter, &urls, &bodies).await
}
