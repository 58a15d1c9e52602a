//! The harness cleans up after a test that panics: its database is dropped, its Redis keys are
//! deleted, and what it started (the in-process orchestrator and workers, a worker process,
//! Anvil) is stopped; inside a tokio runtime (a test body unwinding) and outside one.

use std::{
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex},
    time::Duration,
};

use blockfill_activities::settings::StoreArgs;
use blockfill_tests::{
    anvil::{Anvil, ChainSpec},
    app::{Process, fresh_stores, spawn_app, test_scheduler},
    stores::stores_left,
    wait::wait_until,
};
use futures::FutureExt as _;

/// What the panicking test had, for the checks after it.
#[derive(Default)]
struct Left {
    stores: Option<StoreArgs>,
    api: Option<std::net::SocketAddr>,
    anvil_url: Option<String>,
    worker_pid: Option<u32>,
}

/// Whether process `pid` is gone (or a zombie: dead, not yet reaped).
fn process_ended(pid: u32) -> Result<(), String> {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => Ok(()),
        Ok(stat) => {
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .unwrap_or("?");
            if state == "Z" {
                Ok(())
            } else {
                Err(format!("process {pid} in state {state}"))
            }
        }
    }
}

/// Whether nothing answers HTTP at `url` any more.
async fn refused(client: &reqwest::Client, url: &str) -> Result<(), String> {
    match client.get(url).timeout(Duration::from_secs(1)).send().await {
        Err(e) if e.is_connect() => Ok(()),
        Err(e) => Err(format!("{url}: {e}")),
        Ok(response) => Err(format!("{url} still answers {}", response.status())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_that_panics_leaves_no_database_no_redis_keys_and_no_process() {
    let left = Arc::new(Mutex::new(Left::default()));
    let record = Arc::clone(&left);
    let outcome = AssertUnwindSafe(async move {
        let anvil = Anvil::start().await.unwrap();
        anvil
            .build_chain(ChainSpec {
                blocks: 200,
                tx_every: 10,
                txs_per_block: 1,
            })
            .await
            .unwrap();
        let mut app = spawn_app(test_scheduler()).await;
        app.register_chain("doomed", &anvil.url, 10).await;
        app.spawn_inprocess_worker(2);
        let worker = Process::worker(&app.stores, 1, &[], "teardown-worker").unwrap();
        {
            let mut left = record.lock().unwrap();
            left.stores = Some(StoreArgs::clone(&app.stores));
            left.api = Some(app.api);
            left.anvil_url = Some(anvil.url.clone());
            left.worker_pid = worker.child.id();
        }
        app.trigger_backfill("doomed", 0, 199).await;
        let stores = StoreArgs::clone(&app.stores);
        wait_until(
            "the test's database and Redis keys",
            Duration::from_secs(30),
            async || match stores_left(&stores).await {
                Ok((true, keys)) if keys > 0 => Ok(()),
                other => Err(format!("{other:?}")),
            },
        )
        .await;
        panic!("the test fails here, before its teardown");
    })
    .catch_unwind()
    .await;
    assert!(outcome.is_err(), "the test body was meant to panic");

    let left = std::mem::take(&mut *left.lock().unwrap());
    let stores = left.stores.expect("the test got as far as its stores");
    // Immediately: the guard's cleanup ran while the panic unwound.
    let (database, keys) = stores_left(&stores).await.unwrap();
    assert!(!database, "database of {} left behind", stores.database_url);
    assert_eq!(keys, 0, "Redis keys {}* left behind", stores.redis_prefix);

    // The processes and tasks were told to stop; they are gone within moments.
    let client = reqwest::Client::new();
    let api = format!("http://{}/healthz", left.api.expect("an API address"));
    wait_until(
        "the in-process API to stop",
        Duration::from_secs(10),
        async || refused(&client, &api).await,
    )
    .await;
    let anvil = left.anvil_url.expect("an Anvil URL");
    wait_until("Anvil to stop", Duration::from_secs(10), async || {
        refused(&client, &anvil).await
    })
    .await;
    let pid = left.worker_pid.expect("a worker process id");
    wait_until(
        "the worker process to end",
        Duration::from_secs(10),
        async || process_ended(pid),
    )
    .await;
    // And nothing wrote its keys again after the cleanup.
    let (database, keys) = stores_left(&stores).await.unwrap();
    assert!(!database && keys == 0, "{database} {keys}");
}

#[test]
fn stores_dropped_outside_a_runtime_are_cleaned_up_too() {
    let (send, receive) = std::sync::mpsc::channel();
    let panicked = std::thread::spawn(move || {
        let stores = fresh_stores();
        send.send(StoreArgs::clone(&stores)).unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            blockfill_activities::db::ensure_database(&stores.database_url)
                .await
                .unwrap();
            let client = redis::Client::open(stores.redis_url.as_str()).unwrap();
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            let _: () = redis::cmd("SET")
                .arg(format!("{}:probe", stores.redis_prefix))
                .arg(1)
                .query_async(&mut conn)
                .await
                .unwrap();
            assert_eq!(stores_left(&stores).await.unwrap(), (true, 1));
        });
        // The runtime goes first: the guard drops outside any runtime.
        drop(runtime);
        panic!("the test fails here, outside a runtime");
    })
    .join();
    assert!(panicked.is_err(), "the thread was meant to panic");
    let stores = receive.recv().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(
        runtime.block_on(stores_left(&stores)).unwrap(),
        (false, 0),
        "{} / {}* left behind",
        stores.database_url,
        stores.redis_prefix
    );
}

/// The children (`PPid == parent`) of process `parent`.
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let wanted = format!("PPid:\t{parent}");
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .is_ok_and(|status| status.lines().any(|l| l == wanted))
        })
        .collect()
}

/// The dense benchmarks' databases (`blockfill_bench_dense_<run>`) that exist now.
async fn dense_bench_databases(admin_url: &str) -> Vec<String> {
    use sea_orm::sqlx::{self, Connection as _};
    let mut admin = sqlx::PgConnection::connect(admin_url).await.unwrap();
    let names: Vec<(String,)> = sqlx::query_as(
        "SELECT datname FROM pg_database WHERE datname LIKE 'blockfill\\_bench\\_dense\\_%'",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    admin.close().await.ok();
    names.into_iter().map(|(n,)| n).collect()
}

/// Redis keys of the benchmark run whose database is `database` (its key prefix ends with the
/// database name's run suffix).
async fn dense_bench_keys(redis_url: &str, database: &str) -> usize {
    let suffix = database.rsplit('_').next().unwrap_or(database);
    let client = redis::Client::open(redis_url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("blockfill-bench_dense-*{suffix}:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    keys.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_benchmark_stops_its_processes_and_drops_its_stores() {
    let binaries = blockfill_tests::process::binaries().unwrap();
    let (postgres, redis_url) = blockfill_tests::stores::base_urls();
    let admin = StoreArgs {
        database_url: format!("{postgres}/postgres"),
        redis_url: redis_url.clone(),
        redis_prefix: "unused".to_owned(),
    };
    let before = dense_bench_databases(&admin.database_url).await;
    // The dense benchmark straight to its end-to-end phase: a devnet process, two worker
    // processes and far more rows than it reaches before the signal.
    let mut bench = Process::start(
        &binaries.blockfill,
        &[
            "bench",
            "--dense",
            "--dense-long",
            "--dense-blocks",
            "1000000",
        ],
        &blockfill_tests::process::store_env(&admin),
        "interrupted-bench",
    )
    .unwrap();
    let pid = bench.child.id().expect("the benchmark's pid");
    let database = wait_until(
        "the benchmark's database created",
        Duration::from_secs(30),
        async || {
            let now = dense_bench_databases(&admin.database_url).await;
            now.into_iter()
                .find(|d| !before.contains(d))
                .ok_or("none yet")
        },
    )
    .await;
    // Under way: its devnet and both workers run, and batches are in its queue.
    let children = wait_until(
        "the benchmark's devnet and workers running, its queue in Redis",
        Duration::from_secs(60),
        async || {
            let children = children_of(pid);
            let keys = dense_bench_keys(&redis_url, &database).await;
            if children.len() >= 3 && keys > 0 {
                Ok(children)
            } else {
                Err(format!("children {children:?}, {keys} keys"))
            }
        },
    )
    .await;

    let signal = tokio::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .await
        .unwrap();
    assert!(signal.success());
    let status = tokio::time::timeout(Duration::from_secs(30), bench.child.wait())
        .await
        .expect("the benchmark exits within 30 s of SIGINT")
        .unwrap();
    let log = std::fs::read_to_string(&bench.log).unwrap();
    assert!(!status.success(), "an interrupted benchmark fails: {log}");
    assert!(log.contains("interrupted"), "{log}");
    for child in children {
        wait_until(
            &format!("the benchmark's child {child} ended"),
            Duration::from_secs(10),
            async || process_ended(child),
        )
        .await;
    }
    let left = dense_bench_databases(&admin.database_url).await;
    assert!(!left.contains(&database), "{database} is left");
    assert_eq!(dense_bench_keys(&redis_url, &database).await, 0);
}
