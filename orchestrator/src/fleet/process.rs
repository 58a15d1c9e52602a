//! Local worker processes: finding the `blockfill-worker` binary and starting or stopping copies
//! of it (used by `demo` and `bench`; the fleet API builds on this).

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::Context as _;
use blockfill_activities::settings::StoreArgs;
use tokio::process::{Child, Command};

/// The `blockfill-worker` binary: `$BLOCKFILL_WORKER_BIN`, or next to the running executable.
pub fn worker_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("BLOCKFILL_WORKER_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().context("cannot locate the running executable")?;
    let dir = exe.parent().context("the executable has no directory")?;
    // Test binaries live one level deeper (target/debug/deps).
    for candidate in [
        dir.join("blockfill-worker"),
        dir.join("../blockfill-worker"),
    ] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    anyhow::bail!(
        "blockfill-worker not found next to {}; build it with `cargo build --release --bins` \
         or set BLOCKFILL_WORKER_BIN",
        exe.display()
    )
}

/// One worker process.
pub struct WorkerProcess {
    /// The child process (killed when dropped).
    pub child: Child,
    /// Where its logs go.
    pub log: PathBuf,
}

/// Starts a worker process against `stores` with `concurrency`, logging to `log_dir`.
pub fn spawn_worker(
    binary: &Path,
    stores: &StoreArgs,
    concurrency: usize,
    extra_env: &[(&str, String)],
    log_dir: &Path,
    index: usize,
) -> anyhow::Result<WorkerProcess> {
    std::fs::create_dir_all(log_dir)
        .with_context(|| format!("cannot create {}", log_dir.display()))?;
    let log = log_dir.join(format!("worker-{index}.log"));
    let file =
        std::fs::File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
    let mut command = Command::new(binary);
    command
        .env("DATABASE_URL", &stores.database_url)
        .env("REDIS_URL", &stores.redis_url)
        .env("BLOCKFILL_REDIS_PREFIX", &stores.redis_prefix)
        .env("BLOCKFILL_WORKER_CONCURRENCY", concurrency.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::from(file.try_clone()?))
        .stderr(Stdio::from(file))
        .kill_on_drop(true);
    for (key, value) in extra_env {
        command.env(key, value);
    }
    let child = command
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    Ok(WorkerProcess { child, log })
}

impl WorkerProcess {
    /// Sends SIGTERM and waits up to `grace` for a clean exit, then kills.
    pub async fn stop(mut self, grace: Duration) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await;
        }
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}
