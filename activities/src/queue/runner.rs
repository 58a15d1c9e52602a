//! Running one delivered job: what a handler sees ([`JobContext`]) and may answer
//! ([`JobFailure`]), and [`JobRunner`], which calls the handler with in-process retries and maps
//! the outcome to what apalis records (done, dead, or handed back).

use std::{
    any::Any,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use apalis::layers::catch_panic::CatchPanicLayer;
use apalis_core::error::{AbortError, BoxDynError, RetryAfterError};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, info_span, warn};

use super::WorkerOptions;
use crate::backoff::sleep_or_cancelled;

/// What a handler knows about the job it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobContext {
    /// The caller-chosen task id.
    pub task_id: String,
    /// The in-process attempt, 1-based: 1 for the first call, up to `retries + 1`.
    pub attempt: usize,
    /// The name of the worker that runs the job (unique per [`run_worker`](super::run_worker)
    /// call).
    pub worker_name: String,
}

/// Why a handler failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobFailure {
    /// Transient: call the handler again after a backoff, up to `WorkerOptions::retries` times;
    /// then the job is given up (it ends in the queue's dead set).
    #[error("retryable failure: {0}")]
    Retry(String),
    /// Permanent: never retried (an apalis `AbortError`; the job ends in the dead set).
    #[error("permanent failure: {0}")]
    Abort(String),
}

/// Aborts a spawned handler when the worker is dropped without finishing it.
struct AbortOnDrop<O>(JoinHandle<O>);

impl<O> Future for AbortOnDrop<O> {
    type Output = Result<O, tokio::task::JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<O> Drop for AbortOnDrop<O> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The handler's panic-to-error mapping of the worker's apalis `CatchPanicLayer`.
pub(super) type PanicHandler = fn(&Box<dyn Any + Send>) -> AbortError;

/// apalis's `CatchPanicLayer`, ending a panicked job as an `AbortError` (dead set, no retry).
pub(super) fn catch_panic_layer() -> CatchPanicLayer<PanicHandler, AbortError> {
    CatchPanicLayer::with_panic_handler(abort_on_panic)
}

fn abort_on_panic(payload: &Box<dyn Any + Send>) -> AbortError {
    AbortError::new(format!("handler panicked: {}", panic_message(payload)))
}

fn panic_message(payload: &Box<dyn Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}

/// Runs the handler for one delivered job, with in-process retries.
pub(super) struct JobRunner<F> {
    pub(super) handler: F,
    pub(super) options: WorkerOptions,
    pub(super) worker_name: String,
    pub(super) queue: String,
    pub(super) shutdown: CancellationToken,
}

impl<F> JobRunner<F> {
    /// Runs the job until it succeeds or is given up. `Ok` marks it done; an `AbortError` sends it
    /// to the dead set; a `RetryAfterError` (only on shutdown during a backoff) gives it back to
    /// the storage, which runs it again about a second later. A handler's panic is raised again
    /// here, in the worker's task, where the `CatchPanicLayer` turns it into an `AbortError`.
    pub(super) async fn run<T, Fut>(
        &self,
        payload: Value,
        task_id: String,
        delivery: usize,
    ) -> Result<(), BoxDynError>
    where
        T: DeserializeOwned + Send + 'static,
        F: Fn(T, JobContext) -> Fut,
        Fut: Future<Output = Result<(), JobFailure>> + Send + 'static,
    {
        let mut delays = self.options.backoff().delays();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let span = info_span!(target: "blockfill::queue", "job", queue = %self.queue, task_id = %task_id, attempt, delivery);
            let job = match T::deserialize(&payload) {
                Ok(job) => job,
                Err(e) => {
                    span.in_scope(|| error!(target: "blockfill::queue", error = %e, "cannot decode the job; dropping it"));
                    return Err(AbortError::new(format!("cannot decode job {task_id}: {e}")).into());
                }
            };
            let context = JobContext {
                task_id: task_id.clone(),
                attempt,
                worker_name: self.worker_name.clone(),
            };
            let outcome = AbortOnDrop(tokio::spawn(
                (self.handler)(job, context).instrument(span.clone()),
            ))
            .await;
            let message = match outcome {
                Ok(Ok(())) => {
                    span.in_scope(|| debug!(target: "blockfill::queue", "job done"));
                    return Ok(());
                }
                Ok(Err(JobFailure::Abort(message))) => {
                    span.in_scope(|| warn!(target: "blockfill::queue", %message, "job aborted"));
                    return Err(AbortError::new(message).into());
                }
                Err(e) if e.is_panic() => {
                    let payload = e.into_panic();
                    let message = panic_message(&payload);
                    span.in_scope(|| error!(target: "blockfill::queue", %message, "job handler panicked; not retrying"));
                    std::panic::resume_unwind(payload);
                }
                Err(e) => {
                    // Only when the runtime shuts down: let the storage run it again.
                    return Err(RetryAfterError::new(
                        e.to_string(),
                        std::time::Duration::from_secs(1),
                    )
                    .into());
                }
                Ok(Err(JobFailure::Retry(message))) => message,
            };
            let Some(delay) = delays.next() else {
                span.in_scope(|| warn!(target: "blockfill::queue", %message, "job failed; retries spent, giving up"));
                return Err(AbortError::new(format!(
                    "gave up after {attempt} attempts: {message}"
                ))
                .into());
            };
            span.in_scope(
                || warn!(target: "blockfill::queue", %message, ?delay, "job failed; retrying"),
            );
            if !sleep_or_cancelled(delay, &self.shutdown).await {
                span.in_scope(|| info!(target: "blockfill::queue", "shutting down during backoff; handing the job back"));
                return Err(RetryAfterError::new(message, delay).into());
            }
        }
    }
}
