//! The real binaries as child processes: finding them ([`binaries`]), starting one with its log
//! in `target/test-logs/` ([`Process::start`], [`Process::worker`]), the environment that points
//! them at a test's stores ([`store_env`]), and readiness on `/healthz` ([`wait_healthy`]).

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use blockfill_activities::settings::StoreArgs;
use tokio::process::{Child, Command};

/// Where the processes' logs go.
fn log_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-logs")
}

/// Paths of the real binaries (`cargo build --bins` puts them next to the test binary's parent).
pub struct Binaries {
    /// `blockfill`.
    pub blockfill: PathBuf,
    /// `blockfill-worker`.
    pub worker: PathBuf,
}

/// Finds the real binaries of this build.
pub fn binaries() -> anyhow::Result<Binaries> {
    let exe = std::env::current_exe()?;
    let deps = exe.parent().context("test binary without a directory")?;
    let profile_dir = deps
        .parent()
        .context("test binary outside target/<profile>/deps")?;
    let blockfill = profile_dir.join("blockfill");
    let worker = profile_dir.join("blockfill-worker");
    anyhow::ensure!(
        blockfill.is_file() && worker.is_file(),
        "the binaries are not built in {}: run `cargo build --workspace --bins` first (scripts/test.sh does)",
        profile_dir.display()
    );
    Ok(Binaries { blockfill, worker })
}

/// A child process of a real binary, killed on drop.
pub struct Process {
    /// The child.
    pub child: Child,
    /// Its log file.
    pub log: PathBuf,
}

impl Process {
    /// Starts `binary args` with `env`, logging to `target/test-logs/<name>.log`.
    pub fn start(
        binary: &PathBuf,
        args: &[&str],
        env: &[(&str, String)],
        name: &str,
    ) -> anyhow::Result<Self> {
        let dir = log_dir();
        std::fs::create_dir_all(&dir)?;
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log)?;
        let mut command = Command::new(binary);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(file.try_clone()?))
            .stderr(Stdio::from(file))
            .kill_on_drop(true);
        for (k, v) in env {
            command.env(k, v);
        }
        Ok(Self {
            child: command
                .spawn()
                .with_context(|| format!("starting {}", binary.display()))?,
            log,
        })
    }

    /// Starts a `blockfill-worker` on `stores` with `concurrency` jobs at once (and `extra_env`),
    /// logging to `target/test-logs/<name>/worker-0.log`: the orchestrator's own
    /// [`spawn_worker`](blockfill_orchestrator::fleet::spawn_worker), with the binary of this
    /// build and the tests' `RUST_LOG`.
    pub fn worker(
        stores: &StoreArgs,
        concurrency: usize,
        extra_env: &[(&str, String)],
        name: &str,
    ) -> anyhow::Result<Self> {
        let binaries = binaries()?;
        let mut env: Vec<(&str, String)> = store_env(stores)
            .into_iter()
            .filter(|(key, _)| *key == "RUST_LOG")
            .collect();
        env.extend(extra_env.iter().cloned());
        let worker = blockfill_orchestrator::fleet::spawn_worker(
            &binaries.worker,
            stores,
            concurrency,
            &env,
            &log_dir().join(name),
            0,
        )?;
        Ok(Self {
            child: worker.child,
            log: worker.log,
        })
    }

    /// SIGKILL, and wait for the exit.
    pub async fn kill9(&mut self) {
        let _ = self.child.kill().await;
    }

    /// SIGTERM, then wait up to `grace`; returns whether it exited by itself.
    pub async fn terminate(&mut self, grace: Duration) -> bool {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await;
        }
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(_) => true,
            Err(_) => {
                let _ = self.child.kill().await;
                false
            }
        }
    }
}

/// Environment for a real binary on `stores`.
pub fn store_env(stores: &StoreArgs) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", stores.database_url.clone()),
        ("REDIS_URL", stores.redis_url.clone()),
        ("BLOCKFILL_REDIS_PREFIX", stores.redis_prefix.clone()),
        // Batches of exactly the chain's batch_size: tests count them. The Anvil backfill test
        // turns the scheduler's growing of sparse batches back on.
        ("BLOCKFILL_BATCH_TARGET_ROWS", "0".to_owned()),
        (
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info,sqlx=warn".into()),
        ),
    ]
}

/// Polls `http://addr/healthz` until it answers or `timeout` passes.
pub async fn wait_healthy(addr: SocketAddr, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let client = reqwest::Client::new();
    loop {
        if let Ok(response) = client.get(format!("http://{addr}/healthz")).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{addr} not healthy within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
