//! CPU time of the processes a benchmark runs, read from `/proc`: user + system seconds per
//! group (Blockfill's workers, the orchestrator, the node, PostgreSQL), sampled before and after
//! a phase, so the benchmark can print seconds per 1,000 blocks and per million rows; and the
//! peak resident memory of Blockfill's own processes.

use std::collections::BTreeMap;

use procfs::process::{Process, all_processes};

/// A set of processes whose CPU time is summed.
#[derive(Debug, Clone)]
pub(crate) enum ProcessGroup {
    /// These processes, by id.
    Pids { name: &'static str, pids: Vec<u32> },
    /// This process (the benchmark, which runs the orchestrator in-process).
    Myself { name: &'static str },
    /// Every process whose command name is `command`, with the time of its exited children
    /// (PostgreSQL's backends are the postmaster's children).
    Command {
        name: &'static str,
        command: &'static str,
    },
}

impl ProcessGroup {
    fn name(&self) -> &'static str {
        match self {
            Self::Pids { name, .. } | Self::Myself { name } | Self::Command { name, .. } => name,
        }
    }

    fn seconds(&self, ticks_per_second: f64) -> f64 {
        let of = |process: &Process, with_children: bool| {
            process.stat().map_or(0.0, |stat| {
                let mut ticks = (stat.utime + stat.stime) as f64;
                if with_children {
                    ticks += (stat.cutime + stat.cstime).max(0) as f64;
                }
                ticks / ticks_per_second
            })
        };
        match self {
            Self::Pids { pids, .. } => pids
                .iter()
                .filter_map(|pid| Process::new(i32::try_from(*pid).ok()?).ok())
                .map(|p| of(&p, false))
                .sum(),
            Self::Myself { .. } => Process::myself().map_or(0.0, |p| of(&p, false)),
            Self::Command { command, .. } => all_processes().map_or(0.0, |all| {
                all.filter_map(Result::ok)
                    .filter(|p| p.stat().is_ok_and(|s| s.comm == *command))
                    .map(|p| of(&p, true))
                    .sum()
            }),
        }
    }
}

/// The largest peak resident memory (`VmHWM`) of one process of each `Pids` or `Myself` group,
/// in MB, in `groups`' order: one line for the benchmark to print. Read before the processes
/// exit.
pub(crate) fn peak_memory_line(groups: &[ProcessGroup]) -> String {
    let peak_mb = |process: &Process| {
        process
            .status()
            .ok()
            .and_then(|status| status.vmhwm)
            .map_or(0.0, |kb| kb as f64 / 1024.0)
    };
    let parts: Vec<String> = groups
        .iter()
        .filter_map(|group| match group {
            ProcessGroup::Pids { name, pids } => Some((
                *name,
                pids.iter()
                    .filter_map(|pid| Process::new(i32::try_from(*pid).ok()?).ok())
                    .map(|p| peak_mb(&p))
                    .fold(0.0, f64::max),
            )),
            ProcessGroup::Myself { name } => {
                Some((*name, Process::myself().map_or(0.0, |p| peak_mb(&p))))
            }
            ProcessGroup::Command { .. } => None,
        })
        .map(|(name, mb)| format!("{name} {mb:.0} MB"))
        .collect();
    format!("peak memory (one process): {}", parts.join(", "))
}

/// CPU seconds per group at one moment.
#[derive(Debug, Clone, Default)]
pub(crate) struct CpuSample(BTreeMap<&'static str, f64>);

impl CpuSample {
    /// Reads every group's CPU time now.
    pub(crate) fn take(groups: &[ProcessGroup]) -> Self {
        let ticks = procfs::ticks_per_second() as f64;
        Self(
            groups
                .iter()
                .map(|g| (g.name(), g.seconds(ticks)))
                .collect(),
        )
    }

    /// Seconds spent per group since `earlier`, in `groups`' order.
    pub(crate) fn since(&self, earlier: &Self, groups: &[ProcessGroup]) -> CpuSpent {
        CpuSpent(
            groups
                .iter()
                .map(|g| {
                    let name = g.name();
                    let spent = self.0.get(name).copied().unwrap_or(0.0)
                        - earlier.0.get(name).copied().unwrap_or(0.0);
                    (name, spent.max(0.0))
                })
                .collect(),
        )
    }
}

/// CPU seconds spent per group over a phase.
#[derive(Debug, Clone, Default)]
pub struct CpuSpent(pub Vec<(&'static str, f64)>);

impl CpuSpent {
    /// Seconds of the group `name`.
    pub fn of(&self, name: &str) -> f64 {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0.0, |(_, s)| *s)
    }

    /// One line: each group's seconds per `per` units of `work` (`per_label` names the unit).
    pub fn per_unit(&self, work: f64, per: f64, per_label: &str) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(name, seconds)| format!("{name} {:.3}", seconds / work * per))
            .collect();
        format!("CPU s per {per_label}: {}", parts.join(", "))
    }
}

/// The groups of an end-to-end run: the worker processes, this process (the orchestrator, named
/// `orchestrator`), the node if it runs here, and PostgreSQL.
pub(crate) fn end_to_end_groups(
    workers: &[crate::fleet::WorkerProcess],
    orchestrator: &'static str,
    node: Option<ProcessGroup>,
) -> Vec<ProcessGroup> {
    let mut groups = vec![
        ProcessGroup::Pids {
            name: "workers",
            pids: workers.iter().filter_map(|w| w.child.id()).collect(),
        },
        ProcessGroup::Myself { name: orchestrator },
    ];
    groups.extend(node);
    groups.push(POSTGRES);
    groups
}

/// The PostgreSQL server's processes.
pub(crate) const POSTGRES: ProcessGroup = ProcessGroup::Command {
    name: "postgres",
    command: "postgres",
};
