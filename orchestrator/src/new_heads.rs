//! New-head subscriptions: for every chain, the first endpoint that offers `eth_subscribe
//! ["newHeads"]` over WebSocket (its URL with `ws://` or `wss://` for `http://` or `https://`)
//! wakes the head tracker on every new head, so live sync does not wait for the next poll.
//!
//! A subscription is only a hint: the tracker still reads the head through the chain's endpoint
//! pool (breakers, rate limits) and keeps polling, so a node without WebSocket, a dropped
//! connection or a silent subscription costs latency, never correctness. Failed subscriptions are
//! tried again with backoff.

use std::{collections::HashMap, sync::Arc, time::Duration};

use blockfill_activities::{
    backoff::{Backoff, sleep_or_cancelled},
    store::chains,
};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::{sync::Notify, task::JoinHandle};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::context::AppContext;

/// How often the set of chains is read again.
const CHAINS_REFRESH: Duration = Duration::from_secs(5);
/// Waits between two rounds of subscription attempts for one chain: 1 s doubling up to 60 s,
/// from 1 s again after a subscription that delivered heads.
const BACKOFF: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
/// How long connecting and subscribing may take.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a subscription ended.
#[derive(Debug, thiserror::Error)]
enum SubscribeError {
    #[error("connecting timed out")]
    Timeout,
    #[error(transparent)]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("eth_subscribe refused: {0}")]
    Refused(String),
    #[error("the connection closed")]
    Closed,
}

/// The WebSocket URL of an HTTP endpoint, if it has one.
pub fn websocket_url(http_url: &str) -> Option<String> {
    let mut url = url::Url::parse(http_url).ok()?;
    let scheme = match url.scheme() {
        "http" => "ws",
        "https" => "wss",
        "ws" | "wss" => return Some(url.to_string()),
        _ => return None,
    };
    url.set_scheme(scheme).ok()?;
    Some(url.to_string())
}

/// Until `ctx.shutdown`: keeps one new-head subscription per chain with live sync on, each
/// notifying `wake` on every new head.
pub async fn follow_new_heads(ctx: AppContext, wake: Arc<Notify>) {
    let mut running: HashMap<String, (Vec<String>, JoinHandle<()>)> = HashMap::new();
    let mut ticker = tokio::time::interval(CHAINS_REFRESH);
    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let rows = match chains::all(&ctx.db).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::debug!(target: "blockfill::head", error = %e, "cannot list chains for subscriptions");
                continue;
            }
        };
        let wanted: HashMap<String, Vec<String>> = rows
            .into_iter()
            .filter(|row| row.live_sync)
            .map(|row| {
                let urls = row.rpc_url_list();
                (row.name, urls)
            })
            .collect();
        running.retain(|chain, (urls, task)| {
            let keep = wanted.get(chain) == Some(urls) && !task.is_finished();
            if !keep {
                task.abort();
            }
            keep
        });
        for (chain, urls) in wanted {
            if running.contains_key(&chain) {
                continue;
            }
            let task = tokio::spawn(subscribe_chain(
                chain.clone(),
                urls.clone(),
                Arc::clone(&wake),
                ctx.shutdown.clone(),
            ));
            running.insert(chain, (urls, task));
            // A chain seen for the first time gets its head read now, not at the next poll.
            wake.notify_one();
        }
    }
    for (_, (_, task)) in running {
        task.abort();
    }
}

/// Subscribes to the first endpoint of `urls` that offers new heads, again and again.
async fn subscribe_chain(
    chain: String,
    urls: Vec<String>,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let mut backoff = BACKOFF.delays();
    loop {
        for ws in urls.iter().filter_map(|u| websocket_url(u)) {
            let mut heads = 0;
            let ended = subscribe_once(&chain, &ws, &wake, &shutdown, &mut heads).await;
            if shutdown.is_cancelled() {
                tracing::debug!(target: "blockfill::head", chain, heads, "new-head subscription stopped");
                return;
            }
            match ended {
                Ok(()) => {
                    tracing::info!(target: "blockfill::head", chain, endpoint = ws, heads, "new-head subscription ended; polling meanwhile");
                }
                Err(e) => {
                    tracing::debug!(target: "blockfill::head", chain, endpoint = ws, heads, error = %e, "no new-head subscription; polling");
                }
            }
            if heads > 0 {
                backoff.reset();
            }
            metrics::gauge!("blockfill_new_heads_subscribed", "chain" => chain.clone()).set(0.0);
        }
        let delay = backoff.next().unwrap_or(BACKOFF.max);
        if !sleep_or_cancelled(delay, &shutdown).await {
            return;
        }
    }
}

/// One subscription until it fails or `shutdown`, counting the heads it announces in `heads`.
async fn subscribe_once(
    chain: &str,
    ws: &str,
    wake: &Notify,
    shutdown: &CancellationToken,
    heads: &mut u64,
) -> Result<(), SubscribeError> {
    let (mut stream, _) =
        tokio::time::timeout(SUBSCRIBE_TIMEOUT, tokio_tungstenite::connect_async(ws))
            .await
            .map_err(|_| SubscribeError::Timeout)??;
    let request =
        json!({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]});
    stream
        .send(Message::Text(request.to_string().into()))
        .await?;
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            message = stream.next() => message,
        };
        match message {
            Some(Ok(Message::Text(text))) => {
                let Ok(answer) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                if let Some(error) = answer.get("error") {
                    return Err(SubscribeError::Refused(error.to_string()));
                }
                if answer.get("method").and_then(Value::as_str) == Some("eth_subscription") {
                    *heads += 1;
                    wake.notify_one();
                    metrics::counter!("blockfill_new_heads_total", "chain" => chain.to_owned())
                        .increment(1);
                } else if answer.get("id") == Some(&json!(1)) && answer.get("result").is_some() {
                    tracing::info!(target: "blockfill::head", chain, endpoint = ws, "subscribed to new heads");
                    metrics::gauge!("blockfill_new_heads_subscribed", "chain" => chain.to_owned())
                        .set(1.0);
                }
            }
            Some(Ok(Message::Ping(payload))) => stream.send(Message::Pong(payload)).await?,
            Some(Ok(Message::Close(_))) | None => return Err(SubscribeError::Closed),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::websocket_url;

    #[test]
    fn websocket_urls_keep_host_port_and_path() {
        assert_eq!(
            websocket_url("http://127.0.0.1:8545").as_deref(),
            Some("ws://127.0.0.1:8545/")
        );
        assert_eq!(
            websocket_url("https://eth.example/v2/key").as_deref(),
            Some("wss://eth.example/v2/key")
        );
        assert_eq!(
            websocket_url("wss://eth.example/").as_deref(),
            Some("wss://eth.example/")
        );
        assert_eq!(websocket_url("ftp://x"), None);
        assert_eq!(websocket_url("not a url"), None);
    }
}
