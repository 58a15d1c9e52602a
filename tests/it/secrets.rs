//! RPC URLs carry providers' API keys (in the path, the query or the user part): every answer
//! and page shows them redacted, and an admin reads the raw configuration through one route.

use blockfill_tests::{
    app::{spawn_app, test_scheduler},
    devnet::ServedDevnet,
};
use reqwest::StatusCode;
use serde_json::json;

/// The secrets a provider URL carries in this test; none may appear in any answer but the raw
/// configuration route.
const SECRETS: [&str; 3] = ["PATHKEY42", "QUERYKEY42", "hunter42"];

fn assert_no_secret(what: &str, body: &str) {
    for secret in SECRETS {
        assert!(
            !body.contains(secret),
            "{what} shows the secret {secret}: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_redact_rpc_urls_and_admins_read_them_raw() {
    let app = spawn_app(test_scheduler()).await;
    let devnet = ServedDevnet::with_blocks(50).await;
    let secret_url = format!(
        "http://user:hunter42@{}/v2/PATHKEY42?apikey=QUERYKEY42",
        devnet.addr
    );
    let plain_url = format!("http://{}", devnet.addr);
    let registered = app
        .register(json!({
            "name": "keyed",
            "rpc_urls": [secret_url, {"url": format!("{plain_url}/other"), "rps": 50}],
            "live_sync": false,
        }))
        .await;
    assert_no_secret("the registration answer", &registered.to_string());
    assert_eq!(
        registered["rpc_urls"][0],
        json!(format!("http://user:***@{}/…", devnet.addr)),
        "{registered:#}"
    );

    let client = reqwest::Client::new();
    for path in [
        "/v1/chains",
        "/v1/chains/keyed",
        "/v1/chains/keyed/endpoints",
        "/v1/chains/keyed/status",
        "/v1/orchestrator",
        "/v1/fleet/supervisor",
        "/",
    ] {
        let answer = client
            .get(format!("http://{}{path}", app.api))
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let body = answer.text().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {body}");
        assert_no_secret(path, &body);
    }

    let (status, patched) = app
        .patch("/v1/chains/keyed", json!({"max_workers": 3}))
        .await;
    assert_eq!(status, StatusCode::OK, "{patched:#}");
    assert_no_secret("the PATCH answer", &patched.to_string());

    // An error about an endpoint names it redacted too.
    let (status, refused) = app
        .post(
            "/v1/chains",
            json!({"name": "dead", "rpc_urls": ["http://127.0.0.1:1/v2/PATHKEY42"]}),
        )
        .await;
    assert!(status.is_client_error(), "{status} {refused:#}");
    assert_no_secret("an endpoint error", &refused.to_string());

    let (status, config) = app.get("/v1/chains/keyed/config").await;
    assert_eq!(status, StatusCode::OK, "{config:#}");
    assert_eq!(config["chain"], json!("keyed"));
    assert_eq!(config["rpc_urls"][0], json!(secret_url), "{config:#}");
    assert_eq!(
        config["rpc_urls"][1],
        json!({"url": format!("{plain_url}/other"), "rps": 50}),
        "{config:#}"
    );
    let (status, _) = app.get("/v1/chains/nope/config").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.teardown().await;
}
