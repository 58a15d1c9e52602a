//! The harness's fault proxy in front of a real Anvil node: without faults it is transparent;
//! with faults it answers 429 with `Retry-After`, refuses batches (but not single calls),
//! hangs and corrupts answers; its faults change at runtime; a dead endpoint refuses
//! connections.

use std::time::Duration;

use blockfill_devnet::faults::{BATCH_REJECTION, FaultProfile, TRUNCATED_ANSWER};
use blockfill_tests::{
    anvil::Anvil,
    proxy::{FaultProxy, dead_endpoint},
};
use reqwest::{StatusCode, header::HeaderMap};
use serde_json::{Value, json};

fn call(id: u64, method: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": []})
}

/// POSTs `body` to `url`: status, headers and the body as text.
async fn post(url: &str, body: &Value) -> (StatusCode, HeaderMap, String) {
    let response = reqwest::Client::new()
        .post(url)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

/// Anvil with 3 mined blocks.
async fn anvil() -> Anvil {
    let anvil = Anvil::start().await.expect("anvil starts");
    anvil.mine(3).await.unwrap();
    anvil
}

#[tokio::test]
async fn fault_proxy_without_faults_passes_calls_through() {
    let anvil = anvil().await;
    let proxy = FaultProxy::start(&anvil.url, FaultProfile::default())
        .await
        .unwrap();

    let (status, headers, body) = post(&proxy.url, &call(1, "eth_blockNumber")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        headers[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["id"], 1);
    assert_eq!(answer["result"], "0x3");

    let batch = json!([call(1, "eth_blockNumber"), call(2, "eth_chainId")]);
    let (status, _, body) = post(&proxy.url, &batch).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answers: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answers.as_array().map(Vec::len), Some(2), "{body}");

    let counts = proxy.injector.injected();
    assert_eq!(counts.requests, 2);
    assert_eq!(
        counts.errors
            + counts.rate_limited
            + counts.batches_rejected
            + counts.hung
            + counts.malformed,
        0
    );
}

#[tokio::test]
async fn fault_proxy_rate_limits_with_retry_after_until_the_profile_changes() {
    let anvil = anvil().await;
    let proxy = FaultProxy::start(
        &anvil.url,
        FaultProfile {
            rate_limit_rate: 1.0,
            retry_after_secs: 2,
            ..FaultProfile::default()
        },
    )
    .await
    .unwrap();

    let (status, headers, _) = post(&proxy.url, &call(1, "eth_blockNumber")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers[reqwest::header::RETRY_AFTER], "2");
    assert_eq!(proxy.injector.injected().rate_limited, 1);

    proxy.injector.set(FaultProfile::default()).unwrap();
    let (status, _, body) = post(&proxy.url, &call(2, "eth_blockNumber")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["result"],
        "0x3"
    );
}

#[tokio::test]
async fn fault_proxy_rejects_batches_but_passes_single_calls() {
    let anvil = anvil().await;
    let proxy = FaultProxy::start(
        &anvil.url,
        FaultProfile {
            reject_batches: true,
            ..FaultProfile::default()
        },
    )
    .await
    .unwrap();

    let batch = json!([call(1, "eth_blockNumber"), call(2, "eth_chainId")]);
    let (status, _, body) = post(&proxy.url, &batch).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, BATCH_REJECTION);
    let rejection: Value = serde_json::from_str(&body).unwrap();
    assert!(rejection.is_object(), "one error object, not an array");
    assert_eq!(rejection["error"]["code"], -32600);

    let (status, _, body) = post(&proxy.url, &call(3, "eth_blockNumber")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (answer["id"].clone(), answer["result"].clone()),
        (json!(3), json!("0x3"))
    );
    assert_eq!(proxy.injector.injected().batches_rejected, 1);
}

#[tokio::test]
async fn fault_proxy_hangs_until_the_client_gives_up() {
    let anvil = anvil().await;
    let proxy = FaultProxy::start(
        &anvil.url,
        FaultProfile {
            hang: true,
            ..FaultProfile::default()
        },
    )
    .await
    .unwrap();
    let err = reqwest::Client::new()
        .post(&proxy.url)
        .timeout(Duration::from_millis(300))
        .json(&call(1, "eth_blockNumber"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(proxy.injector.injected().hung, 1);
}

#[tokio::test]
async fn fault_proxy_corrupts_block_answers_with_malform_rate() {
    let anvil = anvil().await;
    let proxy = FaultProxy::start(
        &anvil.url,
        FaultProfile {
            malform_rate: 1.0,
            ..FaultProfile::default()
        },
    )
    .await
    .unwrap();
    let get_block = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": ["0x2", false]});

    let (status, _, direct) = post(&anvil.url, &get_block).await;
    assert_eq!(status, StatusCode::OK, "{direct}");
    let direct: Value = serde_json::from_str(&direct).unwrap();
    assert_eq!(direct["result"]["number"], "0x2", "{direct}");

    const CALLS: u64 = 8;
    for _ in 0..CALLS {
        let (status, headers, body) = post(&proxy.url, &get_block).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            headers[reqwest::header::CONTENT_LENGTH],
            body.len().to_string()
        );
        if body == TRUNCATED_ANSWER {
            assert!(serde_json::from_str::<Value>(&body).is_err());
            continue;
        }
        let answer: Value = serde_json::from_str(&body).unwrap();
        assert_ne!(answer, direct, "the answer passed unchanged");
        assert_eq!(answer["id"], direct["id"]);
        let (block, real) = (&answer["result"], &direct["result"]);
        let wrong_number = block["number"] == "0x3";
        let missing_hash = block.get("hash").is_none();
        let broken_parent = block["parentHash"] != real["parentHash"]
            && block["parentHash"].as_str().map(str::len) == Some(66);
        assert_eq!(
            [wrong_number, missing_hash, broken_parent]
                .iter()
                .filter(|&&kind| kind)
                .count(),
            1,
            "not exactly one kind of damage: {body}"
        );
    }
    let counts = proxy.injector.injected();
    assert_eq!((counts.requests, counts.malformed), (CALLS, CALLS));
}

#[tokio::test]
async fn dead_endpoint_refuses_connections() {
    let url = dead_endpoint().await;
    let err = reqwest::Client::new()
        .post(&url)
        .json(&call(1, "eth_blockNumber"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{url}: {err}");

    // Through the proxy, an unreachable upstream is a 502.
    let proxy = FaultProxy::start(&url, FaultProfile::default())
        .await
        .unwrap();
    let (status, _, body) = post(&proxy.url, &call(1, "eth_blockNumber")).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
}
