//! Access control of the admin API: the auth matrix (every route of the access table x no key,
//! viewer, operator, admin), the loopback development mode, revocation, `--insecure-no-auth`
//! and refusing a non-loopback address without a key, the `blockfill keys` CLI as the real
//! binary, the audit log, the per-key rate limit and `Idempotency-Key`.

use std::{net::SocketAddr, time::Duration};

use blockfill_activities::settings::StoreArgs;
use blockfill_orchestrator::{
    Orchestrator,
    api::access::{ROUTES, RouteRule},
    settings::ServeArgs,
};
use blockfill_tests::{
    app::{TestApp, binaries, fresh_stores, spawn_app, spawn_app_with, store_env, test_scheduler},
    devnet::ServedDevnet,
    wait::wait_until,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// The three keys of a matrix run.
struct Keys {
    viewer: String,
    operator: String,
    admin: String,
}

/// In development mode (no key yet, loopback): creates an admin key, then with it a viewer and
/// an operator key.
async fn create_keys(app: &mut TestApp) -> Keys {
    let admin = app.create_key("matrix-admin", "admin").await;
    app.bearer = Some(admin.clone());
    let viewer = app.create_key("matrix-viewer", "viewer").await;
    let operator = app.create_key("matrix-operator", "operator").await;
    Keys {
        viewer,
        operator,
        admin,
    }
}

/// A concrete path for a route template.
fn concrete(route: &str) -> String {
    route
        .replace("/v1/keys/{id}", "/v1/keys/bfk_000000000000")
        .replace("{id}", "00000000-0000-0000-0000-000000000000")
        .replace("{name}", "nochain")
}

fn rank(role: &str) -> u8 {
    match role {
        "viewer" => 1,
        "operator" => 2,
        "admin" => 3,
        other => panic!("unknown role {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_each_role_as_the_table_says() {
    let mut app = spawn_app(test_scheduler()).await;
    let keys = create_keys(&mut app).await;
    app.bearer = None;
    let callers: [(&str, Option<&str>); 4] = [
        ("none", None),
        ("viewer", Some(&keys.viewer)),
        ("operator", Some(&keys.operator)),
        ("admin", Some(&keys.admin)),
    ];
    assert!(ROUTES.len() >= 30, "the table lists every route");
    let mut failures = Vec::new();
    for RouteRule {
        method,
        route,
        role,
        ..
    } in ROUTES
    {
        let path = concrete(route);
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        // Deleting a key last would lock the matrix out: the key deleted is a made-up one.
        let body = (method != Method::GET).then(|| json!({}));
        for (caller, key) in callers {
            let (status, _, answer) = app
                .request_as(key, method.clone(), &path, body.clone(), &[])
                .await;
            let expected = match caller {
                "none" => "401",
                c if rank(c) >= rank(role.as_str()) => "allowed",
                _ => "403",
            };
            let ok = match expected {
                "401" => status == StatusCode::UNAUTHORIZED && answer["code"] == "unauthorized",
                "403" => {
                    status == StatusCode::FORBIDDEN
                        && answer["code"] == "forbidden"
                        && answer["required_role"] == role.as_str()
                }
                _ => status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
            };
            if !ok {
                failures.push(format!(
                    "{method} {route} as {caller}: expected {expected}, got {status} {answer}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Endpoint changes need admin even on the operator's chain route.
    let (status, _, answer) = app
        .request_as(
            Some(&keys.operator),
            Method::PATCH,
            "/v1/chains/nochain",
            Some(json!({"rpc_urls": ["http://127.0.0.1:1"]})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["required_role"], "admin", "{answer}");

    // The dashboard and the probes stay open.
    for path in ["/", "/healthz", "/readyz", "/metrics"] {
        let (status, _, _) = app.request_as(None, Method::GET, path, None, &[]).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_need_a_key_when_protected() {
    let mut app = spawn_app_with(test_scheduler(), |args| args.access.protect_probes = true).await;
    let keys = create_keys(&mut app).await;
    for path in ["/healthz", "/readyz", "/metrics"] {
        let (status, _, _) = app.request_as(None, Method::GET, path, None, &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        let (status, _, _) = app
            .request_as(Some(&keys.viewer), Method::GET, path, None, &[])
            .await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    let (status, _, _) = app.request_as(None, Method::GET, "/", None, &[]).await;
    assert_eq!(status, StatusCode::OK, "the dashboard stays open");
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_is_admin_until_a_key_exists_then_every_request_needs_one() {
    let mut app = spawn_app(test_scheduler()).await;
    let (status, whoami) = app.get("/v1/whoami").await;
    assert_eq!(status, StatusCode::OK, "{whoami}");
    assert_eq!(
        whoami,
        json!({"auth": "loopback", "key_id": null, "name": null, "role": "admin"})
    );

    let (status, created) = app
        .post("/v1/keys", json!({"name": "first", "role": "operator"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let token = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(
        id.starts_with("bfk_") && token.starts_with(&format!("{id}_")),
        "{created}"
    );

    let (status, refused) = app.get("/v1/whoami").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");
    assert_eq!(refused["code"], "unauthorized");
    let (status, refused) = app.get("/v1/chains").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");

    app.bearer = Some(token.clone());
    let (status, whoami) = app.get("/v1/whoami").await;
    assert_eq!(status, StatusCode::OK, "{whoami}");
    assert_eq!(
        whoami,
        json!({"auth": "key", "key_id": id, "name": "first", "role": "operator"})
    );
    // The list never shows a secret.
    let (status, refused) = app.get("/v1/keys").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(refused["required_role"], "admin");
    let listed: Vec<Value> = sea_orm::sqlx::query_as::<_, (String,)>("SELECT id FROM api_keys")
        .fetch_all(&app.pool)
        .await
        .unwrap()
        .into_iter()
        .map(|(id,)| json!(id))
        .collect();
    assert_eq!(listed, vec![json!(id)]);

    // A wrong secret for the right id, and a made-up token, are refused alike.
    let forged = format!("{id}_{}", "0".repeat(64));
    for bad in [forged.as_str(), "bfk_nonsense", "Basic abc"] {
        let (status, _, answer) = app
            .request_as(Some(bad), Method::GET, "/v1/whoami", None, &[])
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bad}: {answer}");
    }
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_is_refused() {
    let mut app = spawn_app(test_scheduler()).await;
    let keys = create_keys(&mut app).await;
    let viewer_id = keys.viewer.split('_').take(2).collect::<Vec<_>>().join("_");
    let (status, _, _) = app
        .request_as(Some(&keys.viewer), Method::GET, "/v1/chains", None, &[])
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, _, revoked) = app
        .request_as(
            Some(&keys.admin),
            Method::DELETE,
            &format!("/v1/keys/{viewer_id}"),
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    let (status, _, refused) = app
        .request_as(Some(&keys.viewer), Method::GET, "/v1/chains", None, &[])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");

    let (status, _, listed) = app
        .request_as(Some(&keys.admin), Method::GET, "/v1/keys", None, &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(
        listed
            .iter()
            .all(|k| k["last_used_at"].is_string() == (k["name"] != "matrix-operator")),
        "keys used have a last use: {listed:?}"
    );
    assert!(
        listed.iter().all(|k| k.get("token").is_none()
            && k.get("secret_sha256").is_none()
            && !k.to_string().contains(&keys.admin[17..])),
        "{listed:?}"
    );
    let (status, _, _) = app
        .request_as(
            Some(&keys.admin),
            Method::DELETE,
            "/v1/keys/bfk_ffffffffffff",
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_no_auth_answers_everyone_as_admin_even_on_a_public_address() {
    let app = spawn_app_with(test_scheduler(), |args| {
        args.access.insecure_no_auth = true;
        args.api_addr = SocketAddr::from(([0, 0, 0, 0], 0));
    })
    .await;
    let api = SocketAddr::from(([127, 0, 0, 1], app.api.port()));
    let whoami: Value = app
        .client
        .get(format!("http://{api}/v1/whoami"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        whoami,
        json!({"auth": "insecure", "key_id": null, "name": null, "role": "admin"})
    );
    app.teardown().await;
}

/// Starts an orchestrator on `stores` listening on `addr`.
async fn start_on(
    stores: &StoreArgs,
    addr: SocketAddr,
    adjust: impl FnOnce(&mut ServeArgs),
) -> anyhow::Result<(Orchestrator, CancellationToken)> {
    let shutdown = CancellationToken::new();
    let mut args = ServeArgs::on_loopback(stores.clone(), test_scheduler());
    args.api_addr = addr;
    adjust(&mut args);
    Orchestrator::start(args, shutdown.clone())
        .await
        .map(|o| (o, shutdown))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_a_public_address_without_a_key_refuses_to_start() {
    let mut stores = fresh_stores();
    let public = SocketAddr::from(([0, 0, 0, 0], 0));
    let refused = start_on(&stores, public, |_| {})
        .await
        .err()
        .expect("refuses to start");
    let message = format!("{refused:#}");
    assert!(
        message.contains("blockfill keys create") && message.contains("--insecure-no-auth"),
        "{message}"
    );

    // With a key it starts, and a client on a non-loopback address needs the key.
    let (orchestrator, shutdown) = start_on(&stores, SocketAddr::from(([127, 0, 0, 1], 0)), |_| {})
        .await
        .unwrap();
    let pool = orchestrator.context.pool.clone();
    let created = blockfill_activities::store::api_keys::create(
        &pool,
        "ops",
        blockfill_activities::store::api_keys::AccessRole::Admin,
    )
    .await
    .unwrap();
    shutdown.cancel();
    orchestrator.wait().await.unwrap();
    let (orchestrator, shutdown) = start_on(&stores, public, |_| {}).await.unwrap();
    let pool = orchestrator.context.pool.clone();
    let client = reqwest::Client::new();
    let url = format!(
        "http://127.0.0.1:{}/v1/whoami",
        orchestrator.api_addr.port()
    );
    let status = client.get(&url).send().await.unwrap().status();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let status = client
        .get(&url)
        .bearer_auth(&created.token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);

    // Every key revoked: development mode again, and a client that is not on loopback is told
    // how to create one.
    blockfill_activities::store::api_keys::revoke(&pool, &created.key.id)
        .await
        .unwrap();
    if let Some(own_ip) = non_loopback_ip() {
        let url = format!("http://{own_ip}:{}/v1/whoami", orchestrator.api_addr.port());
        let answer = wait_until(
            "the revocation to take effect",
            Duration::from_secs(5),
            async || {
                let response = client.get(&url).send().await.map_err(|e| e.to_string())?;
                let status = response.status();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                if status == StatusCode::UNAUTHORIZED
                    && body["error"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("only loopback")
                {
                    Ok(body)
                } else {
                    Err(format!("{status} {body}"))
                }
            },
        )
        .await;
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .contains("blockfill keys create"),
            "{answer}"
        );
    }
    shutdown.cancel();
    orchestrator.wait().await.unwrap();
    stores.drop_now().await;
}

/// An address of this host that is not loopback, if it has one.
fn non_loopback_ip() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// Runs `blockfill keys args` on `stores`; answers stdout, or panics with stderr.
async fn keys_cli(stores: &StoreArgs, args: &[&str]) -> (bool, String, String) {
    let binaries = binaries().unwrap();
    let output = tokio::process::Command::new(&binaries.blockfill)
        .arg("keys")
        .args(args)
        .envs(store_env(stores))
        .output()
        .await
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keys_cli_creates_lists_and_revokes() {
    let mut app = spawn_app(test_scheduler()).await;
    let (ok, out, err) = keys_cli(
        &app.stores,
        &["create", "--name", "ci bot", "--role", "operator"],
    )
    .await;
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("cannot be shown again"), "{out}");
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("{name} in {out}"))
    };
    let id = field("key id:");
    let token = field("token:");
    assert!(token.starts_with(&format!("{id}_")), "{out}");

    let (ok, _, err) = keys_cli(&app.stores, &["create", "--name", "x", "--role", "root"]).await;
    assert!(!ok, "an unknown role is refused");
    assert!(err.contains("root"), "{err}");

    // The server sees the key within a second (it caches "no key exists" that long).
    app.bearer = Some(token.clone());
    let whoami = wait_until(
        "the new key to be seen",
        Duration::from_secs(5),
        async || {
            let (status, whoami) = app.get("/v1/whoami").await;
            if status == StatusCode::OK {
                Ok(whoami)
            } else {
                Err(whoami)
            }
        },
    )
    .await;
    assert_eq!(whoami["role"], "operator");
    assert_eq!(whoami["name"], "ci bot");
    app.bearer = None;
    wait_until(
        "loopback to need a key",
        Duration::from_secs(5),
        async || {
            let (status, body) = app.get("/v1/whoami").await;
            if status == StatusCode::UNAUTHORIZED {
                Ok(())
            } else {
                Err(body)
            }
        },
    )
    .await;

    let (ok, listed, err) = keys_cli(&app.stores, &["list"]).await;
    assert!(ok, "{err}");
    assert!(
        listed.contains(&id) && listed.contains("ci bot") && listed.contains("operator"),
        "{listed}"
    );
    assert!(
        !listed.contains(&token[id.len() + 1..]),
        "the list never shows a secret: {listed}"
    );

    let (ok, out, err) = keys_cli(&app.stores, &["revoke", &id]).await;
    assert!(ok, "{out}\n{err}");
    app.bearer = Some(token);
    wait_until(
        "the revocation to take effect",
        Duration::from_secs(3),
        async || {
            let (status, body) = app.get("/v1/whoami").await;
            if status == StatusCode::UNAUTHORIZED {
                Ok(())
            } else {
                Err(body)
            }
        },
    )
    .await;
    let (ok, listed, _) = keys_cli(&app.stores, &["list"]).await;
    assert!(ok);
    let row = listed.lines().find(|l| l.contains(&id)).unwrap();
    assert!(!row.trim_end().ends_with('-'), "revoked: {row}");

    let (ok, _, err) = keys_cli(&app.stores, &["revoke", "bfk_ffffffffffff"]).await;
    assert!(!ok && err.contains("no API key"), "{err}");
    app.bearer = None;
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mutation_is_audited_refused_ones_too_and_only_admins_read_the_log() {
    let mut app = spawn_app(test_scheduler()).await;
    let keys = create_keys(&mut app).await;
    let operator_id = &keys.operator[..16];
    let viewer_id = &keys.viewer[..16];
    // Allowed, but the chain is unknown: 404.
    let (status, _, _) = app
        .request_as(
            Some(&keys.operator),
            Method::POST,
            "/v1/backfills",
            Some(json!({"chain": "nochain", "from": 0, "to": 9})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Too weak.
    let (status, _, _) = app
        .request_as(
            Some(&keys.viewer),
            Method::POST,
            "/v1/batches/x/retry",
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // No key.
    let (status, _, _) = app
        .request_as(None, Method::POST, "/v1/chains", Some(json!({})), &[])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A secret in a URL stays out of the log.
    let (status, _, _) = app
        .request_as(
            Some(&keys.admin),
            Method::POST,
            "/v1/chains",
            Some(json!({"name": "secretive", "rpc_urls": ["http://127.0.0.1:1/v2/TOPSECRETKEY"]})),
            &[],
        )
        .await;
    assert_ne!(status, StatusCode::FORBIDDEN);
    // Reads are not audited.
    app.request_as(Some(&keys.viewer), Method::GET, "/v1/chains", None, &[])
        .await;

    let (status, _, refused) = app
        .request_as(Some(&keys.operator), Method::GET, "/v1/audit", None, &[])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    let (status, _, log) = app
        .request_as(Some(&keys.admin), Method::GET, "/v1/audit", None, &[])
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let log = log.as_array().unwrap().clone();
    // Newest first: the secretive registration, the 401, the 403, the 404, then the key
    // creations (development mode, then admin).
    let ids: Vec<i64> = log.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    assert!(log.iter().all(|e| e["method"] != "GET"), "{log:?}");
    assert!(
        !serde_json::to_string(&log)
            .unwrap()
            .contains("TOPSECRETKEY"),
        "{log:?}"
    );

    let secretive = &log[0];
    assert_eq!(secretive["route"], "/v1/chains");
    assert_eq!(secretive["auth"], "key");
    assert_eq!(secretive["role"], "admin");
    assert!(
        secretive["summary"].as_str().unwrap().contains("secretive"),
        "{secretive}"
    );

    let unauthorized = &log[1];
    assert_eq!(unauthorized["status"], 401, "{unauthorized}");
    assert_eq!(unauthorized["result"], "unauthorized");
    assert_eq!(unauthorized["auth"], "none");
    assert_eq!(unauthorized["key_id"], Value::Null);
    assert_eq!(unauthorized["client_address"], "127.0.0.1");

    let forbidden = &log[2];
    assert_eq!(forbidden["status"], 403, "{forbidden}");
    assert_eq!(forbidden["result"], "forbidden");
    assert_eq!(forbidden["key_id"], viewer_id);
    assert_eq!(forbidden["route"], "/v1/batches/{id}/retry");
    assert_eq!(forbidden["path"], "/v1/batches/x/retry");

    let not_found = &log[3];
    assert_eq!(not_found["status"], 404, "{not_found}");
    assert_eq!(not_found["key_id"], operator_id);
    assert_eq!(not_found["role"], "operator");
    assert_eq!(not_found["method"], "POST");
    assert_eq!(not_found["route"], "/v1/backfills");
    assert_eq!(
        not_found["summary"],
        json!({"chain": "nochain", "from": 0, "to": 9}).to_string()
    );
    assert!(not_found["at"].is_string());

    let first = log.last().unwrap();
    assert_eq!(first["auth"], "loopback", "{first}");
    assert_eq!(first["route"], "/v1/keys");
    assert_eq!(first["status"], 201);
    assert_eq!(first["result"], "ok");

    // Pages and the key filter.
    let (_, _, page) = app
        .request_as(
            Some(&keys.admin),
            Method::GET,
            &format!("/v1/audit?limit=2&before={}", ids[1]),
            None,
            &[],
        )
        .await;
    let page_ids: Vec<i64> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(page_ids, ids[2..4].to_vec());
    let (_, _, mine) = app
        .request_as(
            Some(&keys.admin),
            Method::GET,
            &format!("/v1/audit?key_id={operator_id}"),
            None,
            &[],
        )
        .await;
    assert_eq!(mine.as_array().unwrap().len(), 1, "{mine}");
    let (status, _, _) = app
        .request_as(
            Some(&keys.admin),
            Method::GET,
            "/v1/audit?limit=1001",
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    app.bearer = None;
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_over_its_rate_gets_429_with_retry_after() {
    let mut app = spawn_app_with(test_scheduler(), |args| args.access.rate_limit_per_key = 2).await;
    let keys = create_keys(&mut app).await;
    let mut limited = None;
    for _ in 0..20 {
        let (status, headers, body) = app
            .request_as(Some(&keys.viewer), Method::GET, "/v1/chains", None, &[])
            .await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some((headers, body));
            break;
        }
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (headers, body) = limited.expect("a 429 within 20 requests at 2/s");
    assert_eq!(body["code"], "rate_limited", "{body}");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1, "{retry_after}");
    // Another key has its own budget.
    let (status, _, body) = app
        .request_as(Some(&keys.operator), Method::GET, "/v1/chains", None, &[])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Refused mutations are audited as rate limited.
    let mut audited = false;
    for _ in 0..20 {
        let (status, _, _) = app
            .request_as(
                Some(&keys.viewer),
                Method::POST,
                "/v1/batches/x/retry",
                None,
                &[],
            )
            .await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            audited = true;
            break;
        }
    }
    assert!(audited);
    let rows = app
        .count("SELECT count(*) FROM audit_log WHERE status = 429 AND result = 'rate_limited'")
        .await;
    assert_eq!(rows, 1);
    app.bearer = None;
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_replays_the_first_answer_and_refuses_another_body() {
    let mut app = spawn_app(test_scheduler()).await;
    let devnet = ServedDevnet::with_blocks(1_000).await;
    app.register(json!({
        "name": "idem", "rpc_urls": [devnet.url()], "confirmations": 0, "live_sync": false,
    }))
    .await;
    let keys = create_keys(&mut app).await;
    let body = json!({"chain": "idem", "from": 0, "to": 99});
    let post = |key: &str, body: Value, idempotency: &str| {
        let key = key.to_owned();
        let idempotency = idempotency.to_owned();
        let app = &app;
        async move {
            app.request_as(
                Some(&key),
                Method::POST,
                "/v1/backfills",
                Some(body),
                &[("Idempotency-Key", &idempotency)],
            )
            .await
        }
    };
    let (status, headers, first) = post(&keys.operator, body.clone(), "k-1").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    assert!(headers.get("idempotent-replayed").is_none());
    let (status, headers, again) = post(&keys.operator, body.clone(), "k-1").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again, first);
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(app.count("SELECT count(*) FROM backfills").await, 1);

    let (status, _, reused) = post(
        &keys.operator,
        json!({"chain": "idem", "from": 0, "to": 98}),
        "k-1",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reused}");
    assert_eq!(reused["code"], "idempotency_key_reused");

    // Another caller's key of the same name is its own.
    let (status, headers, other) = post(&keys.admin, body.clone(), "k-1").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{other}");
    assert!(headers.get("idempotent-replayed").is_none());
    assert_ne!(other["id"], first["id"]);
    assert_eq!(app.count("SELECT count(*) FROM backfills").await, 2);

    // A repeat while the first is still running: 409 at once.
    let fingerprint = blockfill_activities::store::idempotency::fingerprint(
        "POST",
        "/v1/backfills",
        serde_json::to_vec(&body).unwrap().as_slice(),
    );
    sea_orm::sqlx::query(
        "INSERT INTO idempotency_keys (scope, key, fingerprint) VALUES ($1, 'k-2', $2)",
    )
    .bind(&keys.operator[..16])
    .bind(fingerprint)
    .execute(&app.pool)
    .await
    .unwrap();
    let (status, _, busy) = post(&keys.operator, body.clone(), "k-2").await;
    assert_eq!(status, StatusCode::CONFLICT, "{busy}");
    assert_eq!(app.count("SELECT count(*) FROM backfills").await, 2);

    // Without the header nothing changes.
    let (status, _, _) = app
        .request_as(
            Some(&keys.operator),
            Method::POST,
            "/v1/backfills",
            Some(body.clone()),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(app.count("SELECT count(*) FROM backfills").await, 3);
    app.bearer = None;
    app.teardown().await;
}
