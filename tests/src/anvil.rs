//! Anvil (Foundry 1.7.1) as a real EVM node on loopback for integration tests and benchmarks.
//!
//! [`anvil_binary`] finds or installs the binary (npm package `@foundry-rs/anvil-linux-amd64`,
//! installed by `scripts/install-anvil.sh` into `<workspace>/.cache/anvil`). [`Anvil::start`]
//! runs one node per test on a free port of 127.0.0.1 and kills it when the handle is dropped.
//!
//! Every node is started with `--hardfork cancun --prune-history --quiet --timestamp
//! 1700000000` (without cancun, i.e. with the default prague, mining is ~200x slower; without
//! `--prune-history` anvil writes gigabytes of state under `~/.foundry/anvil/tmp`), and
//! then configured so that chains are deterministic and only grow when a helper mines:
//!
//! - automine is off (`evm_setAutomine false`): a transaction sent through [`Anvil::rpc`] stays
//!   pending until something mines (`evm_mine`, [`Anvil::mine`], ...);
//! - block `n` has timestamp [`GENESIS_TIMESTAMP`]` + n * `[`BLOCK_TIME_SECS`]
//!   (`anvil_setBlockTimestampInterval`; `--timestamp` alone is not enough, anvil adds the
//!   wall-clock time elapsed since start);
//! - the log-emitting contract of the chain README is present at [`LOG_CONTRACT`] from genesis
//!   on (installed with `anvil_setCode`, so no block is mined for it and it survives every
//!   revert and reorg). A call emits one log `LOG2(topic0 = `[`TRANSFER_TOPIC`]`, topic1 =
//!   caller, data = calldata)`.
//!
//! Building the same [`ChainSpec`] on two fresh nodes yields identical block hashes.
//!
//! Reorgs: [`Anvil::reorg`] uses `anvil_reorg` and needs a node started with
//! `--prune-history N`, N > depth (`Anvil::start_with_args(&["--prune-history", "64"])`), and
//! mining on such nodes gets slower as the chain grows (keep them to a few thousand blocks;
//! 2,000 blocks with 400 transactions take 0.6 s).
//! [`Anvil::snapshot`] + [`Anvil::reorg_from_snapshot`] (`evm_snapshot`/`evm_revert`) work on
//! every node, including the default `--prune-history` one and long chains.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

/// The Anvil release `scripts/install-anvil.sh` installs.
pub const ANVIL_VERSION: &str = "1.7.1";
/// Environment variable naming an anvil binary to use instead of the cached/installed one.
pub const ANVIL_BIN_ENV: &str = "BLOCKFILL_ANVIL_BIN";
/// Timestamp of block 0 (`--timestamp`).
pub const GENESIS_TIMESTAMP: u64 = 1_700_000_000;
/// Seconds between consecutive blocks: block `n` has timestamp `GENESIS_TIMESTAMP + n * 12`.
pub const BLOCK_TIME_SECS: u64 = 12;
/// Address of the log-emitting contract present on every node started by this module.
pub const LOG_CONTRACT: &str = "0x00000000000000000000000000000000000b10cf";
/// Init code of the log-emitting contract (from the chain README): a 12-byte constructor that
/// returns the 45-byte runtime [`LOG_CONTRACT_RUNTIME`].
pub const LOG_CONTRACT_INIT_CODE: &str = "0x602d600c600039602d6000f3366000600037337fddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef366000a200";
/// Runtime code of the log-emitting contract: copies the calldata to memory and emits
/// `LOG2(topic0 = TRANSFER_TOPIC, topic1 = caller, data = calldata)`.
pub const LOG_CONTRACT_RUNTIME: &str =
    "0x366000600037337fddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef366000a200";
/// `keccak256("Transfer(address,address,uint256)")`, topic 0 of every log of [`LOG_CONTRACT`].
pub const TRANSFER_TOPIC: &str =
    "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";

/// Where `scripts/install-anvil.sh` puts the binary, relative to the workspace root.
const CACHED_BIN: &str = ".cache/anvil/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil";
/// Gas limit of a plain value transfer.
const TRANSFER_GAS: u64 = 21_000;
/// Gas limit of a call to [`LOG_CONTRACT`] (uses about 24k with 32 bytes of calldata).
const CALL_GAS: u64 = 100_000;
/// Value of the plain transfers, in wei.
const TRANSFER_VALUE: u64 = 1_000_000_000;
/// How long [`Anvil::start`] waits for `eth_chainId` to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Start attempts (a free port can be taken by someone else before anvil binds it).
const START_ATTEMPTS: usize = 3;
/// Elements per JSON-RPC batch in the helpers.
const BATCH: u64 = 500;
/// Bytes of anvil's stderr kept for error messages.
const STDERR_KEEP: usize = 16 * 1024;

/// The workspace root: the parent of this crate's manifest directory.
fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Path of the anvil binary to run.
///
/// In order: `$BLOCKFILL_ANVIL_BIN` (an error if set but not an executable file), then
/// `<workspace>/.cache/anvil/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil`, else runs
/// `<workspace>/scripts/install-anvil.sh` (npm, about 3 s) once per process: concurrent callers
/// wait for the same installation, and its failure is remembered (not retried).
///
/// Blocking; from async code call it through `tokio::task::spawn_blocking` ([`Anvil::start`]
/// does).
pub fn anvil_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(ANVIL_BIN_ENV) {
        let path = PathBuf::from(path);
        ensure!(
            is_executable(&path),
            "{ANVIL_BIN_ENV}={} is not an executable file",
            path.display()
        );
        return Ok(path);
    }
    let root = workspace_root();
    let cached = root.join(CACHED_BIN);
    if is_executable(&cached) {
        return Ok(cached);
    }
    static INSTALLED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| install(&root).map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| {
            anyhow!(
                "no anvil binary: {ANVIL_BIN_ENV} is unset, {} does not exist, and \
                 scripts/install-anvil.sh failed: {e}",
                cached.display()
            )
        })
}

/// Runs `scripts/install-anvil.sh` and returns the path printed on its last line.
fn install(root: &Path) -> Result<PathBuf> {
    let script = root.join("scripts/install-anvil.sh");
    tracing::info!(script = %script.display(), "installing anvil");
    let started = Instant::now();
    let output = std::process::Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(
        output.status.success(),
        "{} exited with {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        script.display(),
        output.status
    );
    let path = stdout
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(PathBuf::from)
        .with_context(|| format!("{} printed no path\nstderr:\n{stderr}", script.display()))?;
    ensure!(
        is_executable(&path),
        "{} printed {}, which is not an executable file",
        script.display(),
        path.display()
    );
    tracing::info!(path = %path.display(), seconds = started.elapsed().as_secs_f64(), "installed anvil");
    Ok(path)
}

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

/// What [`Anvil::build_chain`] mines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainSpec {
    /// Number of new blocks.
    pub blocks: u64,
    /// Every `tx_every`-th new block carries transactions (0: none do).
    pub tx_every: u64,
    /// Transactions in each of those blocks (0: none).
    pub txs_per_block: u64,
}

/// What [`Anvil::build_chain`] mined.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainSummary {
    /// First new block (the head before the build + 1).
    pub first_block: u64,
    /// Head after the build (`first_block + spec.blocks - 1`).
    pub head: u64,
    /// Transactions mined.
    pub transactions: u64,
    /// Logs emitted (one per call to [`LOG_CONTRACT`]).
    pub logs: u64,
    /// Wall-clock time of the build.
    pub seconds: f64,
}

/// A replaced branch. `old_hashes[i]` and `new_hashes[i]` are the hashes at height
/// `fork_point + 1 + i` before and after the reorg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReorgOutcome {
    /// Last block common to both branches.
    pub fork_point: u64,
    /// Head before the reorg.
    pub old_head: u64,
    /// Head after the reorg.
    pub new_head: u64,
    /// Hashes of the old branch, heights `fork_point + 1 ..= old_head`.
    pub old_hashes: Vec<String>,
    /// Hashes of the new branch, heights `fork_point + 1 ..= new_head`.
    pub new_hashes: Vec<String>,
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
    accounts: Vec<String>,
    /// Snapshot id -> head when it was taken.
    snapshots: Mutex<HashMap<String, u64>>,
    /// Makes the calldata of [`Anvil::mine_with_transaction`] unique.
    tx_seq: AtomicU64,
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

    /// Mines `blocks` empty blocks (`anvil_mine`; pending transactions, if any, go into the
    /// first). About 17,000 blocks/s on a default node.
    pub async fn mine(&self, blocks: u64) -> Result<()> {
        if blocks > 0 {
            self.rpc("anvil_mine", json!([quantity(blocks)])).await?;
        }
        Ok(())
    }

    /// Mines one block holding one call to [`LOG_CONTRACT`] (so one log), sent by the first
    /// dev account with unique calldata (so the block differs from any earlier one).
    pub async fn mine_with_transaction(&self) -> Result<()> {
        let seq = self.tx_seq.fetch_add(1, Ordering::Relaxed);
        let data = format!("0x{:064x}", (0xb10c_u128 << 64) | u128::from(seq));
        let tx = json!({
            "from": self.accounts[0],
            "to": LOG_CONTRACT,
            "data": data,
            "gas": quantity(CALL_GAS),
        });
        self.rpc("eth_sendTransaction", json!([tx])).await?;
        self.rpc("evm_mine", json!([])).await?;
        Ok(())
    }

    /// Mines `spec.blocks` new blocks. The `tx_every`-th, `2 * tx_every`-th, ... new block
    /// carries `txs_per_block` transactions, all other blocks are empty. The `j`-th transaction
    /// block (1-based) gets its transactions from dev account `j % 10` with consecutive nonces
    /// (so their order is fixed); the transactions
    /// of a build alternate, starting with a plain transfer of 1 gwei to the next dev account,
    /// then a call to [`LOG_CONTRACT`] whose 32-byte calldata (the log's data) is
    /// `block_number << 32 | transaction_index`.
    ///
    /// Per transaction block: one batch of `eth_sendTransaction` with explicit nonces, then one
    /// `anvil_mine` that mines it and the empty stretch after it. The node is the bottleneck:
    /// about 0.7 ms per transaction (anvil signs each one) plus about 13,000 empty blocks/s;
    /// 20,000 blocks with `tx_every = 10, txs_per_block = 2` (4,000 transactions) take 4.7-6.2 s
    /// on 2 cores (8.3 s while other tests run), the same 20,000 blocks without transactions
    /// 1.5 s.
    pub async fn build_chain(&self, spec: ChainSpec) -> Result<ChainSummary> {
        let started = Instant::now();
        let start = self.block_number().await?;
        let tx_blocks = if spec.tx_every == 0 || spec.txs_per_block == 0 {
            0
        } else {
            spec.blocks / spec.tx_every
        };
        let mut transactions = 0;
        let mut logs = 0;
        if tx_blocks == 0 {
            self.mine(spec.blocks).await?;
        } else {
            let accounts = self.accounts.len() as u64;
            let nonce_calls: Vec<(&str, Value)> = self
                .accounts
                .iter()
                .map(|a| ("eth_getTransactionCount", json!([a, "pending"])))
                .collect();
            let mut nonces = self
                .rpc_batch(&nonce_calls)
                .await?
                .iter()
                .map(parse_quantity)
                .collect::<Result<Vec<u64>>>()?;
            // The empty stretch before the first transaction block.
            self.mine(spec.tx_every - 1).await?;
            for k in 1..=tx_blocks {
                let number = start + k * spec.tx_every;
                let sender = usize::try_from(k % accounts)?;
                let recipient = &self.accounts[(sender + 1) % self.accounts.len()];
                let mut sends = Vec::new();
                for index in 0..spec.txs_per_block {
                    let nonce = quantity(nonces[sender]);
                    nonces[sender] += 1;
                    let tx = if transactions % 2 == 0 {
                        json!({
                            "from": self.accounts[sender],
                            "to": recipient,
                            "value": quantity(TRANSFER_VALUE),
                            "gas": quantity(TRANSFER_GAS),
                            "nonce": nonce,
                        })
                    } else {
                        logs += 1;
                        json!({
                            "from": self.accounts[sender],
                            "to": LOG_CONTRACT,
                            "data": format!("0x{:064x}", (u128::from(number) << 32) | u128::from(index)),
                            "gas": quantity(CALL_GAS),
                            "nonce": nonce,
                        })
                    };
                    transactions += 1;
                    sends.push(("eth_sendTransaction", json!([tx])));
                }
                self.rpc_batch(&sends)
                    .await
                    .with_context(|| format!("sending the transactions of block {number}"))?;
                // This block, then the empty stretch up to the next transaction block (or the
                // end of the build).
                let next = if k == tx_blocks {
                    start + spec.blocks
                } else {
                    number + spec.tx_every - 1
                };
                self.mine(next - number + 1).await?;
            }
        }
        let head = self.block_number().await?;
        ensure!(
            head == start + spec.blocks,
            "build_chain: head is {head}, expected {}",
            start + spec.blocks
        );
        let summary = ChainSummary {
            first_block: start + 1,
            head,
            transactions,
            logs,
            seconds: started.elapsed().as_secs_f64(),
        };
        tracing::debug!(?spec, ?summary, "built chain");
        Ok(summary)
    }

    /// Replaces the last `depth` blocks by a branch of `depth + 1` blocks whose first block
    /// holds one call to [`LOG_CONTRACT`] (calldata = hash of the replaced block at that
    /// height, so the new block always differs; the other new blocks are empty, and still get
    /// new hashes since their parents changed). The new head is `old_head + 1`.
    ///
    /// Uses `anvil_reorg [depth, [[tx, 0]]]` then `evm_mine`: works only on a node started
    /// with `--prune-history N`, N > depth (e.g. `Anvil::start_with_args(&["--prune-history",
    /// "64"])`). Measured with N = 64: depth 63 works on a fresh chain, 64 does not, and every
    /// earlier reorg whose blocks are still among the last N lowers the limit by one (after ten
    /// reorgs: 54); keep depths well below N. On a default node (`--prune-history` without a
    /// number) anvil answers `BlockOutOfRangeError` or "Required data unavailable" and this
    /// returns an error saying what to do; use [`Anvil::snapshot`] +
    /// [`Anvil::reorg_from_snapshot`] there. Takes about 6 ms.
    pub async fn reorg(&self, depth: u64) -> Result<ReorgOutcome> {
        ensure!(depth >= 1, "reorg depth must be at least 1");
        let old_head = self.block_number().await?;
        ensure!(
            depth <= old_head,
            "reorg depth {depth} exceeds the chain height {old_head}"
        );
        let fork_point = old_head - depth;
        let old_hashes = self.block_hashes(fork_point + 1, old_head).await?;
        let tx = json!({
            "from": self.accounts[0],
            "to": LOG_CONTRACT,
            "data": old_hashes[0],
            "gas": quantity(CALL_GAS),
        });
        self.rpc("anvil_reorg", json!([depth, [[tx, 0]]]))
            .await
            .with_context(|| {
                format!(
                    "anvil_reorg depth {depth}: the node must be started with --prune-history N, \
                     N > depth (Anvil::start_with_args(&[\"--prune-history\", \"64\"])); on \
                     other nodes use snapshot() + reorg_from_snapshot()"
                )
            })?;
        self.rpc("evm_mine", json!([])).await?;
        let new_head = self.block_number().await?;
        ensure!(
            new_head == old_head + 1,
            "after anvil_reorg + evm_mine the head is {new_head}, expected {}",
            old_head + 1
        );
        let new_hashes = self.block_hashes(fork_point + 1, new_head).await?;
        ensure!(
            new_hashes[0] != old_hashes[0],
            "anvil_reorg rebuilt block {} with the same hash",
            fork_point + 1
        );
        Ok(ReorgOutcome {
            fork_point,
            old_head,
            new_head,
            old_hashes,
            new_hashes,
        })
    }

    /// `evm_snapshot`: remembers the current state and head. Take it before mining the blocks
    /// a later [`Anvil::reorg_from_snapshot`] should replace. Works on every node. A snapshot
    /// can be reverted to once.
    pub async fn snapshot(&self) -> Result<String> {
        let head = self.block_number().await?;
        let id = self.rpc("evm_snapshot", json!([])).await?;
        let id = id
            .as_str()
            .with_context(|| format!("evm_snapshot returned {id}"))?
            .to_owned();
        self.snapshots
            .lock()
            .map_err(|_| anyhow!("snapshot map poisoned"))?
            .insert(id.clone(), head);
        Ok(id)
    }

    /// Reorganizes back to a [`Anvil::snapshot`]: `evm_revert`s to it (dropping every block
    /// mined since), then mines `new_blocks` blocks, the first holding one call to
    /// [`LOG_CONTRACT`] (calldata = hash of the old block at that height, if there was one),
    /// so every height above the snapshot gets a new hash. Pass more blocks than were mined
    /// since the snapshot to make the new branch the longer one. Works on every node (also
    /// the default `--prune-history` one and long chains).
    pub async fn reorg_from_snapshot(
        &self,
        snapshot_id: &str,
        new_blocks: u64,
    ) -> Result<ReorgOutcome> {
        ensure!(
            new_blocks >= 1,
            "reorg_from_snapshot needs at least one new block"
        );
        let fork_point = self
            .snapshots
            .lock()
            .map_err(|_| anyhow!("snapshot map poisoned"))?
            .remove(snapshot_id)
            .with_context(|| {
                format!(
                    "unknown or already used snapshot {snapshot_id} (take it with Anvil::snapshot)"
                )
            })?;
        let old_head = self.block_number().await?;
        let old_hashes = self.block_hashes(fork_point + 1, old_head).await?;
        let reverted = self.rpc("evm_revert", json!([snapshot_id])).await?;
        ensure!(
            reverted == Value::Bool(true),
            "evm_revert {snapshot_id} returned {reverted}"
        );
        let head = self.block_number().await?;
        ensure!(
            head == fork_point,
            "after evm_revert {snapshot_id} the head is {head}, expected {fork_point}"
        );
        let seq = self.tx_seq.fetch_add(1, Ordering::Relaxed);
        let data = old_hashes
            .first()
            .cloned()
            .unwrap_or_else(|| format!("0x{:064x}", (0x5eed_u128 << 64) | u128::from(seq)));
        let tx = json!({
            "from": self.accounts[0],
            "to": LOG_CONTRACT,
            "data": data,
            "gas": quantity(CALL_GAS),
        });
        self.rpc("eth_sendTransaction", json!([tx])).await?;
        self.mine(new_blocks).await?;
        let new_head = self.block_number().await?;
        ensure!(
            new_head == fork_point + new_blocks,
            "after the reorg the head is {new_head}, expected {}",
            fork_point + new_blocks
        );
        let new_hashes = self.block_hashes(fork_point + 1, new_head).await?;
        Ok(ReorgOutcome {
            fork_point,
            old_head,
            new_head,
            old_hashes,
            new_hashes,
        })
    }
}

/// `n` as a JSON-RPC quantity (`0x`-prefixed hex, no leading zeros).
fn quantity(n: u64) -> String {
    format!("{n:#x}")
}

/// Parses a JSON-RPC quantity.
fn parse_quantity(value: &Value) -> Result<u64> {
    let s = value
        .as_str()
        .with_context(|| format!("expected a hex quantity, got {value}"))?;
    let digits = s
        .strip_prefix("0x")
        .with_context(|| format!("expected a hex quantity, got {s}"))?;
    u64::from_str_radix(digits, 16).with_context(|| format!("expected a hex quantity, got {s}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_field(block: &Value, field: &str) -> Result<u64> {
        parse_quantity(
            block
                .get(field)
                .with_context(|| format!("block without {field}"))?,
        )
    }

    fn str_field<'a>(value: &'a Value, field: &str) -> Result<&'a str> {
        value
            .get(field)
            .and_then(Value::as_str)
            .with_context(|| format!("no {field} in {value}"))
    }

    /// Checks that blocks `from..=to` link by parent hash (and to block `from - 1`).
    async fn assert_chain_links(anvil: &Anvil, from: u64, to: u64) -> Result<()> {
        let first = from.saturating_sub(1);
        let calls: Vec<(&str, Value)> = (first..=to)
            .map(|n| ("eth_getBlockByNumber", json!([quantity(n), false])))
            .collect();
        let blocks = anvil.rpc_batch(&calls).await?;
        for pair in blocks.windows(2) {
            ensure!(
                str_field(&pair[1], "parentHash")? == str_field(&pair[0], "hash")?,
                "block {} does not link to its parent",
                block_field(&pair[1], "number")?
            );
        }
        Ok(())
    }

    #[test]
    fn binary_is_found() -> Result<()> {
        let started = Instant::now();
        let path = anvil_binary()?;
        eprintln!(
            "anvil_binary: {} in {:?}",
            path.display(),
            started.elapsed()
        );
        ensure!(is_executable(&path));
        Ok(())
    }

    #[test]
    fn runtime_is_the_tail_of_the_init_code() {
        // PUSH1 0x2d PUSH1 0x0c PUSH1 0 CODECOPY PUSH1 0x2d PUSH1 0 RETURN: returns the 45
        // bytes after the 12-byte constructor.
        assert_eq!(
            &LOG_CONTRACT_INIT_CODE[2 + 24..],
            &LOG_CONTRACT_RUNTIME[2..]
        );
        assert_eq!(LOG_CONTRACT_RUNTIME.len(), 2 + 2 * 0x2d);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn build_20k_blocks() -> Result<()> {
        let started = Instant::now();
        let anvil = Anvil::start().await?;
        eprintln!("start: {:?}", started.elapsed());
        let spec = ChainSpec {
            blocks: 20_000,
            tx_every: 10,
            txs_per_block: 2,
        };
        let summary = anvil.build_chain(spec).await?;
        eprintln!("build_chain {spec:?}: {summary:?}");
        ensure!(
            summary.first_block == 1 && summary.head == 20_000,
            "{summary:?}"
        );
        ensure!(
            summary.transactions == 4_000 && summary.logs == 2_000,
            "{summary:?}"
        );
        ensure!(anvil.block_number().await? == 20_000);

        // Every block: number, timestamp, parent link, transaction count.
        let checked = Instant::now();
        let mut parent = String::new();
        let mut tx_count = 0;
        for start in (0..=20_000u64).step_by(500) {
            let end = (start + 499).min(20_000);
            let calls: Vec<(&str, Value)> = (start..=end)
                .map(|n| ("eth_getBlockByNumber", json!([quantity(n), false])))
                .collect();
            for (block, n) in anvil.rpc_batch(&calls).await?.iter().zip(start..) {
                ensure!(block_field(block, "number")? == n);
                ensure!(
                    block_field(block, "timestamp")? == GENESIS_TIMESTAMP + n * BLOCK_TIME_SECS
                );
                if n > 0 {
                    ensure!(
                        str_field(block, "parentHash")? == parent,
                        "block {n} parent"
                    );
                }
                parent = str_field(block, "hash")?.to_owned();
                let txs = block["transactions"].as_array().map_or(0, Vec::len) as u64;
                let expected = if n > 0 && n % 10 == 0 { 2 } else { 0 };
                ensure!(
                    txs == expected,
                    "block {n} has {txs} transactions, expected {expected}"
                );
                tx_count += txs;
            }
        }
        ensure!(tx_count == 4_000);

        // Transaction blocks: a transfer then a call, from the rotating sender.
        let calls: Vec<(&str, Value)> = (1..=2_000u64)
            .map(|k| ("eth_getBlockByNumber", json!([quantity(k * 10), true])))
            .collect();
        let mut blocks = Vec::new();
        for chunk in calls.chunks(500) {
            blocks.extend(anvil.rpc_batch(chunk).await?);
        }
        for (block, k) in blocks.iter().zip(1u64..) {
            let txs = block["transactions"].as_array().context("transactions")?;
            let sender = &anvil.accounts()[(k % 10) as usize];
            for tx in txs {
                ensure!(str_field(tx, "from")? == sender);
            }
            ensure!(str_field(&txs[0], "input")? == "0x");
            ensure!(str_field(&txs[0], "to")? == anvil.accounts()[((k + 1) % 10) as usize]);
            ensure!(str_field(&txs[1], "to")? == LOG_CONTRACT);
        }

        // Logs: exactly one per transaction block, from the second transaction.
        let mut logs = Vec::new();
        for from in (0..=20_000u64).step_by(2_000) {
            let filter = json!({"fromBlock": quantity(from), "toBlock": quantity((from + 1_999).min(20_000))});
            let got = anvil.rpc("eth_getLogs", json!([filter])).await?;
            logs.extend(got.as_array().context("logs")?.iter().cloned());
        }
        ensure!(logs.len() == 2_000, "{} logs", logs.len());
        for (log, k) in logs.iter().zip(1u64..) {
            let n = k * 10;
            ensure!(block_field(log, "blockNumber")? == n);
            ensure!(block_field(log, "transactionIndex")? == 1);
            ensure!(str_field(log, "address")? == LOG_CONTRACT);
            ensure!(log["topics"][0] == TRANSFER_TOPIC);
            ensure!(str_field(log, "data")? == format!("0x{:064x}", u128::from(n) << 32 | 1));
            ensure!(str_field(log, "blockHash")? == str_field(&blocks[(k - 1) as usize], "hash")?);
        }
        eprintln!(
            "verified 20,001 blocks, 4,000 transactions, 2,000 logs in {:?}",
            checked.elapsed()
        );
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn builds_are_deterministic() -> Result<()> {
        let spec = ChainSpec {
            blocks: 300,
            tx_every: 7,
            txs_per_block: 3,
        };
        let (a, b) = tokio::try_join!(Anvil::start(), Anvil::start())?;
        let (sa, sb) = tokio::try_join!(a.build_chain(spec), b.build_chain(spec))?;
        ensure!(
            sa.head == 300 && sa.transactions == 42 * 3 && sa.logs == 63,
            "{sa:?}"
        );
        ensure!(sa.transactions == sb.transactions && sa.logs == sb.logs);
        ensure!(a.block_hashes(300, 300).await? == b.block_hashes(300, 300).await?);
        // A second build continues the pattern relative to its own first block.
        let s2 = a
            .build_chain(ChainSpec {
                blocks: 25,
                tx_every: 5,
                txs_per_block: 1,
            })
            .await?;
        ensure!(
            s2.first_block == 301 && s2.head == 325 && s2.transactions == 5,
            "{s2:?}"
        );
        let block = a
            .rpc("eth_getBlockByNumber", json!([quantity(305), false]))
            .await?;
        ensure!(block["transactions"].as_array().map(Vec::len) == Some(1));
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mine_and_mine_with_transaction() -> Result<()> {
        let anvil = Anvil::start().await?;
        ensure!(anvil.block_number().await? == 0);
        anvil.mine(5).await?;
        ensure!(anvil.block_number().await? == 5);
        anvil.mine_with_transaction().await?;
        anvil.mine_with_transaction().await?;
        ensure!(anvil.block_number().await? == 7);
        let hashes = anvil.block_hashes(6, 7).await?;
        ensure!(hashes[0] != hashes[1]);
        let receipts = anvil.rpc("eth_getBlockReceipts", json!(["0x6"])).await?;
        let receipts = receipts.as_array().context("receipts")?;
        ensure!(receipts.len() == 1);
        ensure!(receipts[0]["status"] == "0x1");
        ensure!(receipts[0]["logs"][0]["topics"][0] == TRANSFER_TOPIC);
        assert_chain_links(&anvil, 1, 7).await?;
        // Automine is off: a sent transaction waits for a mining call.
        let tx = json!({"from": anvil.accounts()[1], "to": anvil.accounts()[2], "value": "0x1"});
        anvil.rpc("eth_sendTransaction", json!([tx])).await?;
        ensure!(anvil.block_number().await? == 7);
        anvil.mine(1).await?;
        let block = anvil
            .rpc("eth_getBlockByNumber", json!(["0x8", false]))
            .await?;
        ensure!(block["transactions"].as_array().map(Vec::len) == Some(1));
        anvil.stop().await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rpc_errors_carry_the_json_rpc_error() -> Result<()> {
        let anvil = Anvil::start().await?;
        let err = anvil
            .rpc("eth_getBlockByNumber", json!(["not-a-block", false]))
            .await
            .err()
            .context("expected an error")?;
        let rpc = err
            .downcast_ref::<RpcError>()
            .context("expected an RpcError")?;
        ensure!(
            rpc.method == "eth_getBlockByNumber" && rpc.code != 0,
            "{rpc:?}"
        );
        let err = anvil
            .rpc("no_such_method", json!([]))
            .await
            .err()
            .context("expected an error")?;
        ensure!(
            err.downcast_ref::<RpcError>()
                .is_some_and(|e| e.code == -32601),
            "{err:#}"
        );

        let ok = anvil
            .rpc_batch(&[("eth_chainId", json!([])), ("eth_blockNumber", json!([]))])
            .await?;
        ensure!(ok == vec![json!("0x7a69"), json!("0x0")], "{ok:?}");
        let err = anvil
            .rpc_batch(&[("eth_chainId", json!([])), ("no_such_method", json!([]))])
            .await
            .err()
            .context("expected an error")?;
        ensure!(format!("{err:#}").contains("batch element 1"), "{err:#}");
        ensure!(err.downcast_ref::<RpcError>().is_some(), "{err:#}");
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn init_code_deploys_the_same_contract() -> Result<()> {
        let anvil = Anvil::start().await?;
        let tx = json!({"from": anvil.accounts()[0], "data": LOG_CONTRACT_INIT_CODE});
        let hash = anvil.rpc("eth_sendTransaction", json!([tx])).await?;
        anvil.mine(1).await?;
        let receipt = anvil
            .rpc("eth_getTransactionReceipt", json!([hash]))
            .await?;
        let address = str_field(&receipt, "contractAddress")?;
        let deployed = anvil.rpc("eth_getCode", json!([address, "latest"])).await?;
        let preset = anvil
            .rpc("eth_getCode", json!([LOG_CONTRACT, "latest"]))
            .await?;
        ensure!(deployed == LOG_CONTRACT_RUNTIME && preset == LOG_CONTRACT_RUNTIME);
        Ok(())
    }

    async fn check_reorg(anvil: &Anvil, outcome: &ReorgOutcome, depth: u64) -> Result<()> {
        ensure!(
            outcome.fork_point + depth == outcome.old_head,
            "{outcome:?}"
        );
        ensure!(outcome.new_head == outcome.old_head + 1, "{outcome:?}");
        ensure!(outcome.old_hashes.len() as u64 == depth, "{outcome:?}");
        ensure!(outcome.new_hashes.len() as u64 == depth + 1, "{outcome:?}");
        for (old, new) in outcome.old_hashes.iter().zip(&outcome.new_hashes) {
            ensure!(old != new, "{outcome:?}");
        }
        ensure!(anvil.block_number().await? == outcome.new_head);
        ensure!(
            anvil
                .block_hashes(outcome.fork_point + 1, outcome.new_head)
                .await?
                == outcome.new_hashes
        );
        assert_chain_links(anvil, outcome.fork_point, outcome.new_head).await?;
        // The first new block holds the reorg transaction; its log names the replaced block.
        let filter = json!({"fromBlock": quantity(outcome.fork_point + 1), "toBlock": "latest"});
        let logs = anvil.rpc("eth_getLogs", json!([filter])).await?;
        let logs = logs.as_array().context("logs")?;
        let first = logs.first().context("no log in the new branch")?;
        ensure!(block_field(first, "blockNumber")? == outcome.fork_point + 1);
        ensure!(str_field(first, "data")? == outcome.old_hashes[0]);
        for log in logs {
            ensure!(
                outcome
                    .new_hashes
                    .iter()
                    .any(|h| h == str_field(log, "blockHash").unwrap_or_default())
            );
        }
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reorg_with_anvil_reorg() -> Result<()> {
        let anvil = Anvil::start_with_args(&["--prune-history", "64"]).await?;
        let spec = ChainSpec {
            blocks: 2_000,
            tx_every: 10,
            txs_per_block: 2,
        };
        let summary = anvil.build_chain(spec).await?;
        eprintln!("build_chain on --prune-history 64: {summary:?}");
        for depth in [1, 5, 1, 32] {
            let started = Instant::now();
            let outcome = anvil.reorg(depth).await?;
            eprintln!("reorg({depth}) in {:?}", started.elapsed());
            check_reorg(&anvil, &outcome, depth).await?;
        }
        // Reorg a block that already holds the reorg transaction of the same sender.
        let outcome = anvil.reorg(1).await?;
        let again = anvil.reorg(1).await?;
        ensure!(outcome.new_hashes[0] != again.new_hashes[0]);
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reorg_needs_numbered_prune_history() -> Result<()> {
        let anvil = Anvil::start().await?;
        anvil.mine(10).await?;
        let err = anvil.reorg(1).await.err().context("expected an error")?;
        let text = format!("{err:#}");
        eprintln!("reorg on a default node: {text}");
        ensure!(text.contains("--prune-history N"), "{text}");
        ensure!(anvil.block_number().await? == 10);
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reorg_from_snapshot_on_default_node() -> Result<()> {
        let anvil = Anvil::start().await?;
        let spec = ChainSpec {
            blocks: 1_000,
            tx_every: 10,
            txs_per_block: 2,
        };
        anvil.build_chain(spec).await?;
        for depth in [1u64, 5] {
            let id = anvil.snapshot().await?;
            let summary = anvil
                .build_chain(ChainSpec {
                    blocks: depth,
                    tx_every: 1,
                    txs_per_block: 2,
                })
                .await?;
            let outcome = anvil.reorg_from_snapshot(&id, depth + 1).await?;
            ensure!(outcome.old_head == summary.head, "{outcome:?}");
            check_reorg(&anvil, &outcome, depth).await?;
            // The new branch has only the reorg transaction.
            let block = anvil
                .rpc(
                    "eth_getBlockByNumber",
                    json!([quantity(outcome.fork_point + 1), false]),
                )
                .await?;
            ensure!(block["transactions"].as_array().map(Vec::len) == Some(1));
            // A snapshot is used up by the revert.
            ensure!(anvil.reorg_from_snapshot(&id, 1).await.is_err());
        }
        // Snapshots taken in a row: revert to the older one.
        let old = anvil.snapshot().await?;
        anvil.mine(3).await?;
        let _newer = anvil.snapshot().await?;
        anvil.mine(3).await?;
        let outcome = anvil.reorg_from_snapshot(&old, 7).await?;
        check_reorg(&anvil, &outcome, 6).await?;
        // The chain keeps working after the reorgs.
        let summary = anvil.build_chain(spec).await?;
        assert_chain_links(&anvil, summary.first_block, summary.head).await?;
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn parallel_starts() -> Result<()> {
        let started = Instant::now();
        let nodes = futures_join_all(8).await?;
        eprintln!("8 parallel starts in {:?}", started.elapsed());
        let mut ports: Vec<u16> = nodes.iter().map(|a| a.port).collect();
        ports.sort_unstable();
        ports.dedup();
        ensure!(ports.len() == 8);
        for node in &nodes {
            ensure!(node.rpc("eth_chainId", json!([])).await? == "0x7a69");
        }
        Ok(())
    }

    async fn futures_join_all(n: usize) -> Result<Vec<Anvil>> {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..n {
            set.spawn(Anvil::start());
        }
        let mut nodes = Vec::new();
        while let Some(node) = set.join_next().await {
            nodes.push(node??);
        }
        Ok(nodes)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn start_with_args_refuses_port_flags() -> Result<()> {
        ensure!(Anvil::start_with_args(&["--port", "1"]).await.is_err());
        let anvil = Anvil::start_with_args(&["--chain-id", "1337"]).await?;
        ensure!(anvil.rpc("eth_chainId", json!([])).await? == "0x539");
        Ok(())
    }
}
