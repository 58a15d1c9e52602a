//! The dashboard in a real browser: Debian's Chromium driven by playwright-core
//! (`scripts/install-browser.sh`, run here; idempotent) through `tests/browser/*.mjs`, against an
//! orchestrator of the harness. The browser script asserts what the page shows; this test sets
//! the scene and checks the stored outcome.

use std::{path::PathBuf, process::Stdio, time::Duration};

use blockfill_tests::{
    app::{spawn_app, test_scheduler},
    devnet::ServedDevnet,
    wait::wait_until,
};
use serde_json::json;
use tokio::process::Command;

/// The workspace's root directory.
fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Installs (if needed) Chromium and playwright-core; returns playwright-core's directory.
async fn browser_tools() -> String {
    let script = workspace().join("scripts/install-browser.sh");
    let output = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run scripts/install-browser.sh");
    assert!(
        output.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .last()
        .expect("the package directory on the last line")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_panel_shows_the_fleet_and_edits_the_bounds_with_the_apis_errors() {
    let playwright = browser_tools().await;
    let mut app = spawn_app(test_scheduler()).await;
    let devnet = ServedDevnet::with_blocks(1_000).await;
    app.register(json!({
        "name": "panel", "rpc_urls": [devnet.url()], "live_sync": false,
        "min_workers": 1, "max_workers": 3,
    }))
    .await;
    app.spawn_inprocess_worker(2);
    wait_until("a worker reporting", Duration::from_secs(30), async || {
        let (_, fleet) = app.get("/v1/chains/panel/fleet").await;
        if fleet["running"] == json!(1) {
            Ok(())
        } else {
            Err(fleet)
        }
    })
    .await;

    let run = Command::new("node")
        .arg(workspace().join("tests/browser/fleet.mjs"))
        .env("BASE", format!("http://{}", app.api))
        .env("CHAIN", "panel")
        .env("PLAYWRIGHT_CORE", &playwright)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the browser test finishes within 2 minutes")
        .expect("run node");
    assert!(
        output.status.success(),
        "the browser test failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    assert!(
        String::from_utf8_lossy(&output.stdout).contains("fleet panel: ok"),
        "the browser test did not reach its end"
    );
    let (_, chain) = app.get("/v1/chains/panel").await;
    assert_eq!(
        (chain["min_workers"].clone(), chain["max_workers"].clone()),
        (json!(1), json!(9)),
        "the refused edit changed nothing, the valid one raised max alone: {chain}"
    );
    app.teardown().await;
}
