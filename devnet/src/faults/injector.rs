//! [`FaultInjector`]: the current profile of one or more endpoints, shared and changeable at
//! runtime, and the counters of what was injected.

use std::sync::{
    Arc, PoisonError, RwLock,
    atomic::{AtomicU64, Ordering},
};

use super::{FaultCounts, FaultProfile, FaultProfileError};

/// The current [`FaultProfile`] of one or more endpoints and the counts of what was injected.
/// Cheap to clone: clones share the profile and the counters, so a test keeps one and changes
/// the profile of a running server with [`FaultInjector::set`].
#[derive(Clone, Debug, Default)]
pub struct FaultInjector {
    pub(super) inner: Arc<InjectorState>,
}

#[derive(Debug, Default)]
pub(super) struct InjectorState {
    pub(super) profile: RwLock<FaultProfile>,
    pub(super) requests: AtomicU64,
    pub(super) errors: AtomicU64,
    pub(super) rate_limited: AtomicU64,
    pub(super) batches_rejected: AtomicU64,
    pub(super) hung: AtomicU64,
    pub(super) malformed: AtomicU64,
}

impl FaultInjector {
    /// An injector starting with `profile`, if it is valid.
    pub fn new(profile: FaultProfile) -> Result<Self, FaultProfileError> {
        let injector = FaultInjector::default();
        injector.set(profile)?;
        Ok(injector)
    }

    /// Replaces the profile; requests that arrive afterwards use the new one. An invalid
    /// profile is refused and the current one kept.
    pub fn set(&self, profile: FaultProfile) -> Result<(), FaultProfileError> {
        profile.validate()?;
        *self
            .inner
            .profile
            .write()
            .unwrap_or_else(PoisonError::into_inner) = profile;
        Ok(())
    }

    /// The current profile.
    pub fn profile(&self) -> FaultProfile {
        self.inner
            .profile
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// What was injected so far (over all profiles and every server sharing this injector).
    pub fn injected(&self) -> FaultCounts {
        let s = &self.inner;
        FaultCounts {
            requests: s.requests.load(Ordering::Relaxed),
            errors: s.errors.load(Ordering::Relaxed),
            rate_limited: s.rate_limited.load(Ordering::Relaxed),
            batches_rejected: s.batches_rejected.load(Ordering::Relaxed),
            hung: s.hung.load(Ordering::Relaxed),
            malformed: s.malformed.load(Ordering::Relaxed),
        }
    }
}
