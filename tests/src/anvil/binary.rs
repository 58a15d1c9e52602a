//! Finding the anvil binary: `$BLOCKFILL_ANVIL_BIN`, the workspace cache, or an installation by
//! `scripts/install-anvil.sh`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, ensure};

use super::{ANVIL_BIN_ENV, CACHED_BIN};

/// The workspace root: the parent of this crate's manifest directory.
fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

pub(super) fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Path of the anvil binary to run.
///
/// In order: `$BLOCKFILL_ANVIL_BIN` (an error if set but not an executable file), then
/// `<workspace>/.cache/anvil/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil`, else runs
/// `<workspace>/scripts/install-anvil.sh` (npm, about 3 s) once per process: concurrent callers
/// wait for the same installation, and its failure is remembered (not retried).
///
/// Blocking; from async code call it through `tokio::task::spawn_blocking` ([`Anvil::start`](super::Anvil::start)
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
