//! Parsing real Anvil answers: the fixtures in `fixtures/anvil/` are requests exactly as
//! [`EvmRpcSource`] sends them and Anvil's answers (recorded by `record_anvil_fixtures` in
//! `tests/it/anvil_fixtures.rs` from a deterministic chain where blocks 2, 4, 6 and 8 hold a
//! transfer and a call that emits one log). A small HTTP server replays them to the production
//! source, as recorded or altered (a missing hash, a wrong number, wrong types, a truncated body),
//! and the tests check the decoded values and the errors.

// Tests unwrap: a failure is a panic with the error, which is what a test should do.
#![allow(clippy::unwrap_used)]

use std::{collections::HashMap, path::PathBuf, sync::Arc};

use blockfill_activities::{
    BlockRange, EvmRpcSource,
    source::{BlockBundle, ChainSource, RpcBlock, RpcLog, RpcSettings, SourceError},
};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// The log-emitting contract of the recorded chain.
const LOG_CONTRACT: &str = "0x00000000000000000000000000000000000b10cf";
/// Topic 0 of its logs (`Transfer(address,address,uint256)`).
const TRANSFER_TOPIC: &str = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";
/// Timestamp of block 0 and seconds between blocks on the recorded chain.
const GENESIS_TIMESTAMP: u64 = 1_700_000_000;
const BLOCK_TIME_SECS: u64 = 12;

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/anvil")
        .join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Every recorded call, `(method, params)` -> its answer object (without id).
fn recorded_answers() -> HashMap<(String, String), Value> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/anvil");
    let mut answers = HashMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let exchange: Value = serde_json::from_str(&text).unwrap();
        let as_list = |v: &Value| match v {
            Value::Array(items) => items.clone(),
            one => vec![one.clone()],
        };
        let responses = as_list(&exchange["response"]);
        for call in as_list(&exchange["request"]) {
            let answer = responses.iter().find(|r| r["id"] == call["id"]).unwrap();
            let key = (
                call["method"].as_str().unwrap().to_owned(),
                call["params"].to_string(),
            );
            answers.insert(key, answer.clone());
        }
    }
    answers
}

/// The recorded result of one call.
fn result_of(method: &str, params: Value) -> Value {
    recorded_answers()[&(method.to_owned(), params.to_string())]["result"].clone()
}

/// How the replay answers one call: `(method, params, recorded answer)` -> answer to send.
type Alter = dyn Fn(&str, &Value, Value) -> Value + Send + Sync;

/// Serves the recorded answers (through `alter`, then `body`, which may spoil the bytes) under
/// the ids of the incoming requests; returns the URL.
async fn replay(alter: Arc<Alter>, body: fn(Vec<u8>) -> Vec<u8>) -> String {
    let answers = Arc::new(recorded_answers());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let (answers, alter) = (Arc::clone(&answers), Arc::clone(&alter));
            tokio::spawn(async move {
                let request = read_request(&mut stream).await;
                let answer_one = |call: &Value| {
                    let method = call["method"].as_str().unwrap_or_default();
                    let key = (method.to_owned(), call["params"].to_string());
                    let recorded = answers.get(&key).cloned().unwrap_or_else(|| {
                        json!({"jsonrpc": "2.0", "error": {"code": -32000, "message": "not recorded"}})
                    });
                    let mut answer = alter(method, &call["params"], recorded);
                    answer["id"] = call["id"].clone();
                    answer
                };
                let answer = match &request {
                    Value::Array(calls) => Value::Array(calls.iter().map(answer_one).collect()),
                    call => answer_one(call),
                };
                let payload = body(serde_json::to_vec(&answer).unwrap());
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    payload.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&payload).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    url
}

/// Reads one HTTP request and returns its JSON body.
async fn read_request(stream: &mut tokio::net::TcpStream) -> Value {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before the request ended");
        buffer.extend_from_slice(&chunk[..n]);
        let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buffer[..end]).to_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        if buffer.len() >= end + 4 + length {
            return serde_json::from_slice(&buffer[end + 4..end + 4 + length]).unwrap();
        }
    }
}

async fn source_with(alter: Arc<Alter>, body: fn(Vec<u8>) -> Vec<u8>) -> EvmRpcSource {
    EvmRpcSource::new(&replay(alter, body).await, RpcSettings::default()).unwrap()
}

/// A source answering exactly what Anvil answered.
async fn recorded_source() -> EvmRpcSource {
    source_with(Arc::new(|_, _, answer| answer), |bytes| bytes).await
}

/// A source answering what Anvil answered, except `block`'s `eth_getBlockByNumber` result,
/// changed by `change`.
async fn source_changing_block(
    block: &'static str,
    change: impl Fn(&mut Value) + Send + Sync + 'static,
) -> EvmRpcSource {
    let alter = move |method: &str, params: &Value, mut answer: Value| {
        if method == "eth_getBlockByNumber" && params[0] == block {
            change(&mut answer["result"]);
        }
        answer
    };
    source_with(Arc::new(alter), |bytes| bytes).await
}

fn range(from: u64, to: u64) -> BlockRange {
    BlockRange::new(from, to).unwrap()
}

fn malformed_message(error: SourceError) -> String {
    match error {
        SourceError::Malformed { message, .. } => message,
        other => panic!("expected a malformed answer, got {other}"),
    }
}

#[tokio::test]
async fn chain_id_head_and_genesis_parse() {
    let source = recorded_source().await;
    assert_eq!(source.chain_id().await.unwrap(), 31_337);
    assert_eq!(source.head().await.unwrap(), 8);
    let genesis = result_of("eth_getBlockByNumber", json!(["0x0", false]));
    assert_eq!(
        source.genesis_hash().await.unwrap(),
        genesis["hash"].as_str().unwrap()
    );
    assert_eq!(fixture("chainid")["response"]["result"], json!("0x7a69"));
}

/// The rows of blocks 3..=6 against the recorded answers, field by field.
fn check_rows_3_to_6(bundle: &BlockBundle) {
    let blocks: Vec<Value> = (3..=6u64)
        .map(|n| result_of("eth_getBlockByNumber", json!([format!("{n:#x}"), true])))
        .collect();
    let below = result_of("eth_getBlockByNumber", json!(["0x2", false]));
    let numbers: Vec<u64> = bundle.blocks.iter().map(|b| b.number).collect();
    assert_eq!(numbers, [3, 4, 5, 6]);
    let mut parent = below["hash"].as_str().unwrap().to_owned();
    for (row, block) in bundle.blocks.iter().zip(&blocks) {
        assert_eq!(row.hash, block["hash"].as_str().unwrap());
        assert_eq!(
            row.parent_hash, parent,
            "block {} links to its parent",
            row.number
        );
        assert_eq!(
            row.timestamp,
            GENESIS_TIMESTAMP + row.number * BLOCK_TIME_SECS
        );
        assert_eq!(row.miner, block["miner"].as_str().unwrap());
        assert_eq!(row.gas_limit, 30_000_000);
        assert!(row.base_fee_per_gas.is_some());
        parent = row.hash.clone();
    }
    let tx_counts: Vec<u32> = bundle.blocks.iter().map(|b| b.tx_count).collect();
    let log_counts: Vec<u32> = bundle.blocks.iter().map(|b| b.log_count).collect();
    assert_eq!(tx_counts, [0, 2, 0, 2]);
    assert_eq!(log_counts, [0, 1, 0, 1]);

    assert_eq!(bundle.transactions.len(), 4);
    let block4_txs = blocks[1]["transactions"].as_array().unwrap();
    let transfer = &bundle.transactions[0];
    assert_eq!((transfer.block_number, transfer.tx_index), (4, 0));
    assert_eq!(transfer.hash, block4_txs[0]["hash"].as_str().unwrap());
    assert_eq!(
        transfer.from_address,
        block4_txs[0]["from"].as_str().unwrap()
    );
    assert_eq!(transfer.to_address.as_deref(), block4_txs[0]["to"].as_str());
    assert_eq!(transfer.value, "1000000000");
    assert_eq!(transfer.gas, 21_000);
    assert_eq!(transfer.input, "0x");
    assert_eq!(transfer.tx_type, Some(2));
    let call = &bundle.transactions[1];
    assert_eq!((call.block_number, call.tx_index), (4, 1));
    assert_eq!(call.to_address.as_deref(), Some(LOG_CONTRACT));
    assert_eq!(call.nonce, transfer.nonce + 1);

    assert_eq!(bundle.logs.len(), 2);
    for (log, block) in bundle.logs.iter().zip([4u64, 6]) {
        assert_eq!(
            (log.block_number, log.tx_index, log.log_index),
            (block, 1, 0)
        );
        assert_eq!(log.address, LOG_CONTRACT);
        assert_eq!(log.topics[0], TRANSFER_TOPIC);
        assert_eq!(log.topics.len(), 2);
        assert_eq!(
            log.data,
            format!("0x{:064x}", (u128::from(block) << 32) | 1)
        );
        let tx = bundle
            .transactions
            .iter()
            .find(|t| t.block_number == block && t.tx_index == 1)
            .unwrap();
        assert_eq!(log.tx_hash, tx.hash);
    }
}

#[tokio::test]
async fn a_batch_of_full_blocks_and_their_logs_become_rows() {
    let source = recorded_source().await;
    let bundle = source.fetch_range(range(3, 6)).await.unwrap();
    assert!(
        bundle.first_parent_verified,
        "block 3 checked against block 2"
    );
    check_rows_3_to_6(&bundle);
}

#[tokio::test]
async fn a_single_block_request_parses_the_same_way() {
    let source = recorded_source().await;
    let one = source.fetch_range(range(4, 4)).await.unwrap();
    let four = source.fetch_range(range(3, 6)).await.unwrap();
    assert!(one.first_parent_verified);
    assert_eq!(one.blocks, four.blocks[1..2]);
    assert_eq!(one.transactions, four.transactions[..2]);
    assert_eq!(one.logs, four.logs[..1]);
}

#[test]
fn the_pure_transform_reads_the_recorded_answers() {
    let batch = fixture("batch_blocks_3_6_full");
    let blocks: Vec<RpcBlock> = batch["response"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| serde_json::from_value(r["result"].clone()).unwrap())
        .collect();
    let logs: Vec<RpcLog> = serde_json::from_value(
        fixture("batch_logs_3_6_and_block_2")["response"][0]["result"].clone(),
    )
    .unwrap();
    assert_eq!(blocks.len(), 4);
    assert_eq!(logs.len(), 2);
    // Answers in any order give the same rows.
    let mut shuffled = blocks.clone();
    shuffled.reverse();
    let bundle = BlockBundle::from_rpc(range(3, 6), shuffled, logs.clone()).unwrap();
    check_rows_3_to_6(&BlockBundle {
        first_parent_verified: true,
        ..bundle.clone()
    });
    assert!(
        !bundle.first_parent_verified,
        "the transform alone checks no anchor"
    );

    // Inconsistent answers, each with what is wrong.
    assert_eq!(
        BlockBundle::from_rpc(range(3, 7), blocks.clone(), logs.clone()).unwrap_err(),
        "expected 5 blocks, got 4"
    );
    let mut unlinked = blocks.clone();
    unlinked[2].parent_hash = unlinked[0].hash;
    let error = BlockBundle::from_rpc(range(3, 6), unlinked, logs.clone()).unwrap_err();
    assert!(error.starts_with("block 5 has parent hash"), "{error}");
    let mut foreign = logs.clone();
    foreign[0].block_hash = blocks[0].hash;
    let error = BlockBundle::from_rpc(range(3, 6), blocks.clone(), foreign).unwrap_err();
    assert!(
        error.starts_with("log 0 of block 4 has block hash"),
        "{error}"
    );
    let error = BlockBundle::from_rpc(range(3, 5), blocks[..3].to_vec(), logs).unwrap_err();
    assert_eq!(error, "log for block 6 outside the range");
}

#[tokio::test]
async fn a_block_without_a_hash_is_a_malformed_answer() {
    let source = source_changing_block("0x5", |block| {
        block.as_object_mut().unwrap().remove("hash");
    })
    .await;
    let message = malformed_message(source.fetch_range(range(3, 6)).await.unwrap_err());
    assert!(
        message.starts_with("eth_getBlockByNumber answer does not parse: missing field `hash`"),
        "{message}"
    );
}

#[tokio::test]
async fn a_block_with_the_wrong_number_is_a_malformed_answer() {
    let source = source_changing_block("0x5", |block| block["number"] = json!("0x7")).await;
    let error = source.fetch_range(range(3, 6)).await.unwrap_err();
    let text = error.to_string();
    assert_eq!(
        malformed_message(error),
        "expected block 5, got block 6",
        "{text}"
    );
}

#[tokio::test]
async fn a_block_with_a_broken_parent_link_is_a_malformed_answer() {
    let source = source_changing_block("0x5", |block| {
        block["parentHash"] = json!(format!("0x{}", "11".repeat(32)));
    })
    .await;
    let message = malformed_message(source.fetch_range(range(3, 6)).await.unwrap_err());
    assert!(
        message.starts_with(&format!("block 5 has parent hash 0x{}", "11".repeat(32))),
        "{message}"
    );
}

#[tokio::test]
async fn fields_of_the_wrong_type_are_malformed_answers() {
    // (A JSON number where a hex quantity belongs is accepted: alloy reads both.)
    let source =
        source_changing_block("0x4", |block| block["timestamp"] = json!("yesterday")).await;
    let message = malformed_message(source.fetch_range(range(3, 6)).await.unwrap_err());
    assert!(
        message.starts_with("eth_getBlockByNumber answer does not parse"),
        "{message}"
    );

    let source = source_changing_block("0x4", |block| {
        block["transactions"][0]["from"] = json!("0x1234");
    })
    .await;
    let message = malformed_message(source.fetch_range(range(3, 6)).await.unwrap_err());
    assert!(
        message.starts_with("eth_getBlockByNumber answer does not parse"),
        "{message}"
    );

    let topics_as_text = |method: &str, _: &Value, mut answer: Value| {
        if method == "eth_getLogs" {
            answer["result"][0]["topics"] = json!("not a list");
        }
        answer
    };
    let source = source_with(Arc::new(topics_as_text), |bytes| bytes).await;
    let message = malformed_message(source.fetch_range(range(3, 6)).await.unwrap_err());
    assert!(
        message.starts_with("eth_getLogs answer does not parse"),
        "{message}"
    );

    let chain_id_as_text = |method: &str, _: &Value, mut answer: Value| {
        if method == "eth_chainId" {
            answer["result"] = json!("thirty-one thousand");
        }
        answer
    };
    let source = source_with(Arc::new(chain_id_as_text), |bytes| bytes).await;
    let message = malformed_message(source.chain_id().await.unwrap_err());
    assert!(
        message.starts_with("eth_chainId answer does not parse"),
        "{message}"
    );
}

#[tokio::test]
async fn a_truncated_body_is_an_unparsable_answer() {
    let source = source_with(Arc::new(|_, _, answer| answer), |mut bytes| {
        bytes.truncate(bytes.len() / 2);
        bytes
    })
    .await;
    match source.fetch_range(range(3, 6)).await.unwrap_err() {
        SourceError::Transport { message, .. } => {
            assert!(message.starts_with("unparsable JSON-RPC body"), "{message}");
        }
        other => panic!("expected a transport error, got {other}"),
    }
}

#[tokio::test]
async fn a_missing_block_is_not_yet_available() {
    let source = source_changing_block("0x6", |block| *block = Value::Null).await;
    match source.fetch_range(range(3, 6)).await.unwrap_err() {
        SourceError::NotYetAvailable { block, .. } => assert_eq!(block, 6),
        other => panic!("expected a block not yet available, got {other}"),
    }
}
