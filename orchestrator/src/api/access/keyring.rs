//! Verifying API keys with a short cache: a verified token, and whether any active key exists,
//! are remembered for at most [`CACHE_TTL`] (one second), so a revocation takes effect within a
//! second on every orchestrator (at once on the one that revoked it: it forgets its cache).
//! Refused tokens are never cached.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use blockfill_activities::store::api_keys::{self, ApiKey, ApiKeyError};
use sea_orm::sqlx::PgPool;

/// How long a verification (or the "any key exists" answer) is reused.
pub const CACHE_TTL: Duration = Duration::from_secs(1);
/// Above this many cached tokens, expired ones are dropped.
const MAX_CACHED: usize = 1_024;

/// Verified keys and the "any active key" answer, each for [`CACHE_TTL`].
#[derive(Debug, Default)]
pub(super) struct Keyring {
    any_active: Mutex<Option<(Instant, bool)>>,
    verified: Mutex<HashMap<String, (Instant, ApiKey)>>,
}

impl Keyring {
    /// Whether any key is not revoked.
    pub(super) async fn any_active(&self, pool: &PgPool) -> Result<bool, ApiKeyError> {
        if let Some((at, any)) = *lock(&self.any_active)
            && at.elapsed() < CACHE_TTL
        {
            return Ok(any);
        }
        let any = api_keys::any_active(pool).await?;
        *lock(&self.any_active) = Some((Instant::now(), any));
        Ok(any)
    }

    /// The active key `token` authenticates, if any.
    pub(super) async fn verify(
        &self,
        pool: &PgPool,
        token: &str,
    ) -> Result<Option<ApiKey>, ApiKeyError> {
        if let Some((at, key)) = lock(&self.verified).get(token)
            && at.elapsed() < CACHE_TTL
        {
            return Ok(Some(key.clone()));
        }
        let key = api_keys::verify(pool, token).await?;
        let mut verified = lock(&self.verified);
        match &key {
            Some(key) => {
                if verified.len() >= MAX_CACHED {
                    verified.retain(|_, (at, _)| at.elapsed() < CACHE_TTL);
                }
                verified.insert(token.to_owned(), (Instant::now(), key.clone()));
            }
            None => {
                verified.remove(token);
            }
        }
        Ok(key)
    }

    /// Forgets everything (a key was created or revoked here).
    pub(super) fn forget(&self) {
        *lock(&self.any_active) = None;
        lock(&self.verified).clear();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
