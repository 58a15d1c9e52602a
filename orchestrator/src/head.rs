//! The head tracker: polls every chain's head and records it, so the status answer can tell live
//! lag apart from historical gaps.

use std::time::Duration;

use blockfill_activities::{ChainName, SourceRegistry, entity::chains};
use sea_orm::{
    DatabaseConnection, EntityTrait,
    sqlx::{self, PgPool},
};
use tokio_util::sync::CancellationToken;

/// Polls heads every `interval` until `shutdown`.
pub async fn track_heads(
    db: DatabaseConnection,
    pool: PgPool,
    sources: SourceRegistry,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let rows = match chains::Entity::find().all(&db).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(target: "blockfill::head", error = %e, "cannot list chains");
                continue;
            }
        };
        for row in rows {
            let Ok(name) = ChainName::parse(&row.name) else {
                continue;
            };
            let head = match sources.get(&name).await {
                Ok(source) => source.head().await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match head {
                Ok(head) => {
                    let updated = sqlx::query(
                        "UPDATE chains SET head_block = $2, head_updated_at = now() WHERE name = $1",
                    )
                    .bind(&row.name)
                    .bind(head as i64)
                    .execute(&pool)
                    .await;
                    if let Err(e) = updated {
                        tracing::warn!(target: "blockfill::head", chain = %row.name, error = %e, "cannot record head");
                    }
                    metrics::gauge!("blockfill_chain_head", "chain" => row.name.clone())
                        .set(head as f64);
                }
                Err(e) => {
                    tracing::warn!(target: "blockfill::head", chain = %row.name, error = %e, "cannot read head")
                }
            }
        }
    }
}
