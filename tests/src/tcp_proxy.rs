//! A TCP proxy that can freeze: while frozen it keeps every connection open but passes no byte
//! either way, as a network partition does (no reset, no FIN, just silence). Used to cut the
//! leader's lock connection from PostgreSQL without closing it.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, Result};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tokio_util::sync::CancellationToken;

/// A running TCP proxy; stops accepting and drops its connections when dropped.
#[derive(Debug)]
pub struct TcpProxy {
    /// Where it listens (127.0.0.1, a free port).
    pub addr: SocketAddr,
    frozen: Arc<AtomicBool>,
    shutdown: CancellationToken,
}

impl TcpProxy {
    /// Forwards every connection to `upstream` (e.g. `127.0.0.1:5432`).
    pub async fn start(upstream: &str) -> Result<TcpProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the TCP proxy")?;
        let addr = listener.local_addr()?;
        let frozen = Arc::new(AtomicBool::new(false));
        let shutdown = CancellationToken::new();
        let upstream = upstream.to_owned();
        let (accept_frozen, stop) = (Arc::clone(&frozen), shutdown.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = stop.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((client, _)) = accepted else { continue };
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                for (from, to) in [
                    (
                        Box::new(client_read) as Box<dyn tokio::io::AsyncRead + Send + Unpin>,
                        Box::new(server_write) as Box<dyn tokio::io::AsyncWrite + Send + Unpin>,
                    ),
                    (Box::new(server_read), Box::new(client_write)),
                ] {
                    tokio::spawn(pipe(from, to, Arc::clone(&accept_frozen), stop.clone()));
                }
            }
        });
        Ok(TcpProxy {
            addr,
            frozen,
            shutdown,
        })
    }

    /// Stops passing bytes (connections stay open).
    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }

    /// Passes bytes again.
    pub fn thaw(&self) {
        self.frozen.store(false, Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn pipe(
    mut from: Box<dyn tokio::io::AsyncRead + Send + Unpin>,
    mut to: Box<dyn tokio::io::AsyncWrite + Send + Unpin>,
    frozen: Arc<AtomicBool>,
    stop: CancellationToken,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let read = tokio::select! {
            _ = stop.cancelled() => return,
            read = from.read(&mut buf) => read,
        };
        let n = match read {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Bytes read while frozen are held until thawed (or dropped with the proxy).
        while frozen.load(Ordering::SeqCst) {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
