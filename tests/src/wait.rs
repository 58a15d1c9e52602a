//! Waiting on what the system exposes (a status field, a row count, a queue depth) instead of
//! sleeping: [`wait_until`] polls a check until it holds or a deadline passes, and then fails
//! with what was waited for and what was seen last.

use std::{
    fmt::Display,
    time::{Duration, Instant},
};

/// How often [`wait_until`] checks.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Calls `check` every [`POLL_INTERVAL`] (the first time at once) until it answers `Ok(value)`,
/// and returns that value. `Err(seen)` means "not yet", with what it saw. Panics when `timeout`
/// passes first, naming `what` and the last `seen`:
///
/// ```ignore
/// let status = wait_until("chain `a` live-synced", Duration::from_secs(30), async || {
///     let status = app.get("/v1/chains/a/status").await.1;
///     if status["live"]["is_live_sync"] == true { Ok(status) } else { Err(status) }
/// })
/// .await;
/// ```
pub async fn wait_until<T, E: Display>(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Result<T, E>,
) -> T {
    let started = Instant::now();
    loop {
        match check().await {
            Ok(value) => return value,
            Err(seen) => assert!(
                started.elapsed() < timeout,
                "timed out after {timeout:?} waiting for {what}; last seen: {seen}"
            ),
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[tokio::test]
    async fn returns_the_first_value_that_holds() {
        let calls = Cell::new(0);
        let value = wait_until("three calls", Duration::from_secs(5), async || {
            calls.set(calls.get() + 1);
            if calls.get() == 3 {
                Ok(calls.get())
            } else {
                Err(calls.get())
            }
        })
        .await;
        assert_eq!(value, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "waiting for the impossible; last seen: still 7")]
    async fn fails_with_what_it_waited_for_and_saw_last() {
        wait_until(
            "the impossible",
            Duration::from_millis(250),
            async || -> Result<(), String> { Err("still 7".into()) },
        )
        .await;
    }
}
