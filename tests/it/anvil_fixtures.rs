//! Records the Anvil answers that `activities/tests/parse_anvil.rs` parses: the requests exactly
//! as `EvmRpcSource` sends them (through a recording proxy) and Anvil's answers, saved under
//! `activities/tests/fixtures/anvil/`. Anvil chains built by the harness are deterministic, so a
//! new recording gives the same files. Run it by hand:
//! `cargo test -p blockfill-tests --test it record_anvil_fixtures -- --ignored`.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
};

use axum::{Router, body::Bytes, extract::State, routing::post};
use blockfill_activities::{
    BlockRange, EvmRpcSource,
    source::{ChainSource as _, RpcSettings},
};
use blockfill_tests::anvil::{Anvil, ChainSpec};
use serde_json::{Value, json};

type Exchanges = Arc<Mutex<Vec<(Value, Value)>>>;

/// Forwards every request to Anvil and keeps the request and the answer.
async fn start_recorder(anvil_url: String) -> (String, Exchanges) {
    let exchanges: Exchanges = Arc::default();
    let client = reqwest::Client::new();
    let app = Router::new()
        .route(
            "/",
            post(
                |State((url, client, log)): State<(String, reqwest::Client, Exchanges)>,
                 body: Bytes| async move {
                    let answer = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await
                        .unwrap()
                        .bytes()
                        .await
                        .unwrap();
                    let request: Value = serde_json::from_slice(&body).unwrap();
                    let response: Value = serde_json::from_slice(&answer).unwrap();
                    log.lock().unwrap().push((request, response));
                    ([("content-type", "application/json")], answer)
                },
            ),
        )
        .with_state((anvil_url, client, Arc::clone(&exchanges)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), exchanges)
}

/// A file name for one exchange, from what it asked.
fn name_of(request: &Value) -> String {
    let calls: Vec<&Value> = match request {
        Value::Array(calls) => calls.iter().collect(),
        call => vec![call],
    };
    let first = calls[0];
    let method = first["method"].as_str().unwrap();
    let param = |v: &Value| u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16);
    let what = match method {
        "eth_getBlockByNumber" => {
            let from = param(&first["params"][0]).unwrap();
            let to = param(&calls[calls.len() - 1]["params"][0]).unwrap();
            let full = if first["params"][1] == json!(true) {
                "full"
            } else {
                "header"
            };
            if from == to {
                format!("block_{from}_{full}")
            } else {
                format!("blocks_{from}_{to}_{full}")
            }
        }
        "eth_getLogs" => {
            let from = param(&first["params"][0]["fromBlock"]).unwrap();
            let to = param(&first["params"][0]["toBlock"]).unwrap();
            if calls.len() > 1 {
                format!("logs_{from}_{to}_and_block_{}", from - 1)
            } else {
                format!("logs_{from}_{to}")
            }
        }
        other => other.trim_start_matches("eth_").to_lowercase(),
    };
    if calls.len() > 1 {
        format!("batch_{what}")
    } else {
        what
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "records fixtures for activities/tests/parse_anvil.rs; run by hand"]
async fn record_anvil_fixtures() {
    let anvil = Anvil::start().await.unwrap();
    // Blocks 2, 4, 6 and 8 hold a transfer and a call that emits one log.
    anvil
        .build_chain(ChainSpec {
            blocks: 8,
            tx_every: 2,
            txs_per_block: 2,
        })
        .await
        .unwrap();
    let (url, exchanges) = start_recorder(anvil.url.clone()).await;
    let source = EvmRpcSource::new(&url, RpcSettings::default()).unwrap();
    assert_eq!(source.chain_id().await.unwrap(), 31_337);
    assert_eq!(source.head().await.unwrap(), 8);
    source.genesis_hash().await.unwrap();
    let four = source.fetch_range(BlockRange::new(3, 6).unwrap()).await;
    assert_eq!(four.unwrap().blocks.len(), 4);
    let one = source.fetch_range(BlockRange::new(4, 4).unwrap()).await;
    assert_eq!(one.unwrap().transactions.len(), 2);

    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../activities/tests/fixtures/anvil");
    std::fs::create_dir_all(&dir).unwrap();
    for (request, response) in exchanges.lock().unwrap().iter() {
        let path = dir.join(format!("{}.json", name_of(request)));
        let text = serde_json::to_string_pretty(&json!({"request": request, "response": response}))
            .unwrap();
        std::fs::write(&path, text + "\n").unwrap();
        println!("{}", path.display());
    }
}
