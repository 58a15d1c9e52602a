//! [`SourceRegistry`]: the endpoint pool of every registered chain, built from the `chains` table
//! on first use and shared by all batches (both lanes) of a process; it also runs the pools'
//! health checks and publishes their state to PostgreSQL for the admin API.
//!
//! A chain's endpoints can change while processes run (`PATCH /v1/chains/{name}`): a lookup more
//! than [`REFRESH_AFTER`] after the pool's last check reads the chain's stored endpoints again
//! and, when they differ from the pool's, builds a new pool (new endpoints are verified before
//! first use like any other; requests in flight finish on the old one).

use std::{collections::HashMap, sync::Arc, time::Duration};

use sea_orm::{
    DatabaseConnection,
    sqlx::{self, PgPool},
};
use tokio::{sync::RwLock, time::Instant};
use tokio_util::sync::CancellationToken;

use super::{ChainSource, EndpointConfig, EndpointPool, PoolSettings, RequestPriority};
use crate::{
    activity::ActivityError,
    redact::redact_url,
    store::{chains, endpoint_health},
    types::ChainName,
};

/// How often a process drops endpoint reports nobody refreshed for an hour.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

/// How long a pool is used before its chain's stored endpoints are compared with it again.
pub(crate) const REFRESH_AFTER: Duration = Duration::from_secs(1);

/// A built pool, the endpoints it was built from and when they were last compared with the
/// stored ones.
struct Cached {
    pool: Arc<EndpointPool>,
    endpoints: Vec<EndpointConfig>,
    checked_at: Instant,
}

/// Endpoint pools by chain name, built from the `chains` table on first use and rebuilt when the
/// chain's endpoints change.
#[derive(Clone)]
pub struct SourceRegistry {
    db: DatabaseConnection,
    settings: PoolSettings,
    cache: Arc<RwLock<HashMap<String, Cached>>>,
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

    /// The endpoint pool of `chain`: the cached one while its endpoints are the stored ones.
    pub async fn pool(&self, chain: &ChainName) -> Result<Arc<EndpointPool>, ActivityError> {
        if let Some(cached) = self.cache.read().await.get(chain.as_str())
            && cached.checked_at.elapsed() < REFRESH_AFTER
        {
            return Ok(Arc::clone(&cached.pool));
        }
        // Claims the check, so concurrent lookups keep using the cached pool meanwhile.
        let current = {
            let mut cache = self.cache.write().await;
            match cache.get_mut(chain.as_str()) {
                Some(cached) if cached.checked_at.elapsed() < REFRESH_AFTER => {
                    return Ok(Arc::clone(&cached.pool));
                }
                Some(cached) => {
                    cached.checked_at = Instant::now();
                    Some((Arc::clone(&cached.pool), cached.endpoints.clone()))
                }
                None => None,
            }
        };
        let stored = match (
            chains::endpoints(self.db.get_postgres_connection_pool(), chain.as_str()).await,
            &current,
        ) {
            (Ok(stored), _) => stored,
            (Err(e), Some((pool, _))) => {
                tracing::debug!(target: "blockfill::rpc", chain = %chain, error = %e, "cannot read the chain's endpoints; using the pool as it is");
                return Ok(Arc::clone(pool));
            }
            (Err(e), None) => return Err(ActivityError::Database(e.to_string())),
        };
        let Some(endpoints) = stored.filter(|e| !e.is_empty()) else {
            self.cache.write().await.remove(chain.as_str());
            return Err(ActivityError::UnknownChain(chain.to_string()));
        };
        if let Some((pool, built_from)) = current
            && built_from == endpoints
        {
            return Ok(pool);
        }
        self.build(chain, endpoints).await
    }

    /// Builds the pool of `chain` over `endpoints` and caches it in place of any older one.
    async fn build(
        &self,
        chain: &ChainName,
        endpoints: Vec<EndpointConfig>,
    ) -> Result<Arc<EndpointPool>, ActivityError> {
        let row = chains::find(&self.db, chain.as_str())
            .await
            .map_err(|e| ActivityError::Database(e.to_string()))?
            .ok_or_else(|| ActivityError::UnknownChain(chain.to_string()))?;
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
        let replaced = cache.insert(
            chain.as_str().to_owned(),
            Cached {
                pool: Arc::clone(&pool),
                endpoints: endpoints.clone(),
                checked_at: Instant::now(),
            },
        );
        drop(cache);
        if let Some(old) = replaced
            && old.endpoints != endpoints
        {
            let urls: Vec<String> = endpoints.iter().map(|e| redact_url(&e.url)).collect();
            tracing::info!(target: "blockfill::rpc", chain = %chain, endpoints = ?urls, "the chain's endpoints changed: new pool");
            clear_removed_gauges(chain, &old.pool, &pool);
        }
        Ok(pool)
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
            let pools: Vec<Arc<EndpointPool>> = self
                .cache
                .read()
                .await
                .values()
                .map(|c| Arc::clone(&c.pool))
                .collect();
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

/// Clears the wrong-chain gauge of each endpoint of `old` that `new` no longer has, so a removed
/// endpoint is not reported as serving another chain for the rest of the process's life.
fn clear_removed_gauges(chain: &ChainName, old: &EndpointPool, new: &EndpointPool) {
    let kept: Vec<String> = new.snapshot().iter().map(|s| redact_url(&s.url)).collect();
    for removed in old.snapshot().iter().map(|s| redact_url(&s.url)) {
        if !kept.contains(&removed) {
            metrics::gauge!("blockfill_rpc_endpoint_wrong_chain", "chain" => chain.to_string(), "endpoint" => removed)
                .set(0.0);
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
