//! The fault layer over an echo router (statuses, bodies, delays with paused time, runtime
//! changes, counts), profile validation, and the corruption helpers on recorded answers.

use axum::{
    body::{Body, Bytes},
    extract::Request,
    http::{StatusCode, header},
};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{
    layer::is_batch,
    malform::{Malformation, bump_quantity, corrupt, flip_last_hex_digit},
    *,
};
use axum::{Router, routing::post};
use tower::ServiceExt;

/// An echo router behind the fault layer of `injector`.
fn app(injector: &FaultInjector) -> Router {
    Router::new()
        .route("/", post(|body: Bytes| async move { body }))
        .layer(fault_layer(injector.clone()))
}

fn injector(profile: FaultProfile) -> FaultInjector {
    FaultInjector::new(profile).unwrap()
}

async fn call(router: Router, body: &'static str) -> (StatusCode, axum::http::HeaderMap, String) {
    let request = Request::post("/")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

const SINGLE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}"#;
const BATCH: &str = r#"  [{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}]"#;

#[tokio::test]
async fn no_faults_pass_requests_through() {
    let injector = FaultInjector::default();
    let (status, _, body) = call(app(&injector), SINGLE).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, SINGLE);
    assert_eq!(
        injector.injected(),
        FaultCounts {
            requests: 1,
            ..FaultCounts::default()
        }
    );
}

#[tokio::test]
async fn rate_limited_answers_carry_retry_after() {
    let injector = injector(FaultProfile {
        rate_limit_rate: 1.0,
        retry_after_secs: 7,
        ..FaultProfile::default()
    });
    let (status, headers, body) = call(app(&injector), SINGLE).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers[header::RETRY_AFTER], "7");
    assert_eq!(body, RATE_LIMIT_BODY);
    assert_eq!(injector.injected().rate_limited, 1);
}

#[tokio::test]
async fn error_rate_one_answers_503() {
    let injector = injector(FaultProfile {
        error_rate: 1.0,
        ..FaultProfile::default()
    });
    for _ in 0..3 {
        let (status, _, body) = call(app(&injector), SINGLE).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, ERROR_BODY);
    }
    let counts = injector.injected();
    assert_eq!((counts.requests, counts.errors), (3, 3));
}

#[tokio::test]
async fn rates_split_requests_between_503_and_429() {
    let injector = injector(FaultProfile {
        error_rate: 0.5,
        rate_limit_rate: 0.5,
        ..FaultProfile::default()
    });
    for _ in 0..50 {
        let (status, _, _) = call(app(&injector), SINGLE).await;
        assert!(
            status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS,
            "{status}"
        );
    }
    let counts = injector.injected();
    assert_eq!(counts.errors + counts.rate_limited, 50);
}

#[tokio::test]
async fn reject_batches_rejects_arrays_and_passes_objects() {
    let injector = injector(FaultProfile {
        reject_batches: true,
        ..FaultProfile::default()
    });
    let (status, headers, body) = call(app(&injector), BATCH).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(body, BATCH_REJECTION);
    let rejection: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(rejection["error"]["code"], -32600);

    let (status, _, body) = call(app(&injector), SINGLE).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body, SINGLE,
        "the single request reaches the inner handler unchanged"
    );
    assert_eq!(injector.injected().batches_rejected, 1);
}

#[tokio::test(start_paused = true)]
async fn latency_and_jitter_delay_the_answer() {
    let injector = injector(FaultProfile {
        latency: Duration::from_millis(250),
        jitter: Duration::from_millis(100),
        ..FaultProfile::default()
    });
    for _ in 0..5 {
        let started = tokio::time::Instant::now();
        let (status, _, _) = call(app(&injector), SINGLE).await;
        let elapsed = started.elapsed();
        assert_eq!(status, StatusCode::OK);
        assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
        // The timer has millisecond resolution and rounds up: 349.2ms sleeps 350ms.
        assert!(elapsed <= Duration::from_millis(350), "{elapsed:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn latency_also_delays_injected_errors() {
    let injector = injector(FaultProfile {
        latency: Duration::from_secs(2),
        error_rate: 1.0,
        ..FaultProfile::default()
    });
    let started = tokio::time::Instant::now();
    let (status, _, _) = call(app(&injector), SINGLE).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() >= Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn hung_requests_get_no_answer() {
    let injector = injector(FaultProfile {
        hang: true,
        ..FaultProfile::default()
    });
    let answered =
        tokio::time::timeout(Duration::from_secs(3600), call(app(&injector), SINGLE)).await;
    assert!(answered.is_err(), "a hung request was answered");
    assert_eq!(injector.injected().hung, 1);
}

#[tokio::test]
async fn hung_requests_are_released_on_shutdown() {
    let injector = injector(FaultProfile {
        hang: true,
        ..FaultProfile::default()
    });
    let shutdown = CancellationToken::new();
    let router = Router::new()
        .route("/", post(|body: Bytes| async move { body }))
        .layer(fault_layer(injector.clone()).release_on(shutdown.clone()));
    let pending = tokio::spawn(call(router, SINGLE));
    while injector.injected().hung == 0 {
        tokio::task::yield_now().await;
    }
    shutdown.cancel();
    let (status, _, _) = pending.await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn set_changes_the_profile_of_a_running_router() {
    let injector = FaultInjector::default();
    let router = app(&injector);
    assert_eq!(call(router.clone(), SINGLE).await.0, StatusCode::OK);
    injector
        .set(FaultProfile {
            error_rate: 1.0,
            ..FaultProfile::default()
        })
        .unwrap();
    assert_eq!(injector.profile().error_rate, 1.0);
    assert_eq!(
        call(router.clone(), SINGLE).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    injector.set(FaultProfile::default()).unwrap();
    assert_eq!(call(router, SINGLE).await.0, StatusCode::OK);
    let counts = injector.injected();
    assert_eq!((counts.requests, counts.errors), (3, 1));
}

#[test]
fn validate_rejects_bad_rates() {
    let bad = [
        (1.5, 0.0),
        (-0.1, 0.0),
        (0.0, 2.0),
        (f64::NAN, 0.0),
        (0.6, 0.5),
    ];
    for (error_rate, rate_limit_rate) in bad {
        let profile = FaultProfile {
            error_rate,
            rate_limit_rate,
            ..FaultProfile::default()
        };
        assert!(profile.validate().is_err(), "{profile:?} passed");
        assert!(FaultInjector::new(profile).is_err());
    }
    let err = FaultProfile {
        error_rate: 1.5,
        ..FaultProfile::default()
    }
    .validate()
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "error_rate must be a fraction between 0 and 1, got 1.5"
    );
    for (error_rate, rate_limit_rate) in [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (0.7, 0.3)] {
        FaultProfile {
            error_rate,
            rate_limit_rate,
            ..FaultProfile::default()
        }
        .validate()
        .unwrap();
    }
}

#[test]
fn set_refuses_an_invalid_profile_and_keeps_the_current_one() {
    let injector = injector(FaultProfile {
        error_rate: 0.5,
        ..FaultProfile::default()
    });
    let refused = injector.set(FaultProfile {
        error_rate: 0.9,
        rate_limit_rate: 0.9,
        ..FaultProfile::default()
    });
    assert!(matches!(
        refused,
        Err(FaultProfileError::RatesAboveOne { .. })
    ));
    assert_eq!(injector.profile().error_rate, 0.5);
}

#[test]
fn profile_reads_humantime_durations_and_fills_defaults() {
    let profile: FaultProfile = serde_json::from_str(
        r#"{"latency": "100ms", "jitter": "1s 500ms", "rate_limit_rate": 0.25}"#,
    )
    .unwrap();
    assert_eq!(
        profile,
        FaultProfile {
            latency: Duration::from_millis(100),
            jitter: Duration::from_millis(1500),
            rate_limit_rate: 0.25,
            ..FaultProfile::default()
        }
    );
    assert_eq!(profile.retry_after_secs, 1);
    let empty: FaultProfile = serde_json::from_str("{}").unwrap();
    assert_eq!(empty, FaultProfile::default());
    assert!(!empty.injects_anything());
    assert_eq!(empty.to_string(), "none");
    let busy = FaultProfile {
        latency: Duration::from_millis(100),
        error_rate: 0.07,
        rate_limit_rate: 0.125,
        retry_after_secs: 2,
        reject_batches: true,
        malform_rate: 0.1,
        ..FaultProfile::default()
    };
    assert_eq!(
        busy.to_string(),
        "latency 100ms, 7% HTTP 503, 12.5% HTTP 429 (Retry-After 2), batches rejected, \
         10% malformed answers"
    );
    let malformed: FaultProfile = serde_json::from_str(r#"{"malform_rate": 0.25}"#).unwrap();
    assert_eq!(malformed.malform_rate, 0.25);
    assert!(malformed.injects_anything());
    assert!(serde_json::from_str::<FaultProfile>(r#"{"eror_rate": 0.1}"#).is_err());
}

/// A hex string of `0x` and 64 digits: `pair` 32 times.
fn hash(pair: &str) -> String {
    format!("0x{}", pair.repeat(32))
}

/// A JSON-RPC batch answer with two blocks, `0x1f` and `0x20`; the parent hash of the
/// first ends in `f`.
fn two_blocks() -> Value {
    serde_json::json!([
        {"jsonrpc": "2.0", "id": 1, "result": {
            "number": "0x1f", "hash": hash("1f"), "parentHash": hash("ef"),
            "timestamp": "0x64", "transactions": []
        }},
        {"jsonrpc": "2.0", "id": 2, "result": {
            "number": "0x20", "hash": hash("20"), "parentHash": hash("1f"),
            "timestamp": "0x65", "transactions": []
        }}
    ])
}

/// A router answering every request with `answer` (as JSON), behind the fault layer of
/// `injector`.
fn answering(injector: &FaultInjector, answer: String) -> Router {
    Router::new()
        .route(
            "/",
            post(move || async move { ([(header::CONTENT_TYPE, "application/json")], answer) }),
        )
        .layer(fault_layer(injector.clone()))
}

/// Calls `router` and checks the answer is a 200 whose `Content-Length` matches its body.
async fn call_checking_length(router: Router) -> String {
    let (status, headers, body) = call(router, BATCH).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_LENGTH], body.len().to_string());
    body
}

#[tokio::test]
async fn malform_rate_one_corrupts_every_answer_in_one_of_four_ways() {
    let injector = injector(FaultProfile {
        malform_rate: 1.0,
        ..FaultProfile::default()
    });
    let original = two_blocks();
    let router = answering(&injector, original.to_string());

    let mut wrong_number = original.clone();
    wrong_number[0]["result"]["number"] = "0x20".into();
    let mut missing_hash = original.clone();
    missing_hash[0]["result"]
        .as_object_mut()
        .unwrap()
        .remove("hash");
    let mut broken_parent = original.clone();
    broken_parent[0]["result"]["parentHash"] = format!("0x{}e0", "ef".repeat(31)).into();
    let kinds = [
        ("wrong_number", wrong_number),
        ("missing_hash", missing_hash),
        ("broken_parent", broken_parent),
    ];

    let mut seen = std::collections::BTreeMap::<&str, u32>::new();
    for _ in 0..200 {
        let body = call_checking_length(router.clone()).await;
        let kind = if body == TRUNCATED_ANSWER {
            assert!(serde_json::from_str::<Value>(&body).is_err());
            "unparsable"
        } else {
            let answer: Value = serde_json::from_str(&body).unwrap();
            assert_ne!(answer, original, "an answer passed unchanged");
            let matching: Vec<&str> = kinds
                .iter()
                .filter(|(_, expected)| *expected == answer)
                .map(|(name, _)| *name)
                .collect();
            assert_eq!(matching.len(), 1, "not exactly one kind of damage: {body}");
            matching[0]
        };
        *seen.entry(kind).or_default() += 1;
    }
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        [
            "broken_parent",
            "missing_hash",
            "unparsable",
            "wrong_number"
        ],
        "{seen:?}"
    );
    let counts = injector.injected();
    assert_eq!((counts.requests, counts.malformed), (200, 200));
    assert!(counts.to_string().ends_with(", 200 malformed"), "{counts}");
}

#[tokio::test]
async fn malform_rate_zero_passes_answers_unchanged() {
    let injector = FaultInjector::default();
    let original = two_blocks().to_string();
    let router = answering(&injector, original.clone());
    for _ in 0..20 {
        assert_eq!(call_checking_length(router.clone()).await, original);
    }
    assert_eq!(injector.injected().malformed, 0);
}

#[tokio::test]
async fn malformed_answers_are_only_those_that_pass() {
    let injector = injector(FaultProfile {
        error_rate: 1.0,
        malform_rate: 1.0,
        ..FaultProfile::default()
    });
    let (status, _, body) = call(answering(&injector, two_blocks().to_string()), BATCH).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, ERROR_BODY);
    let counts = injector.injected();
    assert_eq!((counts.errors, counts.malformed), (1, 0));
}

#[tokio::test]
async fn malformed_answers_keep_non_200_answers() {
    let injector = injector(FaultProfile {
        malform_rate: 1.0,
        ..FaultProfile::default()
    });
    let router = Router::new()
        .route(
            "/",
            post(|| async { (StatusCode::BAD_GATEWAY, "upstream down") }),
        )
        .layer(fault_layer(injector.clone()));
    let (status, _, body) = call(router, SINGLE).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::BAD_GATEWAY, "upstream down")
    );
    assert_eq!(injector.injected().malformed, 0);
}

#[test]
fn malformed_logs_get_a_wrong_block_number_or_are_cut_short() {
    let logs = serde_json::json!({"jsonrpc": "2.0", "id": 7, "result": [
        {"blockNumber": "0xff", "logIndex": "0x0"},
        {"blockNumber": "0xff", "logIndex": "0x1"}
    ]});
    let body = logs.to_string();
    let mut wrong = logs.clone();
    wrong["result"][0]["blockNumber"] = "0x100".into();
    let mut kinds = std::collections::BTreeSet::new();
    for choice in 0..4 {
        let (corrupted, kind) = corrupt(body.as_bytes(), choice);
        match kind {
            Malformation::WrongNumber => {
                assert_eq!(serde_json::from_slice::<Value>(&corrupted).unwrap(), wrong)
            }
            Malformation::Unparsable => assert_eq!(corrupted, TRUNCATED_ANSWER.as_bytes()),
            other => panic!("{other:?} on logs"),
        }
        kinds.insert(kind.name());
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["unparsable", "wrong_number"]
    );

    // A block in the batch wins over logs before it.
    let batch = serde_json::json!([
        {"jsonrpc": "2.0", "id": 1, "result": [{"blockNumber": "0x1"}]},
        {"jsonrpc": "2.0", "id": 2, "result": {"number": "0x1", "hash": hash("aa")}}
    ]);
    let (corrupted, kind) = corrupt(batch.to_string().as_bytes(), 0);
    assert_eq!(kind, Malformation::WrongNumber);
    let corrupted: Value = serde_json::from_slice(&corrupted).unwrap();
    assert_eq!(corrupted[0], batch[0]);
    assert_eq!(corrupted[1]["result"]["number"], "0x2");
}

#[test]
fn answers_with_nothing_to_corrupt_are_cut_short() {
    let nothing = [
        "not json".to_owned(),
        String::new(),
        r#"{"jsonrpc":"2.0","id":1,"result":"0x3"}"#.to_owned(),
        r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"x"}}"#.to_owned(),
        r#"{"jsonrpc":"2.0","id":1,"result":[]}"#.to_owned(),
    ];
    for body in &nothing {
        for choice in 0..4 {
            let (corrupted, kind) = corrupt(body.as_bytes(), choice);
            assert_eq!(kind, Malformation::Unparsable, "{body}");
            assert_eq!(corrupted, TRUNCATED_ANSWER.as_bytes());
        }
    }
    // A block lacking the field to damage is cut short too.
    let no_hash = r#"{"jsonrpc":"2.0","id":1,"result":{"number":"0x1"}}"#;
    assert_eq!(corrupt(no_hash.as_bytes(), 1).1, Malformation::Unparsable);
    assert_eq!(corrupt(no_hash.as_bytes(), 2).1, Malformation::Unparsable);
    assert_eq!(corrupt(no_hash.as_bytes(), 0).1, Malformation::WrongNumber);
}

#[test]
fn hex_helpers_bump_quantities_and_flip_digits() {
    let bumped = |hex: &str| {
        let mut value = Value::from(hex);
        bump_quantity(&mut value).then(|| value.as_str().unwrap().to_owned())
    };
    assert_eq!(bumped("0x1f").as_deref(), Some("0x20"));
    assert_eq!(bumped("0x0").as_deref(), Some("0x1"));
    assert_eq!(bumped("0x"), None);
    assert_eq!(bumped("0x+1"), None);
    assert_eq!(bumped("31"), None);
    assert!(!bump_quantity(&mut Value::Null));
    assert_eq!(flip_last_hex_digit("0xaa").as_deref(), Some("0xab"));
    assert_eq!(flip_last_hex_digit("0x1f").as_deref(), Some("0x10"));
    assert_eq!(flip_last_hex_digit("0x19").as_deref(), Some("0x1a"));
    assert_eq!(flip_last_hex_digit("0xAF").as_deref(), Some("0xA0"));
    assert_eq!(flip_last_hex_digit("0xAE").as_deref(), Some("0xAF"));
    assert_eq!(flip_last_hex_digit("0x"), None);
    assert_eq!(flip_last_hex_digit("0xg"), None);
}

#[test]
fn validate_rejects_bad_malform_rates() {
    for malform_rate in [1.5, -0.1, f64::NAN] {
        let profile = FaultProfile {
            malform_rate,
            ..FaultProfile::default()
        };
        assert!(profile.validate().is_err(), "{profile:?} passed");
        assert!(FaultInjector::new(profile).is_err());
    }
    let err = FaultProfile {
        malform_rate: 1.5,
        ..FaultProfile::default()
    }
    .validate()
    .unwrap_err();
    assert_eq!(
        err,
        FaultProfileError::RateOutOfRange {
            name: "malform_rate",
            value: 1.5
        }
    );
    assert_eq!(
        err.to_string(),
        "malform_rate must be a fraction between 0 and 1, got 1.5"
    );
    // Drawn separately: it does not count towards the 503/429 sum.
    FaultProfile {
        error_rate: 0.5,
        rate_limit_rate: 0.5,
        malform_rate: 1.0,
        ..FaultProfile::default()
    }
    .validate()
    .unwrap();
}

#[test]
fn batches_are_recognised_after_whitespace() {
    assert!(is_batch(&Bytes::from_static(b" \n\t[{}]")));
    assert!(!is_batch(&Bytes::from_static(b"{\"a\": [1]}")));
    assert!(!is_batch(&Bytes::new()));
}
