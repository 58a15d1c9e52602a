//! The head tracker: polls every chain's head, records it (so the status answer can tell live lag
//! apart from historical gaps), and hands the new blocks to the live lane. A new-head
//! subscription ([`crate::new_heads`]) wakes it early.

use std::{sync::Arc, time::Duration};

use blockfill_activities::{ChainName, SourceRegistry, entity, store::chains};

use crate::{
    context::AppContext,
    live::{advance_live, feed_live},
};

/// Polls heads every `interval`, and whenever `wake` is notified, until `ctx.shutdown`.
pub async fn track_heads(
    ctx: AppContext,
    sources: SourceRegistry,
    interval: Duration,
    wake: Arc<tokio::sync::Notify>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            _ = ticker.tick() => {}
            _ = wake.notified() => {}
        }
        let rows = match chains::all(&ctx.db).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(target: "blockfill::head", error = %e, "cannot list chains");
                continue;
            }
        };
        // Chains are polled side by side: one whose endpoints are all down must not hold up the
        // live lane of the others.
        let polls =
            futures::future::join_all(rows.iter().map(|row| poll_chain(&ctx, &sources, row)));
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            _ = polls => {}
        }
        // Live work left planned (the live queue was at its bound) is fed as room frees.
        if let Err(e) = feed_live(&ctx).await {
            tracing::warn!(target: "blockfill::live", error = %e, "cannot feed planned live batches");
        }
    }
}

/// Reads one chain's head, records it and hands the new blocks to the live lane.
async fn poll_chain(ctx: &AppContext, sources: &SourceRegistry, row: &entity::chains::Model) {
    let Ok(name) = ChainName::parse(&row.name) else {
        return;
    };
    let head = match sources.get(&name).await {
        Ok(source) => source.head().await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let head = match head {
        Ok(head) => head,
        Err(e) => {
            tracing::warn!(target: "blockfill::head", chain = %row.name, error = %e, "cannot read head");
            return;
        }
    };
    let recorded = chains::record_head(&ctx.pool, &row.name, head as i64).await;
    if let Err(e) = recorded {
        tracing::warn!(target: "blockfill::head", chain = %row.name, error = %e, "cannot record head");
        return;
    }
    metrics::gauge!("blockfill_chain_head", "chain" => row.name.clone()).set(head as f64);
    if let Err(e) = advance_live(ctx, row, head).await {
        if e.is_deposed() {
            ctx.shutdown.cancel();
        }
        tracing::warn!(target: "blockfill::live", chain = %row.name, error = %e, "cannot advance live sync");
    }
}
