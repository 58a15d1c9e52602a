//! The worker fleet: how big each chain's fleet should be, and (with `--supervise-workers`)
//! running it on this machine.
//!
//! - [`size`]: one chain's fleet as the API answers it ([`FleetView`]): running workers, the
//!   backlog, the measured rate, and the desired size from [`crate::sizing`].
//! - [`watch`]: the leader's loop: every `--fleet-interval` it sizes every chain (the gauge
//!   `blockfill_fleet_desired_workers{chain}`) and hands the sizes to the supervisor.
//! - [`supervisor`]: starts and stops local `blockfill-worker` processes (one chain each) to
//!   match the desired sizes, shrinking only after a scale-down delay; keeps a history of what it
//!   did.
//! - [`process`]: finding the `blockfill-worker` binary, starting and stopping one process.

pub mod process;
pub mod size;
pub mod supervisor;
pub mod watch;

pub use process::{WorkerProcess, spawn_worker, worker_binary};
pub use size::FleetView;
pub use supervisor::{FleetEvent, Supervisor};
