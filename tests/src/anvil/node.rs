//! One running anvil node: starting it on a free loopback port (configured to be deterministic),
//! stopping it, and its JSON-RPC calls and batches.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

use super::{
    BATCH, BLOCK_TIME_SECS, GENESIS_TIMESTAMP, LOG_CONTRACT, LOG_CONTRACT_RUNTIME, READY_TIMEOUT,
    START_ATTEMPTS, STDERR_KEEP, anvil_binary, parse_quantity, quantity,
};

/// A JSON-RPC error answered by the node. [`Anvil::rpc`] and [`Anvil::rpc_batch`] return it
/// inside their `anyhow::Error`; get it back with `err.downcast_ref::<RpcError>()`.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub method: String,
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} failed: JSON-RPC error {}: {}",
            self.method, self.code, self.message
        )?;
        if let Some(data) = &self.data {
            write!(f, " (data: {data})")?;
        }
        Ok(())
    }
}

impl std::error::Error for RpcError {}

impl RpcError {
    fn from_value(method: &str, error: &Value) -> RpcError {
        RpcError {
            method: method.to_owned(),
            code: error
                .get("code")
                .and_then(Value::as_i64)
                .unwrap_or_default(),
            message: error
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| error.to_string(), str::to_owned),
            data: error.get("data").cloned(),
        }
    }
}

/// A running anvil node, killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct Anvil {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub port: u16,
    child: Child,
    client: reqwest::Client,
    next_id: AtomicU64,
    stderr: Arc<Mutex<String>>,
    pub(super) accounts: Vec<String>,
    /// Snapshot id -> head when it was taken.
    pub(super) snapshots: Mutex<HashMap<String, u64>>,
    /// Makes the calldata of [`Anvil::mine_with_transaction`] unique.
    pub(super) tx_seq: AtomicU64,
}

/// Why one start attempt failed, and whether another port might help.
struct StartFailure {
    error: anyhow::Error,
    retry: bool,
}

impl Anvil {
    /// Starts anvil with the default flags (see the module doc) on a free port of 127.0.0.1
    /// and waits until `eth_chainId` answers (at most 10 s).
    pub async fn start() -> Result<Anvil> {
        Anvil::start_with_args(&[]).await
    }

    /// Like [`Anvil::start`], with extra command-line arguments. An argument naming one of the
    /// default flags (`--hardfork`, `--prune-history`, `--timestamp`) replaces it, e.g.
    /// `&["--prune-history", "64"]` for a short chain that [`Anvil::reorg`] can reorganize.
    /// `--host`, `--port` and `--ipc` are refused (the port is chosen here).
    pub async fn start_with_args(extra: &[&str]) -> Result<Anvil> {
        for arg in extra {
            let name = arg.split('=').next().unwrap_or(arg);
            ensure!(
                !matches!(name, "--host" | "--port" | "-p" | "--ipc"),
                "Anvil::start_with_args: {name} is chosen by the harness"
            );
        }
        let bin = tokio::task::spawn_blocking(anvil_binary)
            .await
            .context("anvil_binary panicked")??;
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            match Anvil::start_once(&bin, extra).await {
                Ok(anvil) => return Ok(anvil),
                Err(StartFailure { error, retry }) => {
                    if !retry {
                        return Err(error);
                    }
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "anvil did not start, retrying"
                    );
                    failures.push(format!("{error:#}"));
                }
            }
        }
        bail!(
            "anvil did not start in {START_ATTEMPTS} attempts:\n{}",
            failures.join("\n")
        )
    }

    async fn start_once(bin: &Path, extra: &[&str]) -> Result<Anvil, StartFailure> {
        let fail = |error: anyhow::Error, retry: bool| StartFailure { error, retry };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .context("finding a free port")
            .map_err(|e| fail(e, false))?;
        let timestamp = GENESIS_TIMESTAMP.to_string();
        let port_arg = port.to_string();
        let mut args: Vec<&str> = vec!["--host", "127.0.0.1", "--port", &port_arg, "--quiet"];
        let defaults: [(&str, Option<&str>); 3] = [
            ("--hardfork", Some("cancun")),
            ("--prune-history", None),
            ("--timestamp", Some(&timestamp)),
        ];
        for (flag, value) in defaults {
            let overridden = extra
                .iter()
                .any(|a| *a == flag || a.strip_prefix(flag).is_some_and(|r| r.starts_with('=')));
            if !overridden {
                args.push(flag);
                args.extend(value);
            }
        }
        args.extend_from_slice(extra);

        let mut child = Command::new(bin)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning {} {}", bin.display(), args.join(" ")))
            .map_err(|e| fail(e, false))?;
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(mut pipe) = child.stderr.take() {
            let sink = Arc::clone(&stderr);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut s) = sink.lock() {
                        s.push_str(&String::from_utf8_lossy(&buf[..n]));
                        if s.len() > STDERR_KEEP {
                            let cut = s.len() - STDERR_KEEP;
                            let cut = (cut..s.len()).find(|&i| s.is_char_boundary(i)).unwrap_or(0);
                            s.drain(..cut);
                        }
                    }
                }
            });
        }
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(300))
            .build()
            .context("building the HTTP client")
            .map_err(|e| fail(e, false))?;
        let mut anvil = Anvil {
            url: format!("http://127.0.0.1:{port}"),
            port,
            child,
            client,
            next_id: AtomicU64::new(1),
            stderr,
            accounts: Vec::new(),
            snapshots: Mutex::new(HashMap::new()),
            tx_seq: AtomicU64::new(0),
        };

        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = anvil.child.try_wait() {
                // Give the stderr reader a moment to collect the reason.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let error = anyhow!(
                    "anvil exited with {status} before answering (args: {})\nstderr:\n{}",
                    args.join(" "),
                    anvil.stderr_tail()
                );
                return Err(fail(error, true));
            }
            let probe = anvil
                .client
                .post(&anvil.url)
                .timeout(Duration::from_secs(1))
                .json(&json!({"jsonrpc": "2.0", "id": 0, "method": "eth_chainId", "params": []}))
                .send()
                .await;
            if let Ok(resp) = probe
                && resp.status().is_success()
            {
                break;
            }
            if started.elapsed() > READY_TIMEOUT {
                let error = anyhow!(
                    "anvil on port {port} did not answer eth_chainId within {READY_TIMEOUT:?} \
                     (args: {})\nstderr:\n{}",
                    args.join(" "),
                    anvil.stderr_tail()
                );
                return Err(fail(error, true));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        // Independent calls: anvil runs the elements of a batch concurrently.
        let setup = anvil
            .rpc_batch(&[
                ("anvil_setBlockTimestampInterval", json!([BLOCK_TIME_SECS])),
                ("evm_setAutomine", json!([false])),
                ("anvil_setCode", json!([LOG_CONTRACT, LOG_CONTRACT_RUNTIME])),
                ("eth_accounts", json!([])),
            ])
            .await
            .context("configuring anvil")
            .map_err(|e| fail(e, false))?;
        anvil.accounts = serde_json::from_value(setup[3].clone())
            .context("eth_accounts")
            .map_err(|e| fail(e, false))?;
        if anvil.accounts.is_empty() {
            return Err(fail(anyhow!("anvil has no dev accounts"), false));
        }
        tracing::debug!(url = %anvil.url, ms = started.elapsed().as_millis(), "anvil ready");
        Ok(anvil)
    }

    /// The last bytes anvil wrote to stderr (it is started with `--quiet`: usually empty).
    pub fn stderr_tail(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The funded dev accounts (`eth_accounts`, 10 accounts with 10,000 ETH each).
    pub fn accounts(&self) -> &[String] {
        &self.accounts
    }

    /// Kills the node and waits for it to exit (dropping the handle kills it too, without
    /// waiting).
    pub async fn stop(mut self) -> Result<()> {
        self.child.kill().await.context("killing anvil")
    }

    async fn post(&self, body: &Value) -> Result<Value> {
        let resp = self
            .client
            .post(&self.url)
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {}", self.url))?;
        let status = resp.status();
        let text = resp.text().await.context("reading the response body")?;
        ensure!(status.is_success(), "HTTP {status}: {text}");
        serde_json::from_str(&text).with_context(|| format!("response is not JSON: {text}"))
    }

    /// One JSON-RPC call. A JSON-RPC error becomes an `Err` wrapping an [`RpcError`].
    pub async fn rpc(&self, method: &str, params: Value) -> Result<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let mut resp = self
            .post(&body)
            .await
            .with_context(|| format!("{method} {params}"))?;
        if let Some(error) = resp.get("error") {
            return Err(RpcError::from_value(method, error).into());
        }
        resp.get_mut("result")
            .map(Value::take)
            .with_context(|| format!("{method}: response without result: {resp}"))
    }

    /// One JSON-RPC batch; results in the order of `calls`. If any element fails, the whole
    /// call fails with the first element's [`RpcError`] (with its index in the context).
    ///
    /// Anvil executes the elements of a batch concurrently, not in order: never put calls
    /// that depend on each other (send then mine, two sends with automatic nonces from one
    /// account) into the same batch.
    pub async fn rpc_batch(&self, calls: &[(&str, Value)]) -> Result<Vec<Value>> {
        if calls.is_empty() {
            return Ok(Vec::new());
        }
        let n = calls.len() as u64;
        let first = self.next_id.fetch_add(n, Ordering::Relaxed);
        let body: Vec<Value> = calls
            .iter()
            .zip(first..)
            .map(|((method, params), id)| {
                json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
            })
            .collect();
        let resp = self
            .post(&Value::Array(body))
            .await
            .with_context(|| format!("batch of {n} calls starting with {}", calls[0].0))?;
        let Value::Array(items) = resp else {
            bail!("batch of {n} calls: response is not an array: {resp}");
        };
        let mut results: Vec<Option<Value>> = vec![None; calls.len()];
        for mut item in items {
            let index = item
                .get("id")
                .and_then(Value::as_u64)
                .and_then(|id| id.checked_sub(first))
                .filter(|&i| i < n)
                .with_context(|| format!("batch response with unexpected id: {item}"))?;
            let index = usize::try_from(index)?;
            let (method, params) = &calls[index];
            if let Some(error) = item.get("error") {
                return Err(anyhow::Error::new(RpcError::from_value(method, error))
                    .context(format!("batch element {index} of {n}: {method} {params}")));
            }
            let result = item
                .get_mut("result")
                .map(Value::take)
                .with_context(|| format!("batch element {index}: no result: {item}"))?;
            results[index] = Some(result);
        }
        results
            .into_iter()
            .enumerate()
            .map(|(i, r)| r.with_context(|| format!("batch element {i} of {n} got no answer")))
            .collect()
    }

    /// `eth_blockNumber`.
    pub async fn block_number(&self) -> Result<u64> {
        parse_quantity(&self.rpc("eth_blockNumber", json!([])).await?)
    }

    /// Hashes of blocks `from..=to` (empty if `from > to`), fetched in batches.
    pub async fn block_hashes(&self, from: u64, to: u64) -> Result<Vec<String>> {
        let mut hashes = Vec::new();
        let mut start = from;
        while start <= to {
            let end = to.min(start.saturating_add(BATCH - 1));
            let calls: Vec<(&str, Value)> = (start..=end)
                .map(|n| ("eth_getBlockByNumber", json!([quantity(n), false])))
                .collect();
            for (block, n) in self.rpc_batch(&calls).await?.iter().zip(start..) {
                let hash = block
                    .get("hash")
                    .and_then(Value::as_str)
                    .with_context(|| format!("block {n} does not exist"))?;
                hashes.push(hash.to_owned());
            }
            match end.checked_add(1) {
                Some(next) => start = next,
                None => break,
            }
        }
        Ok(hashes)
    }
}
