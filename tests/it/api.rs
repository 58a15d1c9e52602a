//! Bad requests get clear 4xx JSON errors and change nothing; readiness reports both stores.

use std::sync::Arc;

use blockfill_devnet::{DevnetChain, DevnetConfig, spawn_devnet};
use blockfill_tests::app::{spawn_app, test_scheduler};
use reqwest::StatusCode;
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_4xx_json_errors_and_change_nothing() {
    let app = spawn_app(test_scheduler()).await;
    let stop = CancellationToken::new();
    let devnet = Arc::new(DevnetChain::new(DevnetConfig {
        blocks: 100,
        ..DevnetConfig::default()
    }));
    let rpc = format!(
        "http://{}",
        spawn_devnet(devnet, "127.0.0.1:0".parse().unwrap(), stop.clone())
            .await
            .unwrap()
    );

    let other_chain = Arc::new(DevnetChain::new(DevnetConfig {
        blocks: 100,
        chain_id: 99,
        ..DevnetConfig::default()
    }));
    let other_rpc = format!(
        "http://{}",
        spawn_devnet(other_chain, "127.0.0.1:0".parse().unwrap(), stop.clone())
            .await
            .unwrap()
    );

    let cases = [
        (
            json!({"name": "ok", "rpc_urls": [{"url": rpc, "rps": 0}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "rps of",
        ),
        (
            json!({"name": "ok", "rpc_urls": [{"url": rpc, "max_concurrency": 1}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "max_concurrency of",
        ),
        (
            json!({"name": "ok", "rpc_urls": [{"url": rpc, "weight": 3}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown field `weight`",
        ),
        (
            json!({"name": "ok", "rpc_urls": [rpc, {"url": rpc}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "listed twice",
        ),
        (
            json!({"name": "ok", "rpc_urls": [rpc, other_rpc]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "disagree",
        ),
        (
            json!({"name": "Bad Name", "rpc_urls": [rpc]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid chain name",
        ),
        (
            json!({"name": "ok", "rpc_urls": []}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "at least one URL",
        ),
        (
            json!({"name": "ok", "rpc_urls": ["ftp://x"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "http or https",
        ),
        (
            json!({"name": "ok", "rpc_urls": ["http://127.0.0.1:1"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "cannot read eth_chainId",
        ),
        (
            json!({"name": "ok", "rpc_urls": [rpc], "batch_size": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "batch_size",
        ),
        (
            json!({"name": "ok", "rpc_urls": [rpc], "min_workers": 5, "max_workers": 2}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "min_workers",
        ),
        (
            json!({"name": "ok", "rpc_urls": [rpc], "surprise": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown field",
        ),
    ];
    for (body, status, message) in cases {
        let (got, answer) = app.post("/v1/chains", body.clone()).await;
        assert_eq!(got, status, "{body} -> {answer}");
        assert_eq!(answer["code"], "unprocessable", "{body} -> {answer}");
        assert!(
            answer["error"].as_str().unwrap_or("").contains(message),
            "{body} -> {answer}"
        );
    }
    let response = app
        .client
        .post(format!("http://{}/v1/chains", app.api))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let answer = response.json::<serde_json::Value>().await.unwrap();
    assert!(answer["error"].is_string(), "{answer}");
    assert_eq!(answer["code"], "bad_request", "{answer}");
    let (_, chains) = app.get("/v1/chains").await;
    assert_eq!(chains, json!([]), "a rejected request registered a chain");

    let chain = app.register_chain("ok", &rpc, 10).await;
    assert_eq!(chain["chain_id"], json!(1337));
    assert_eq!(
        chain["confirmations"],
        json!(0),
        "local chains need no confirmations"
    );
    assert_eq!(chain["head"], json!(99));
    let (status, answer) = app
        .post("/v1/chains", json!({"name": "ok", "rpc_urls": [rpc]}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(answer["code"], "conflict", "{answer}");
    let (status, answer) = app.get("/v1/chains/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        answer,
        json!({"error": "no chain named nope", "code": "not_found"})
    );
    let (status, _) = app.get("/v1/chains/nope/endpoints").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // One endpoint down at registration is fine while another answers.
    let (status, mixed) = app
        .post(
            "/v1/chains",
            json!({"name": "mixed", "rpc_urls": ["http://127.0.0.1:1", {"url": rpc, "rps": 50}], "live_sync": false}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{mixed}");
    assert_eq!(mixed["rpc_urls"], json!(["http://127.0.0.1:1", rpc]));
    assert_eq!(mixed["endpoints"][1], json!({"url": rpc, "rps": 50}));
    let (status, endpoints) = app.get("/v1/chains/mixed/endpoints").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(endpoints["endpoints"][1]["config"]["rps"], json!(50));

    let backfill_cases = [
        (
            json!({"chain": "nope", "from": 0, "to": 1}),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"chain": "ok", "from": 5, "to": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"chain": "ok", "from": 5}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"chain": "ok", "mode": "sideways"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"chain": "ok", "from": -1, "to": 5}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (body, status) in backfill_cases {
        let (got, answer) = app.post("/v1/backfills", body.clone()).await;
        assert_eq!(got, status, "{body} -> {answer}");
        assert!(answer["error"].is_string(), "{body} -> {answer}");
        let code = if status == StatusCode::NOT_FOUND {
            "not_found"
        } else {
            "unprocessable"
        };
        assert_eq!(answer["code"], code, "{body} -> {answer}");
    }
    assert_eq!(app.count("SELECT count(*) FROM backfills").await, 0);
    let (status, answer) = app.get("/v1/backfills/not-a-uuid").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["code"], "bad_request", "{answer}");
    let (status, _) = app
        .get("/v1/backfills/01a203aa-1407-7117-ba5c-cc446e1527cf")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.get("/v1/backfills?limit=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, ready) = app.get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    assert_eq!(ready["postgres"], "ok");
    assert_eq!(ready["redis"], "ok");
    let (status, health) = app.get("/healthz").await;
    assert_eq!((status, health), (StatusCode::OK, json!({"status": "ok"})));
    let page = app
        .client
        .get(format!("http://{}/", app.api))
        .send()
        .await
        .unwrap();
    assert!(
        page.text().await.unwrap().contains("app.js"),
        "the dashboard is served at /"
    );

    stop.cancel();
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_serves_its_openapi_document_and_swagger_ui() {
    let app = spawn_app(test_scheduler()).await;
    let (status, doc) = app.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/v1/chains"]["post"].is_object(), "{doc}");
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    let page = app
        .client
        .get(format!("http://{}/docs/", app.api))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("swagger"));
    // Unknown routes and methods answer JSON errors with a code; 405 keeps `Allow`.
    let (status, answer) = app.get("/v1/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(answer["code"], "not_found", "{answer}");
    let response = app
        .client
        .delete(format!("http://{}/v1/chains", app.api))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "GET,HEAD,POST");
    let answer = response.json::<serde_json::Value>().await.unwrap();
    assert_eq!(answer["code"], "method_not_allowed", "{answer}");
    app.teardown().await;
}
