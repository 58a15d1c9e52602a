//! The dashboard in a real browser: Debian's Chromium driven by playwright-core
//! (`scripts/install-browser.sh`, run here; idempotent) through `tests/browser/*.mjs`, against an
//! orchestrator of the harness. The browser script asserts what the page shows; this test sets
//! the scene and checks the stored outcome. The control test saves its screenshots under
//! `target/screenshots/` (the path is printed).

use std::{path::PathBuf, process::Stdio, time::Duration};

use blockfill_devnet::faults::FaultProfile;
use blockfill_tests::{
    app::{spawn_app, test_scheduler},
    devnet::ServedDevnet,
    proxy::FaultProxy,
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

/// Where the control test's screenshot goes: `target/screenshots/dashboard-control.png`.
fn screenshot_path() -> PathBuf {
    let dir = workspace().join("target/screenshots");
    std::fs::create_dir_all(&dir).expect("create target/screenshots");
    dir.join("dashboard-control.png")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_pauses_and_resumes_a_backfill_mid_way_and_backfills_a_gap_from_the_map() {
    let playwright = browser_tools().await;
    let mut app = spawn_app(test_scheduler()).await;
    let devnet = ServedDevnet::with_blocks(3_000).await;
    // Slow RPC answers, so the backfill lasts while the browser steers it.
    let slow = FaultProxy::start(
        &devnet.url(),
        FaultProfile {
            latency: Duration::from_millis(150),
            ..FaultProfile::default()
        },
    )
    .await
    .expect("slow proxy");
    app.register(json!({
        "name": "steered", "rpc_urls": [slow.url], "live_sync": false, "batch_size": 20,
    }))
    .await;
    app.spawn_inprocess_worker(2);
    let id = app.trigger_backfill("steered", 0, 1_999).await;
    wait_until(
        "the backfill under way",
        Duration::from_secs(60),
        async || {
            let (_, view) = app.get(&format!("/v1/backfills/{id}")).await;
            if view["status"] == "running" && view["blocks_done"].as_i64() > Some(0) {
                Ok(())
            } else {
                Err(view)
            }
        },
    )
    .await;

    // From here on the API is keyed: every /v1 request needs a key.
    let admin = app.create_key("ci-admin", "admin").await;
    app.bearer = Some(admin.clone());
    let viewer = app.create_key("ci-viewer", "viewer").await;
    let operator = app.create_key("ci-operator", "operator").await;

    let screenshot = screenshot_path();
    let run = Command::new("node")
        .arg(workspace().join("tests/browser/control.mjs"))
        .env("BASE", format!("http://{}", app.api))
        .env("CHAIN", "steered")
        .env("BACKFILL", &id)
        .env("PLAYWRIGHT_CORE", &playwright)
        .env("SCREENSHOT", &screenshot)
        .env("VIEWER_KEY", &viewer)
        .env("OPERATOR_KEY", &operator)
        .env("ADMIN_KEY", &admin)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("the browser test finishes within 5 minutes")
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the browser test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("backfill controls: ok"),
        "the browser test did not reach its end"
    );
    println!("{stdout}dashboard screenshot: {}", screenshot.display());
    assert!(screenshot.exists(), "{} was written", screenshot.display());

    // The stored outcome: completed with every block, after the pause.
    let (_, view) = app.get(&format!("/v1/backfills/{id}")).await;
    assert_eq!(view["status"], json!("completed"), "{view}");
    assert_eq!(view["blocks_done"], json!(2_000), "{view}");
    // The backfill started from the gap map covers exactly the gap above it.
    let gap_id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("gap backfill: "))
        .expect("the gap backfill's id");
    let (_, status) = app.get("/v1/chains/steered/status").await;
    let (_, gap) = app.get(&format!("/v1/backfills/{gap_id}")).await;
    assert_eq!(
        (&gap["mode"], &gap["from"], &gap["to"]),
        (&json!("gaps"), &json!(2_000), &status["historical"]["to"]),
        "{gap}"
    );
    app.teardown().await;
}
