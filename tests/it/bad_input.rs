//! Bad input is the client's fault and gets a 4xx JSON error, never a 5xx: concurrent
//! registrations of one chain name (one wins, the others conflict), and NUL characters, invalid
//! UTF-8 and out-of-range numbers in every path and query parameter the API takes.

use blockfill_tests::{
    anvil::Anvil,
    app::{spawn_app, test_scheduler},
};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registrations_of_one_name_answer_one_201_and_409s() {
    let app = spawn_app(test_scheduler()).await;
    let anvil = Anvil::start().await.unwrap();
    let body = json!({"name": "race", "rpc_urls": [anvil.url], "live_sync": false});
    let answers =
        futures::future::join_all((0..8).map(|_| app.post("/v1/chains", body.clone()))).await;
    let codes: Vec<u16> = answers.iter().map(|(code, _)| code.as_u16()).collect();
    assert_eq!(
        codes.iter().filter(|c| **c == 201).count(),
        1,
        "exactly one registration wins: {codes:?} {answers:?}"
    );
    assert_eq!(
        codes.iter().filter(|c| **c == 409).count(),
        7,
        "the others conflict: {codes:?} {answers:?}"
    );
    for (code, answer) in &answers {
        if *code == StatusCode::CONFLICT {
            assert!(answer["error"].is_string(), "{answer}");
            assert_eq!(answer["code"], "conflict", "{answer}");
        }
    }
    assert_eq!(
        app.count("SELECT count(*) FROM chains WHERE name = 'race'")
            .await,
        1
    );
    anvil.stop().await.unwrap();
    app.teardown().await;
}

/// The `code` an error answer of `status` carries.
fn code_of(status: StatusCode) -> &'static [&'static str] {
    match status.as_u16() {
        400 => &["bad_request"],
        404 => &["not_found"],
        405 => &["method_not_allowed"],
        409 => &["conflict", "invalid_state"],
        413 => &["payload_too_large"],
        422 => &["unprocessable", "invalid_fields"],
        _ => &[],
    }
}

/// What one request answered, when it is not a 4xx with a JSON `error` and the `code` of its
/// status.
fn misfit(what: &str, code: StatusCode, body: &Value) -> Option<String> {
    let fits = code.is_client_error()
        && body["error"].is_string()
        && body["code"]
            .as_str()
            .is_some_and(|c| code_of(code).contains(&c));
    (!fits).then(|| format!("{what} -> {code} {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impossible_path_and_query_values_get_4xx_json_errors() {
    let app = spawn_app(test_scheduler()).await;
    let anvil = Anvil::start().await.unwrap();
    app.register_chain("ok", &anvil.url, 10).await;
    let backfill = app.trigger_backfill("ok", 0, 0).await;

    let gets = [
        // Chains and what hangs off them.
        "/v1/chains/%00".to_owned(),
        "/v1/chains/ok%00".to_owned(),
        "/v1/chains/%FF".to_owned(),
        "/v1/chains/%00/status".to_owned(),
        "/v1/chains/ok%00/status".to_owned(),
        "/v1/chains/%FF/status".to_owned(),
        "/v1/chains/%00/gaps".to_owned(),
        "/v1/chains/%FF/gaps".to_owned(),
        "/v1/chains/ok/gaps?after=%00".to_owned(),
        "/v1/chains/ok/gaps?limit=%00".to_owned(),
        "/v1/chains/ok/gaps?limit=-1".to_owned(),
        "/v1/chains/ok/gaps?limit=99999999999999999999".to_owned(),
        "/v1/chains/ok/gaps?after=9223372036854775808".to_owned(),
        "/v1/chains/%00/endpoints".to_owned(),
        "/v1/chains/%FF/endpoints".to_owned(),
        "/v1/chains/%00/reorgs".to_owned(),
        "/v1/chains/%FF/reorgs".to_owned(),
        "/v1/chains/ok/reorgs?limit=%00".to_owned(),
        "/v1/chains/ok/reorgs?limit=0".to_owned(),
        "/v1/chains/ok/reorgs?limit=99999999999999999999".to_owned(),
        // Backfills.
        "/v1/backfills/%00".to_owned(),
        "/v1/backfills/%FF".to_owned(),
        format!("/v1/backfills/{backfill}%00"),
        "/v1/backfills?chain=%00".to_owned(),
        "/v1/backfills?limit=0".to_owned(),
        "/v1/backfills?limit=201".to_owned(),
        "/v1/backfills?limit=-1".to_owned(),
        "/v1/backfills?limit=99999999999999999999".to_owned(),
        // Batches.
        "/v1/batches/%00".to_owned(),
        "/v1/batches/ok:0-0%00".to_owned(),
        "/v1/batches/%FF".to_owned(),
        "/v1/batches?chain=%00".to_owned(),
        "/v1/batches?status=%00".to_owned(),
        "/v1/batches?status=bogus".to_owned(),
        "/v1/batches?backfill=%00".to_owned(),
        "/v1/batches?limit=0".to_owned(),
        "/v1/batches?limit=1001".to_owned(),
        "/v1/batches?limit=-1".to_owned(),
        "/v1/batches?limit=99999999999999999999".to_owned(),
        // Quarantine.
        "/v1/quarantine?chain=%00".to_owned(),
        "/v1/quarantine?limit=0".to_owned(),
        "/v1/quarantine?limit=99999999999999999999".to_owned(),
    ];
    let mut misfits = Vec::new();
    for path in &gets {
        let (code, body) = app.get(path).await;
        misfits.extend(misfit(&format!("GET {path}"), code, &body));
    }
    let posts = [
        ("/v1/batches/%00/retry", json!({})),
        ("/v1/batches/%FF/retry", json!({})),
        ("/v1/batches/ok:0-0%00/retry", json!({})),
        ("/v1/backfills/%00/retry-failed", json!({})),
        ("/v1/backfills/%FF/retry-failed", json!({})),
        ("/v1/chains/%00/live/resume", json!({})),
        ("/v1/chains/%FF/live/resume", json!({})),
        (
            "/v1/backfills",
            json!({"chain": "\u{0}", "from": 0, "to": 0}),
        ),
        ("/v1/backfills", json!({"chain": "ok\u{0}", "mode": "gaps"})),
        (
            "/v1/chains",
            json!({"name": "n\u{0}ul", "rpc_urls": [anvil.url]}),
        ),
        (
            "/v1/chains",
            json!({"name": "nul", "rpc_urls": [format!("{}/\u{0}", anvil.url)]}),
        ),
        (
            "/v1/chains",
            json!({"name": "nul", "rpc_urls": [{"url": format!("{}/\u{0}", anvil.url)}]}),
        ),
    ];
    for (path, body) in &posts {
        let (code, answer) = app.post(path, body.clone()).await;
        misfits.extend(misfit(&format!("POST {path} {body}"), code, &answer));
    }
    // Unknown routes, unknown methods and bodies over the limit: axum's and the layers' own
    // answers are JSON errors too.
    let (code, body) = app.get("/v1/nothing-here").await;
    misfits.extend(misfit("GET /v1/nothing-here", code, &body));
    let (code, body) = app.post("/v1/chains/ok/nothing", json!({})).await;
    misfits.extend(misfit("POST /v1/chains/ok/nothing", code, &body));
    let (code, body) = app.patch("/v1/backfills", json!({})).await;
    misfits.extend(misfit("PATCH /v1/backfills", code, &body));
    let huge = json!({"name": "x".repeat(70 * 1024), "rpc_urls": [anvil.url]});
    let (code, body) = app.post("/v1/chains", huge).await;
    misfits.extend(misfit("POST /v1/chains (70 KiB)", code, &body));
    let not_json = app
        .client
        .post(format!("http://{}/v1/backfills", app.api))
        .header("content-type", "text/plain")
        .body("chain=ok")
        .send()
        .await
        .unwrap();
    let code = not_json.status();
    let body = not_json.json::<Value>().await.unwrap_or(Value::Null);
    misfits.extend(misfit("POST /v1/backfills (text/plain)", code, &body));
    assert!(
        misfits.is_empty(),
        "{} requests did not get a 4xx JSON error:\n{}",
        misfits.len(),
        misfits.join("\n")
    );
    assert_eq!(
        app.count("SELECT count(*) FROM chains").await,
        1,
        "a rejected request registered a chain"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM backfills").await,
        1,
        "a rejected request created a backfill"
    );

    // Well-formed requests still work.
    for path in [
        "/v1/chains/ok",
        "/v1/chains/ok/status",
        "/v1/chains/ok/gaps?limit=5&after=-1",
        "/v1/chains/ok/reorgs?limit=5",
        "/v1/batches?chain=ok&status=queued&limit=5",
        "/v1/backfills?chain=ok",
        "/v1/quarantine?chain=ok",
    ] {
        let (code, body) = app.get(path).await;
        assert_eq!(code, StatusCode::OK, "GET {path}: {body}");
    }
    let (code, _) = app.get(&format!("/v1/backfills/{backfill}")).await;
    assert_eq!(code, StatusCode::OK);

    anvil.stop().await.unwrap();
    app.teardown().await;
}
