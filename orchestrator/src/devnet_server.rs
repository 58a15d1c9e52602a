//! Serves a [`DevnetChain`] over JSON-RPC on loopback, so the demo, the benchmark and tests drive
//! the same client code as against a real node.

use std::{net::SocketAddr, sync::Arc};

use axum::{Json, Router, body::Bytes, extract::State, routing::post};
use blockfill_activities::DevnetChain;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The devnet's JSON-RPC router (`POST /`).
pub fn devnet_router(chain: Arc<DevnetChain>) -> Router {
    Router::new().route("/", post(rpc)).with_state(chain)
}

async fn rpc(State(chain): State<Arc<DevnetChain>>, body: Bytes) -> Json<Value> {
    match serde_json::from_slice::<Value>(&body) {
        Ok(request) => Json(chain.handle_rpc(&request)),
        Err(e) => Json(
            json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": format!("parse error: {e}")}}),
        ),
    }
}

/// Binds `addr` (port 0 for any) and serves the devnet until `shutdown`; returns the bound address.
pub async fn spawn_devnet(
    chain: Arc<DevnetChain>,
    addr: SocketAddr,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        let served = axum::serve(listener, devnet_router(chain))
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::error!(target: "blockfill::devnet", error = %e, "devnet server stopped");
        }
    });
    Ok(bound)
}
