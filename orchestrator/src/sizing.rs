//! Fleet sizing: how many workers a chain wants, from its backlog and the measured per-worker
//! rate, clamped to the chain's `[min_workers, max_workers]`, with hysteresis so the fleet does
//! not flap. Pure arithmetic; `api::fleet` feeds it from the store and the worker reports.

use std::time::Duration;

/// How long the fleet aims to take to drain a backlog, unless configured
/// (`--fleet-target-drain`): it grows until the backlog would drain within this at the measured
/// rate (or reaches its maximum).
pub const DEFAULT_TARGET_DRAIN: Duration = Duration::from_secs(600);

/// A shrink happens only when the computed size is at most this fraction of the running fleet
/// (or the backlog is gone), so small swings of the rate do not stop and start workers.
const SHRINK_BELOW: f64 = 0.75;

/// What the size is decided from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FleetInputs {
    /// The chain's lower bound.
    pub min_workers: u32,
    /// The chain's upper bound (at least `min_workers`).
    pub max_workers: u32,
    /// Workers serving the chain now.
    pub running: u32,
    /// Blocks still to index (unfinished batches and the unplanned rest of active backfills).
    pub backlog_blocks: u64,
    /// Blocks per second one worker indexes, as measured (`None`: nothing measured yet).
    pub per_worker_blocks_per_second: Option<f64>,
    /// How long the backlog may take to drain (at least a second).
    pub target_drain: Duration,
}

/// Why the fleet has the size it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::Display, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum SizeReason {
    /// Nothing to do: the minimum.
    NoBacklog,
    /// A backlog but no measured rate yet: at least one worker, to measure it.
    Measuring,
    /// The backlog needs more workers to drain within the target.
    Backlog,
    /// Shrinking would be too small a change to be worth a stop and a start.
    Hysteresis,
    /// The backlog wants more than the maximum.
    AtMaximum,
    /// The backlog wants fewer than the minimum.
    AtMinimum,
}

/// The desired number of workers and why.
pub fn desired_workers(inputs: FleetInputs) -> (u32, SizeReason) {
    let min = inputs.min_workers;
    let max = inputs.max_workers.max(min);
    if inputs.backlog_blocks == 0 {
        return (min, SizeReason::NoBacklog);
    }
    let Some(rate) = inputs.per_worker_blocks_per_second.filter(|r| *r > 0.0) else {
        let size = inputs.running.max(1).clamp(min, max);
        return (size, SizeReason::Measuring);
    };
    let drain = inputs.target_drain.as_secs_f64().max(1.0);
    let wanted = (inputs.backlog_blocks as f64 / (rate * drain)).ceil();
    let wanted = if wanted >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        (wanted as u32).max(1)
    };
    if wanted > max {
        return (max, SizeReason::AtMaximum);
    }
    if wanted < min {
        return (min, SizeReason::AtMinimum);
    }
    if wanted < inputs.running && f64::from(wanted) > f64::from(inputs.running) * SHRINK_BELOW {
        return (inputs.running.clamp(min, max), SizeReason::Hysteresis);
    }
    (wanted, SizeReason::Backlog)
}

/// Seconds until `backlog_blocks` are indexed by `workers` at `per_worker` blocks/s.
pub fn eta_seconds(backlog_blocks: u64, workers: u32, per_worker: Option<f64>) -> Option<f64> {
    let rate = per_worker.filter(|r| *r > 0.0)? * f64::from(workers);
    (rate > 0.0).then(|| backlog_blocks as f64 / rate)
}

/// Workers needed to index `backlog_blocks` within `within` at `per_worker` blocks/s (not
/// clamped: the capacity planner says what it would take).
pub fn workers_to_finish_within(
    backlog_blocks: u64,
    within: Duration,
    per_worker: Option<f64>,
) -> Option<u64> {
    let rate = per_worker.filter(|r| *r > 0.0)?;
    if backlog_blocks == 0 {
        return Some(0);
    }
    let seconds = within.as_secs_f64();
    if seconds <= 0.0 {
        return None;
    }
    Some((backlog_blocks as f64 / (rate * seconds)).ceil().max(1.0) as u64)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn inputs() -> impl Strategy<Value = FleetInputs> {
        (
            0u32..20,
            0u32..40,
            0u32..60,
            0u64..10_000_000,
            prop::option::of(0.0f64..5_000.0),
            0u64..100_000,
        )
            .prop_map(|(min, extra, running, backlog, rate, drain)| FleetInputs {
                min_workers: min,
                max_workers: min + extra,
                running,
                backlog_blocks: backlog,
                per_worker_blocks_per_second: rate,
                target_drain: Duration::from_secs(drain),
            })
    }

    proptest! {
        #[test]
        fn the_size_stays_within_min_and_max(inputs in inputs()) {
            let (size, _) = desired_workers(inputs);
            prop_assert!(size >= inputs.min_workers && size <= inputs.max_workers, "{size} {inputs:?}");
        }

        #[test]
        fn more_backlog_never_wants_fewer_workers(inputs in inputs(), more in 0u64..10_000_000) {
            let (size, _) = desired_workers(inputs);
            let bigger = FleetInputs { backlog_blocks: inputs.backlog_blocks + more, ..inputs };
            let (bigger_size, _) = desired_workers(bigger);
            prop_assert!(bigger_size >= size, "{size} -> {bigger_size} for {inputs:?} + {more}");
        }

        #[test]
        fn a_shorter_target_drain_never_wants_fewer_workers(inputs in inputs(), shorter in 0u64..100_000) {
            let (size, _) = desired_workers(inputs);
            let hurried = FleetInputs {
                target_drain: inputs.target_drain.saturating_sub(Duration::from_secs(shorter)),
                ..inputs
            };
            let (hurried_size, _) = desired_workers(hurried);
            prop_assert!(hurried_size >= size, "{size} -> {hurried_size} for {inputs:?} - {shorter}s");
        }

        #[test]
        fn the_planner_finishes_in_time(backlog in 1u64..10_000_000, rate in 0.1f64..5_000.0, secs in 1u64..100_000) {
            let workers = workers_to_finish_within(backlog, Duration::from_secs(secs), Some(rate)).expect("a rate");
            let eta = eta_seconds(backlog, workers as u32, Some(rate)).expect("a rate");
            prop_assert!(eta <= secs as f64 + 1e-6, "{workers} workers take {eta}s > {secs}s");
            if workers > 1 {
                let fewer = eta_seconds(backlog, workers as u32 - 1, Some(rate)).expect("a rate");
                prop_assert!(fewer > secs as f64 - 1e-6, "one fewer would do");
            }
        }
    }

    #[test]
    fn no_backlog_is_the_minimum_and_an_unmeasured_backlog_gets_one_worker() {
        let idle = FleetInputs {
            min_workers: 1,
            max_workers: 8,
            running: 5,
            backlog_blocks: 0,
            per_worker_blocks_per_second: Some(100.0),
            target_drain: DEFAULT_TARGET_DRAIN,
        };
        assert_eq!(desired_workers(idle), (1, SizeReason::NoBacklog));
        let unmeasured = FleetInputs {
            min_workers: 0,
            running: 0,
            backlog_blocks: 1_000,
            per_worker_blocks_per_second: None,
            ..idle
        };
        assert_eq!(desired_workers(unmeasured), (1, SizeReason::Measuring));
    }

    #[test]
    fn the_fleet_grows_with_the_backlog_and_shrinks_only_by_a_real_margin() {
        // 100 blocks/s per worker drains 60,000 blocks per worker in the target window.
        let at = |running, backlog| FleetInputs {
            min_workers: 1,
            max_workers: 9,
            running,
            backlog_blocks: backlog,
            per_worker_blocks_per_second: Some(100.0),
            target_drain: DEFAULT_TARGET_DRAIN,
        };
        assert_eq!(desired_workers(at(1, 300_000)), (5, SizeReason::Backlog));
        assert_eq!(
            desired_workers(at(1, 6_000_000)),
            (9, SizeReason::AtMaximum)
        );
        // 4 wanted while 5 run: within the margin, stay.
        assert_eq!(desired_workers(at(5, 240_000)), (5, SizeReason::Hysteresis));
        // 2 wanted while 5 run: shrink.
        assert_eq!(desired_workers(at(5, 120_000)), (2, SizeReason::Backlog));
        // A shorter target drain wants more workers for the same backlog.
        let hurried = FleetInputs {
            target_drain: Duration::from_secs(60),
            ..at(1, 30_000)
        };
        assert_eq!(desired_workers(hurried), (5, SizeReason::Backlog));
    }
}
