//! Job queues on Redis: a small layer over apalis 1.0 and apalis-redis 1.0 that the orchestrator
//! (which pushes jobs) and the worker binary (which runs them) share.
//!
//! Redis holds only a bounded window of runnable jobs; the plan, batch status, attempt budgets and
//! statistics live in PostgreSQL. This module therefore keeps to what apalis does well (delivery,
//! crash recovery, concurrency) and steers around the defects of apalis-redis 1.0.0 that
//! `stack.md` lists:
//!
//! - every worker runs with `lock_tasks(false)` (item 2) and with the heartbeat settings of
//!   [`QueueSettings`] (item 5), so the jobs of a killed worker come back after about
//!   `heartbeat_interval * missed_heartbeats` plus one heartbeat (6-8 s with the defaults);
//! - every worker gets a unique name (prefix, host, pid, uuid v7), so restarts never collide
//!   (item 6);
//! - an interval `PollStrategy` wakes idle workers every `poll_interval` (item 8);
//! - a handler's transient failures ([`JobFailure::Retry`]) are retried in-process with
//!   exponential backoff and jitter ([`crate::backoff`]); when the retries are spent, or on
//!   [`JobFailure::Abort`], a panic or an undecodable payload, the job ends as an apalis
//!   `AbortError`, so the storage never re-schedules it (item 4): the caller keeps its own attempt
//!   budget; a job waiting out a backoff when shutdown comes is handed back to the queue;
//! - [`JobQueue::depth`] reads the raw Redis structures in one Lua script (item 7), and
//!   [`JobQueue::vacuum`] drops finished jobs (item 10).
//!
//! Panics go through apalis's `CatchPanicLayer` (`apalis::layers::catch_panic`), which ends the
//! job as an `AbortError`. The retries do not use apalis's `RetryLayer` (tower's `Retry` with
//! `apalis::layers::retry::BackoffRetryPolicy`): its budget is `Task::attempt()`, which
//! apalis-redis stores with every result and so carries across deliveries; tower's `Retry` sleeps
//! out the backoff, then waits for the inner service to be ready (which apalis refuses once the
//! worker stops) and calls the handler again without asking the policy, so a job in a backoff
//! would hold up shutdown; and with spent retries it returns the handler's own error, which the
//! storage re-schedules. The `runner` module keeps that loop.
//!
//! # Layout
//! - `settings`: [`QueueSettings`] (Redis, heartbeats, polling) and [`WorkerOptions`].
//! - `error`: [`QueueError`].
//! - `scripts`: the Lua scripts (depth, live tasks, vacuum, releasing a stopped worker,
//!   withdrawing waiting jobs).
//! - `job_queue`: [`JobQueue`] (connect, push, depth, withdraw, vacuum), [`QueueDepth`], [`queue_name`].
//! - `runner`: running one delivered job ([`JobContext`], [`JobFailure`], the retry loop).
//! - `worker`: [`run_worker`], worker names and the poll strategy.
//!
//! # What callers must do
//!
//! - Choose deterministic task ids (`{chain}:{from}-{to}`). A push of an id that Redis still knows
//!   (queued, running, or finished and not yet vacuumed) is ignored; to run a finished id again,
//!   [`vacuum`](JobQueue::vacuum) first or push a new id.
//! - Keep `scheduled + active` below a few thousand jobs (item 1: a fetch that promotes about
//!   8,000 due jobs at once fails and stops the worker); feed the queue a bounded window.
//! - Make handlers idempotent: delivery is at least once (a killed worker's job runs again, and
//!   such crash deliveries do not count as attempts, item 9).
//! - Call [`vacuum`](JobQueue::vacuum) now and then; finished jobs stay in Redis until then.
//!
//! # Example
//! ```ignore
//! let queue = JobQueue::<FetchJob>::connect(&settings, "fetch").await?;
//! queue.push("1:100-199", job, None).await?;
//! run_worker(queue, WorkerOptions::default(), |job, ctx| async move { .. }, shutdown).await?;
//! ```

mod error;
mod job_queue;
mod runner;
mod scripts;
mod settings;
mod worker;

pub use error::QueueError;
pub use job_queue::{JobQueue, QueueDepth, queue_name};
pub use runner::{JobContext, JobFailure};
pub use settings::{QueueSettings, WorkerOptions};
pub use worker::run_worker;

#[cfg(test)]
mod tests;
