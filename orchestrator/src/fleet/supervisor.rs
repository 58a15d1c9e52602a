//! The local supervisor (`blockfill serve --supervise-workers`): keeps, for every chain, as many
//! local `blockfill-worker --chains <chain>` processes as the chain's desired fleet, less the
//! workers something else runs for it.
//!
//! - It grows at once and shrinks only to the largest size desired over the scale-down delay, so
//!   a dip in the backlog or the measured rate never stops a worker that is wanted again soon.
//! - It never exceeds the chain's `max_workers`: workers it did not start (another machine, a
//!   worker serving every chain) count against the size, and its own count from the moment they
//!   start, before their first report.
//! - It stops a worker with SIGTERM and lets it drain (in-flight batches finish; its report goes
//!   at once), killing it only after the grace period; a draining worker still counts as its
//!   own, so it is never mistaken for someone else's.
//! - A worker that exits by itself is recorded and replaced if still wanted; while workers keep
//!   exiting, replacements wait longer and longer (1 s doubling up to a minute).
//!
//! Every start, stop and exit is kept in a bounded history ([`FleetEvent`]), which the admin API
//! serves.

use std::{
    collections::{BTreeMap, VecDeque},
    path::PathBuf,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use blockfill_activities::{settings::StoreArgs, store::workers::WorkerRow};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::{task::JoinHandle, time::Instant};

use super::{FleetView, WorkerProcess, size::serves, spawn_worker};

/// Events kept in the history.
const HISTORY: usize = 500;

/// How the supervisor runs workers.
#[derive(Debug, Clone)]
pub struct SupervisorSettings {
    /// The `blockfill-worker` binary.
    pub binary: PathBuf,
    /// The stores the workers use (the orchestrator's own).
    pub stores: StoreArgs,
    /// Batches each worker runs at once.
    pub concurrency: usize,
    /// How long a stopped worker may drain before it is killed.
    pub grace: Duration,
    /// Shrink only to the largest size desired over this long.
    pub scale_down_delay: Duration,
    /// Where each worker's log goes (`{log_dir}/{chain}/worker-{n}.log`).
    pub log_dir: PathBuf,
}

/// What the supervisor did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::Display, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum FleetAction {
    /// Started a worker.
    Started,
    /// Sent a worker SIGTERM (it drains, then exits).
    Stopped,
    /// A worker exited without being asked to.
    Exited,
}

/// One start, stop or exit of a supervised worker.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FleetEvent {
    /// When.
    pub at: DateTime<Utc>,
    /// The chain the worker serves.
    pub chain: String,
    /// What happened.
    pub action: FleetAction,
    /// The worker's name (its reports' ids start with it).
    pub worker: String,
    /// Its process id.
    pub pid: Option<u32>,
    /// Supervised workers of the chain afterwards (draining ones not counted).
    pub supervised: u32,
    /// Workers the chain wanted at that pass (after the scale-down delay).
    pub target: u32,
    /// Workers serving the chain that the supervisor did not start.
    pub external: u32,
    /// Why the fleet answer wanted its size.
    pub reason: String,
}

/// The supervisor's account of one chain (for the admin API).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SupervisedChain {
    /// Running supervised workers (not draining).
    pub workers: u32,
    /// Workers stopped and still draining.
    pub draining: u32,
}

struct Supervised {
    name: String,
    process: WorkerProcess,
}

#[derive(Default)]
struct ChainWorkers {
    running: Vec<Supervised>,
    /// Names of stopped workers until they exit, with their drain.
    draining: Vec<(String, JoinHandle<()>)>,
    desired: ScaleDownWindow,
    exits: CrashLoop,
}

/// Workers that exited by themselves lately: while they keep exiting (a bad endpoint setting, a
/// missing database), replacements wait longer and longer, so a crash loop does not start a
/// process every pass.
#[derive(Debug, Default)]
struct CrashLoop {
    /// When recent exits happened, oldest first (the last [`CRASH_WINDOW`]).
    recent: VecDeque<Instant>,
}

/// How long an exit counts towards a crash loop.
const CRASH_WINDOW: Duration = Duration::from_secs(300);
/// The longest wait before a worker that keeps exiting is replaced.
const MAX_RESTART_DELAY: Duration = Duration::from_secs(60);

impl CrashLoop {
    /// Records an exit at `now`.
    fn exited(&mut self, now: Instant) {
        self.recent.push_back(now);
    }

    /// When a replacement may start: after the last exit, 1 s for the first exit in the window,
    /// doubling with each further one, at most [`MAX_RESTART_DELAY`]; `None` without exits.
    fn restart_at(&mut self, now: Instant) -> Option<Instant> {
        while self
            .recent
            .front()
            .is_some_and(|at| now.duration_since(*at) > CRASH_WINDOW)
        {
            self.recent.pop_front();
        }
        let last = *self.recent.back()?;
        let doublings = (self.recent.len() - 1).min(16) as u32;
        let delay = Duration::from_secs(1)
            .saturating_mul(2_u32.saturating_pow(doublings))
            .min(MAX_RESTART_DELAY);
        Some(last + delay)
    }
}

/// The sizes desired over the scale-down delay: the size to run is the largest of them, so
/// growth is immediate and a shrink waits until every size desired over the delay is smaller.
#[derive(Debug, Default)]
struct ScaleDownWindow {
    /// Recent desired sizes, oldest first.
    recent: VecDeque<(Instant, u32)>,
}

impl ScaleDownWindow {
    /// Records `desired` at `now`; returns the largest size desired within `delay` of `now`.
    fn target(&mut self, now: Instant, desired: u32, delay: Duration) -> u32 {
        self.recent.push_back((now, desired));
        while self
            .recent
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > delay)
        {
            self.recent.pop_front();
        }
        self.recent
            .iter()
            .map(|(_, size)| *size)
            .max()
            .unwrap_or(desired)
    }
}

#[derive(Default)]
struct State {
    chains: BTreeMap<String, ChainWorkers>,
    events: VecDeque<FleetEvent>,
    started: u64,
}

/// The local supervisor. Shared by the fleet loop of every leader term and the admin API.
pub struct Supervisor {
    settings: SupervisorSettings,
    state: Mutex<State>,
}

impl Supervisor {
    /// A supervisor with no workers yet.
    pub fn new(settings: SupervisorSettings) -> Self {
        Self {
            settings,
            state: Mutex::default(),
        }
    }

    /// One pass for one chain: records exits, then starts or stops workers so the chain has
    /// `target - external` supervised workers, where `target` is the largest size `view` desired
    /// over the scale-down delay (at most its maximum) and `external` the workers in `fresh`
    /// serving the chain that this supervisor did not start.
    pub fn resize(&self, view: &FleetView, fresh: &[WorkerRow]) {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let State {
            chains,
            events,
            started,
        } = &mut *state;
        let chain = chains.entry(view.chain.clone()).or_default();
        chain.draining.retain(|(_, drain)| !drain.is_finished());

        // A lowered maximum (PATCH) applies at once, whatever was desired before.
        let target = chain
            .desired
            .target(now, view.desired, self.settings.scale_down_delay)
            .min(view.max_workers);
        let own = |report: &WorkerRow| {
            chain
                .running
                .iter()
                .map(|w| &w.name)
                .chain(chain.draining.iter().map(|(name, _)| name))
                .any(|name| report.report.id.starts_with(&format!("{name}-")))
        };
        let external = fresh
            .iter()
            .filter(|w| serves(w, &view.chain) && !own(w))
            .count() as u32;
        let wanted = target.saturating_sub(external) as usize;
        let mut record = |chain: &ChainWorkers, action, worker: &str, pid| {
            let event = FleetEvent {
                at: Utc::now(),
                chain: view.chain.clone(),
                action,
                worker: worker.to_owned(),
                pid,
                supervised: chain.running.len() as u32,
                target,
                external,
                reason: view.reason.clone(),
            };
            tracing::info!(target: "blockfill::fleet", chain = %event.chain, action = %action, worker, pid, supervised = event.supervised, target, external, reason = %event.reason, "supervised worker");
            metrics::counter!("blockfill_supervisor_events_total", "chain" => view.chain.clone(), "action" => action.to_string()).increment(1);
            if events.len() == HISTORY {
                events.pop_front();
            }
            events.push_back(event);
        };

        let mut index = 0;
        while index < chain.running.len() {
            match chain.running[index].process.child.try_wait() {
                Ok(None) => index += 1,
                Ok(Some(_)) | Err(_) => {
                    let gone = chain.running.remove(index);
                    tracing::warn!(target: "blockfill::fleet", chain = %view.chain, worker = %gone.name, log = %gone.process.log.display(), "a supervised worker exited by itself");
                    chain.exits.exited(now);
                    record(chain, FleetAction::Exited, &gone.name, None);
                }
            }
        }
        let held = chain.exits.restart_at(now).filter(|at| *at > now);
        if let Some(at) = held
            && chain.running.len() < wanted
        {
            tracing::debug!(target: "blockfill::fleet", chain = %view.chain, wait = ?at.duration_since(now), "workers keep exiting; the replacement waits");
        }
        while held.is_none() && chain.running.len() < wanted {
            *started += 1;
            let name = format!("blockfill-supervised-{}-{}", view.chain, *started);
            match self.start(&view.chain, &name, *started) {
                Ok(process) => {
                    let pid = process.child.id();
                    chain.running.push(Supervised {
                        name: name.clone(),
                        process,
                    });
                    record(chain, FleetAction::Started, &name, pid);
                }
                Err(e) => {
                    tracing::error!(target: "blockfill::fleet", chain = %view.chain, error = %e, "cannot start a worker");
                    break;
                }
            }
        }
        while chain.running.len() > wanted {
            let Some(stopping) = chain.running.pop() else {
                break;
            };
            let pid = stopping.process.child.id();
            let drain = tokio::spawn(stopping.process.stop(self.settings.grace));
            chain.draining.push((stopping.name.clone(), drain));
            record(chain, FleetAction::Stopped, &stopping.name, pid);
        }
    }

    fn start(&self, chain: &str, name: &str, index: u64) -> anyhow::Result<WorkerProcess> {
        spawn_worker(
            &self.settings.binary,
            &self.settings.stores,
            self.settings.concurrency,
            &[
                ("BLOCKFILL_WORKER_CHAINS", chain.to_owned()),
                ("BLOCKFILL_WORKER_NAME", name.to_owned()),
            ],
            &self.settings.log_dir.join(chain),
            index as usize,
        )
    }

    /// What the supervisor did, oldest first (the last 500 events).
    pub fn events(&self) -> Vec<FleetEvent> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.events.iter().cloned().collect()
    }

    /// Supervised workers by chain.
    pub fn chains(&self) -> BTreeMap<String, SupervisedChain> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state
            .chains
            .iter()
            .map(|(name, chain)| {
                let draining = chain
                    .draining
                    .iter()
                    .filter(|(_, drain)| !drain.is_finished())
                    .count();
                (
                    name.clone(),
                    SupervisedChain {
                        workers: chain.running.len() as u32,
                        draining: draining as u32,
                    },
                )
            })
            .collect()
    }

    /// Stops every supervised worker (SIGTERM, then their drain) and waits for them to exit.
    pub async fn stop_all(&self) {
        let drains: Vec<JoinHandle<()>> = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let grace = self.settings.grace;
            state
                .chains
                .values_mut()
                .flat_map(|chain| {
                    let stopping = chain
                        .running
                        .drain(..)
                        .map(|w| tokio::spawn(w.process.stop(grace)))
                        .collect::<Vec<_>>();
                    stopping
                        .into_iter()
                        .chain(chain.draining.drain(..).map(|(_, drain)| drain))
                })
                .collect()
        };
        if !drains.is_empty() {
            tracing::info!(target: "blockfill::fleet", workers = drains.len(), "stopping supervised workers");
        }
        for drain in drains {
            if let Err(e) = drain.await {
                tracing::warn!(target: "blockfill::fleet", error = %e, "a worker's drain failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_is_immediate_and_a_shrink_waits_for_the_delay() {
        let delay = Duration::from_secs(30);
        let start = Instant::now();
        let at = |secs| start + Duration::from_secs(secs);
        let mut window = ScaleDownWindow::default();
        assert_eq!(window.target(at(0), 1, delay), 1);
        assert_eq!(window.target(at(2), 4, delay), 4, "grows at once");
        assert_eq!(window.target(at(4), 2, delay), 4, "a dip does not shrink");
        assert_eq!(window.target(at(20), 3, delay), 4);
        assert_eq!(window.target(at(33), 2, delay), 3, "4 left the window");
        assert_eq!(window.target(at(51), 2, delay), 2);
        assert_eq!(window.target(at(52), 5, delay), 5);
    }

    #[test]
    fn workers_that_keep_exiting_are_replaced_ever_more_slowly() {
        let start = Instant::now();
        let at = |secs| start + Duration::from_secs(secs);
        let mut exits = CrashLoop::default();
        assert_eq!(exits.restart_at(at(0)), None, "no exits: start at once");
        exits.exited(at(10));
        assert_eq!(exits.restart_at(at(10)), Some(at(11)));
        exits.exited(at(11));
        assert_eq!(exits.restart_at(at(11)), Some(at(13)));
        exits.exited(at(13));
        assert_eq!(exits.restart_at(at(13)), Some(at(17)));
        for second in 17..30 {
            exits.exited(at(second));
        }
        assert_eq!(
            exits.restart_at(at(29)),
            Some(at(29 + 60)),
            "at most a minute"
        );
        assert_eq!(
            exits.restart_at(at(29 + 301)),
            None,
            "exits older than the window are forgotten"
        );
    }

    #[test]
    fn without_a_delay_the_target_is_the_latest_size() {
        let start = Instant::now();
        let mut window = ScaleDownWindow::default();
        assert_eq!(window.target(start, 4, Duration::ZERO), 4);
        assert_eq!(
            window.target(start + Duration::from_millis(1), 1, Duration::ZERO),
            1
        );
    }
}
