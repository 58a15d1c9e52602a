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
