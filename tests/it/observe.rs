//! What the processes report about themselves, seen from outside as an operator's collector and
//! Prometheus would: one trace from the API request through the scheduler to a worker's batch
//! write, across two processes over OTLP; and a worker's own `/metrics` counting its blocks
//! during a backfill.

use std::{net::SocketAddr, time::Duration};

use blockfill_devnet::faults::FaultProfile;
use blockfill_orchestrator::tools::otlp_sink::{OtlpSink, ReceivedSpan};
use blockfill_tests::{
    app::{
        Process, binaries, free_port, fresh_stores, spawn_app, store_env, test_scheduler,
        wait_healthy,
    },
    devnet::ServedDevnet,
    proxy::FaultProxy,
    wait::wait_until,
};
use serde_json::{Value, json};

/// Export settings for a binary: the receiver's endpoint, spans sent every 200 ms.
fn otel_env(receiver: &OtlpSink) -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
        ("OTEL_BSP_SCHEDULE_DELAY", "200".to_owned()),
        ("BLOCKFILL_LOG_FORMAT", "json".to_owned()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_runs_from_the_api_request_to_a_workers_batch_write_across_processes() {
    let stores = fresh_stores();
    let devnet = ServedDevnet::with_blocks(400).await;
    let receiver = OtlpSink::start(10_000).await.unwrap();
    let bins = binaries().unwrap();
    let api: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();

    let mut orchestrator_env = store_env(&stores);
    orchestrator_env.extend(otel_env(&receiver));
    orchestrator_env.push(("BLOCKFILL_API_ADDR", api.to_string()));
    let _orchestrator = Process::start(
        &bins.blockfill,
        &["serve"],
        &orchestrator_env,
        "observe-orchestrator",
    )
    .unwrap();
    wait_healthy(api, Duration::from_secs(30)).await.unwrap();
    let mut worker_env = store_env(&stores);
    worker_env.extend(otel_env(&receiver));
    // The worker's "batch written" line is at debug: it must carry the batch's trace id.
    worker_env.retain(|(k, _)| *k != "RUST_LOG");
    worker_env.push((
        "RUST_LOG",
        "info,sqlx=warn,blockfill::worker=debug".to_owned(),
    ));
    let worker = Process::start(&bins.worker, &[], &worker_env, "observe-worker").unwrap();

    let client = reqwest::Client::new();
    let registered = client
        .post(format!("http://{api}/v1/chains"))
        .json(&json!({"name": "traced", "rpc_urls": [devnet.url()], "batch_size": 50, "live_sync": false}))
        .send()
        .await
        .unwrap();
    assert!(registered.status().is_success(), "{registered:?}");
    let created: Value = client
        .post(format!("http://{api}/v1/backfills"))
        .json(&json!({"chain": "traced", "from": 0, "to": 299}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().expect("a backfill id").to_owned();
    wait_until(
        "the backfill completed",
        Duration::from_secs(60),
        async || {
            let view: Value = client
                .get(format!("http://{api}/v1/backfills/{id}"))
                .send()
                .await
                .map_err(|e| json!(e.to_string()))?
                .json()
                .await
                .map_err(|e| json!(e.to_string()))?;
            if view["status"] == "completed" {
                Ok(())
            } else {
                Err(view)
            }
        },
    )
    .await;

    // The request's span starts the trace (the caller sent no traceparent) ...
    let request = wait_until(
        "the request's span exported",
        Duration::from_secs(20),
        async || {
            receiver
                .spans()
                .into_iter()
                .find(|s| s.name == "POST /v1/backfills")
                .ok_or("not yet")
        },
    )
    .await;
    assert_eq!(request.service, "blockfill-orchestrator");
    assert_eq!(
        request.parent_span_id, "",
        "the request is the trace's root"
    );
    assert_eq!(request.attribute("http.route"), Some("/v1/backfills"));
    let trace = request.trace_id.clone();
    // ... and the worker's batches, their RPC requests and their writes are in it.
    let in_trace = wait_until(
        "the worker's batch spans exported in the request's trace",
        Duration::from_secs(30),
        async || {
            let spans: Vec<ReceivedSpan> = receiver
                .spans()
                .into_iter()
                .filter(|s| s.trace_id == trace)
                .collect();
            let named = |name: &str| spans.iter().filter(|s| s.name == name).count();
            let batches: std::collections::BTreeSet<_> = spans
                .iter()
                .filter(|s| s.name == "batch backfill")
                .filter_map(|s| s.attribute("batch_id"))
                .collect();
            // Every batch's parent (a scheduler generation, which ends after it queued them)
            // exported too.
            let parents_in = spans
                .iter()
                .filter(|s| s.name == "batch backfill")
                .all(|b| spans.iter().any(|p| p.span_id == b.parent_span_id));
            if batches.len() == 6 && named("write") >= 6 && named("rpc") >= 6 && parents_in {
                Ok(spans)
            } else {
                let all = receiver.spans();
                Err(format!(
                    "{} spans so far: {:?}; all spans: {:?}",
                    spans.len(),
                    spans.iter().map(|s| &s.name).collect::<Vec<_>>(),
                    all.iter()
                        .map(|s| format!(
                            "{}:{}:{}<-{}",
                            s.name,
                            &s.trace_id[..6],
                            &s.span_id[..4],
                            s.parent_span_id.get(..4).unwrap_or("")
                        ))
                        .collect::<Vec<_>>()
                ))
            }
        },
    )
    .await;
    let by_id = |id: &str| in_trace.iter().find(|s| s.span_id == id);
    let generation = in_trace
        .iter()
        .find(|s| s.name == "scheduler_generation")
        .expect("the scheduler generation is in the trace");
    assert_eq!(generation.service, "blockfill-orchestrator");
    assert_eq!(
        generation.parent_span_id, request.span_id,
        "a child of the request"
    );
    for batch in in_trace.iter().filter(|s| s.name == "batch backfill") {
        assert_eq!(batch.service, "blockfill-worker", "{batch:?}");
        assert_eq!(batch.attribute("chain"), Some("traced"));
        assert_eq!(batch.attribute("backfill_id"), Some(id.as_str()));
        assert!(batch.attribute("attempt").is_some() && batch.attribute("from").is_some());
        let parent = by_id(&batch.parent_span_id).expect("the batch's parent is in the trace");
        assert_eq!(
            parent.name, "scheduler_generation",
            "queued by the generation"
        );
    }
    let written_batches: std::collections::BTreeSet<_> = in_trace
        .iter()
        .filter(|s| s.name == "batch backfill" && s.attribute("outcome") == Some("written"))
        .filter_map(|s| s.attribute("batch_id"))
        .collect();
    assert_eq!(
        written_batches.len(),
        6,
        "every batch written once in the trace"
    );
    for write in in_trace.iter().filter(|s| s.name == "write") {
        assert_eq!(write.service, "blockfill-worker");
        assert_eq!(write.attribute("blocks"), Some("50"), "{write:?}");
    }
    let rpc = in_trace
        .iter()
        .find(|s| s.name == "rpc")
        .expect("an RPC span");
    assert_eq!(rpc.attribute("outcome"), Some("ok"));
    assert!(
        rpc.attribute("endpoint")
            .is_some_and(|e| e.starts_with("http://127.0.0.1"))
    );
    assert!(
        rpc.attribute("method")
            .is_some_and(|m| m.starts_with("eth_"))
    );

    // The worker's JSON log lines inside a batch carry the trace id.
    let log = std::fs::read_to_string(&worker.log).unwrap();
    let written: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["fields"]["message"] == "batch written")
        .collect();
    assert!(
        !written.is_empty(),
        "no 'batch written' lines in {}",
        worker.log.display()
    );
    assert!(
        written
            .iter()
            .all(|l| l["span"]["trace_id"] == json!(trace)),
        "log lines without the trace id: {written:?}"
    );
}

/// Reads `name{labels…}` from a Prometheus text exposition: the sum over series whose labels
/// include every one of `labels`.
fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in metrics.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (series_name, series_labels) = series.split_once('{').unwrap_or((series, ""));
        if series_name != name
            || !labels
                .iter()
                .all(|(k, v)| series_labels.contains(&format!("{k}=\"{v}\"")))
        {
            continue;
        }
        if let Ok(value) = value.parse::<f64>() {
            *found.get_or_insert(0.0) += value;
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workers_metrics_count_its_blocks_during_a_backfill() {
    let app = spawn_app(test_scheduler()).await;
    let devnet = ServedDevnet::with_blocks(3_000).await;
    // Slow answers, so the backfill is still running while the worker is scraped.
    let slow = FaultProxy::start(
        &devnet.url(),
        FaultProfile {
            latency: Duration::from_millis(100),
            ..FaultProfile::default()
        },
    )
    .await
    .unwrap();
    app.register(
        json!({"name": "scraped", "rpc_urls": [slow.url], "batch_size": 20, "live_sync": false}),
    )
    .await;
    let metrics_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let _worker = Process::worker(
        &app.stores,
        2,
        &[("BLOCKFILL_WORKER_METRICS_ADDR", metrics_addr.to_string())],
        "observe-metrics",
    )
    .unwrap();
    let id = app.trigger_backfill("scraped", 0, 1_999).await;
    let client = reqwest::Client::new();
    let scrape = async || -> Result<String, String> {
        let response = client
            .get(format!("http://{metrics_addr}/metrics"))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("{}", response.status()));
        }
        response.text().await.map_err(|e| e.to_string())
    };
    let written = |metrics: &str| {
        sample(
            metrics,
            "blockfill_blocks_written_total",
            &[("chain", "scraped"), ("lane", "backfill")],
        )
    };

    // During the backfill: blocks counted, fewer than all of them.
    let during = wait_until(
        "the worker's metrics count blocks",
        Duration::from_secs(60),
        async || {
            let metrics = scrape().await?;
            match written(&metrics) {
                Some(n) if n > 0.0 => Ok(metrics),
                other => Err(format!("blocks written: {other:?}")),
            }
        },
    )
    .await;
    let (_, view) = app.get(&format!("/v1/backfills/{id}")).await;
    assert_eq!(view["status"], "running", "scraped mid-way: {view}");
    let counted = written(&during).unwrap();
    assert!(counted < 2_000.0, "mid-way, not every block yet: {counted}");
    for phase in ["fetch", "write"] {
        let batches = sample(
            &during,
            "blockfill_batch_duration_seconds_count",
            &[("chain", "scraped"), ("phase", phase)],
        );
        assert!(
            batches.is_some_and(|n| n >= 1.0),
            "{phase} durations: {batches:?}"
        );
    }
    assert!(
        sample(
            &during,
            "blockfill_rpc_requests_total",
            &[("chain", "scraped"), ("outcome", "ok")]
        )
        .is_some_and(|n| n > 0.0)
    );
    assert!(
        sample(
            &during,
            "blockfill_db_pool_connections",
            &[("state", "idle")]
        )
        .is_some()
    );
    assert!(sample(&during, "blockfill_db_pool_max_connections", &[]).is_some_and(|n| n > 0.0));

    // Once it completed, every block was counted exactly once.
    app.wait_until_finished(&id, Duration::from_secs(120)).await;
    let after = scrape().await.unwrap();
    assert_eq!(written(&after), Some(2_000.0));
    assert_eq!(
        sample(
            &after,
            "blockfill_batches_done_total",
            &[("chain", "scraped"), ("lane", "backfill")]
        ),
        Some(100.0)
    );
    // The orchestrator's own gauges, from the same pass that sizes the fleet.
    let orchestrator = app.metrics().await;
    assert!(
        sample(
            &orchestrator,
            "blockfill_fleet_running_workers",
            &[("chain", "scraped")]
        )
        .is_some()
    );
    assert!(
        sample(
            &orchestrator,
            "blockfill_queue_depth",
            &[("state", "active")]
        )
        .is_some()
    );
    assert!(
        sample(
            &orchestrator,
            "blockfill_http_requests_total",
            &[("route", "/v1/backfills/{id}"), ("status", "200")]
        )
        .is_some_and(|n| n >= 1.0)
    );
    app.teardown().await;
}
