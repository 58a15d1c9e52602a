//! Unit tests: names, task ids, settings, the retry backoff, and `Send`-ness.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{TestJob, noop_handler};
use crate::queue::{
    JobQueue, QueueError, QueueSettings, WorkerOptions, job_queue::parse_task_id, queue_name,
    run_worker,
};

#[test]
fn queue_names_join_prefix_and_lane() {
    assert_eq!(queue_name("blockfill", "fetch"), "blockfill:fetch");
}

#[test]
fn backoff_doubles_up_to_the_cap() {
    let backoff = WorkerOptions {
        backoff_base: Duration::from_millis(500),
        backoff_max: Duration::from_secs(30),
        retries: 8,
        ..WorkerOptions::default()
    }
    .backoff();
    let max = backoff.max;
    // A draw of 0.5 is a jitter factor of 1.0; 0 and 0.9998 are the extremes 0.75 and 1.2499.
    let nominal: Vec<_> = (1..=8).map(|r| backoff.delay(r, 0.5)).collect();
    assert_eq!(nominal[0], Duration::from_millis(500));
    assert_eq!(nominal[1], Duration::from_secs(1));
    assert_eq!(nominal[2], Duration::from_secs(2));
    assert_eq!(nominal[7], Duration::from_secs(30));
    // With the extreme jitters, retry n+1 still waits longer than retry n.
    for r in 1..5 {
        assert!(backoff.delay(r, 0.9998) < backoff.delay(r + 1, 0.0));
    }
    assert!(backoff.delay(usize::MAX, 0.9) <= max);
    // One delivery gets `retries` delays, each within +-25 % of the nominal one.
    let run: Vec<_> = backoff.delays().collect();
    assert_eq!(run.len(), 8);
    for (delay, nominal) in run.iter().zip(&nominal) {
        assert!(*delay >= nominal.mul_f64(0.75) && *delay <= nominal.mul_f64(1.25).min(max));
    }
}

#[test]
fn task_ids_must_survive_apalis_parsing() {
    for ok in [
        "1:100-199",
        "eth:0-999",
        "42",
        "0190b1f0-0000-7000-8000-000000000000",
    ] {
        assert!(parse_task_id("q", ok).is_ok(), "{ok}");
    }
    // A lower-case ULID comes back upper-case (apalis-redis always enables ULID ids).
    for bad in ["", "007", "01arz3ndektsv4rrffq69g5fav"] {
        assert!(
            matches!(
                parse_task_id("q", bad),
                Err(QueueError::InvalidTaskId { .. })
            ),
            "{bad}"
        );
    }
}

#[test]
fn settings_are_validated() {
    assert!(QueueSettings::default().validate().is_ok());
    let too_tight = QueueSettings {
        heartbeat_interval: Duration::from_secs(1),
        missed_heartbeats: 2,
        ..QueueSettings::default()
    };
    assert!(too_tight.validate().is_err());
    let stack_md = QueueSettings {
        heartbeat_interval: Duration::from_secs(5),
        missed_heartbeats: 2,
        ..QueueSettings::default()
    };
    assert!(stack_md.validate().is_ok());
    let sub_second = QueueSettings {
        heartbeat_interval: Duration::from_millis(500),
        missed_heartbeats: 100,
        ..QueueSettings::default()
    };
    assert!(sub_second.validate().is_err());
    let no_batch = QueueSettings {
        fetch_batch_size: 0,
        ..QueueSettings::default()
    };
    assert!(no_batch.validate().is_err());
}

/// `run_worker` with an `async fn` handler can be spawned.
#[test]
fn run_worker_futures_are_send() {
    fn assert_send<F: Future + Send>(_: &F) {}
    let settings = QueueSettings::default();
    let future = async move {
        let queue = JobQueue::<TestJob>::connect(&settings, "lane").await?;
        run_worker(
            queue,
            WorkerOptions::default(),
            noop_handler,
            CancellationToken::new(),
        )
        .await
    };
    assert_send(&future);
}

#[test]
fn settings_read_humantime_durations_and_fill_defaults() {
    let settings: QueueSettings =
        serde_json::from_str(r#"{"heartbeat_interval": "5s", "missed_heartbeats": 2}"#)
            .expect("parse");
    assert_eq!(settings.heartbeat_interval, Duration::from_secs(5));
    assert_eq!(settings.poll_interval, Duration::from_millis(100));
    let options: WorkerOptions =
        serde_json::from_str(r#"{"concurrency": 16, "backoff_max": "1m"}"#).expect("parse");
    assert_eq!((options.concurrency, options.retries), (16, 3));
    assert_eq!(options.backoff_max, Duration::from_secs(60));
}
