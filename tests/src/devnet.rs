//! A devnet served over JSON-RPC on loopback for one test, stopped when dropped.

use std::{net::SocketAddr, sync::Arc};

use blockfill_devnet::{DevnetChain, DevnetConfig, spawn_devnet};
use tokio_util::sync::CancellationToken;

/// A devnet and the loopback address it is served on.
pub struct ServedDevnet {
    /// The chain (faults and growth are set on it while it is served).
    pub chain: Arc<DevnetChain>,
    /// Where it answers JSON-RPC.
    pub addr: SocketAddr,
    stop: CancellationToken,
}

impl ServedDevnet {
    /// Serves a devnet of `config`.
    pub async fn start(config: DevnetConfig) -> Self {
        let chain = Arc::new(DevnetChain::new(config));
        let stop = CancellationToken::new();
        let addr = spawn_devnet(
            Arc::clone(&chain),
            SocketAddr::from(([127, 0, 0, 1], 0)),
            stop.clone(),
        )
        .await
        .expect("serve the devnet");
        Self { chain, addr, stop }
    }

    /// Serves the default devnet with `blocks` blocks.
    pub async fn with_blocks(blocks: u64) -> Self {
        Self::start(DevnetConfig {
            blocks,
            ..DevnetConfig::default()
        })
        .await
    }

    /// Its JSON-RPC URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The token that stops serving it.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }
}

impl Drop for ServedDevnet {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
