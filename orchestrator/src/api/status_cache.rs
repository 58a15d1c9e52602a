//! The status and gaps answers, each computed at most once per chain (and, for gaps, per query)
//! per `--status-cache` (250 ms by default): a dashboard wall or a script asking a thousand times
//! a second costs the database four answers a second, not a thousand. Requests that arrive while
//! an answer is being computed wait for it (one computation at a time per key). Zero turns it
//! off.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use super::{ChainStatus, GapPage};

/// One key's last answer, and the lock its next computation holds.
type Slot<V> = Arc<tokio::sync::Mutex<Option<(Instant, Arc<V>)>>>;

/// Recent answers by key.
#[derive(Debug)]
pub struct AnswerCache<V> {
    fresh_for: Duration,
    slots: Mutex<HashMap<String, Slot<V>>>,
}

/// Recent status and gaps answers.
#[derive(Debug)]
pub struct StatusCache {
    /// `GET /v1/chains/{name}/status`, by chain.
    pub status: AnswerCache<ChainStatus>,
    /// `GET /v1/chains/{name}/gaps`, by chain and query.
    pub gaps: AnswerCache<GapPage>,
}

impl StatusCache {
    /// Answers are reused for `fresh_for` (zero: never).
    pub fn new(fresh_for: Duration) -> Self {
        Self {
            status: AnswerCache::new(fresh_for),
            gaps: AnswerCache::new(fresh_for),
        }
    }
}

impl<V> AnswerCache<V> {
    /// Answers are reused for `fresh_for` (zero: never).
    pub fn new(fresh_for: Duration) -> Self {
        Self {
            fresh_for,
            slots: Mutex::default(),
        }
    }

    /// The answer for `key`: the last one if younger than the freshness, else `compute`'s
    /// (which concurrent callers then share).
    pub async fn get_or_compute<E>(
        &self,
        key: &str,
        compute: impl AsyncFnOnce() -> Result<V, E>,
    ) -> Result<Arc<V>, E> {
        if self.fresh_for.is_zero() {
            return compute().await.map(Arc::new);
        }
        let slot = Arc::clone(
            self.slots
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(key.to_owned())
                .or_default(),
        );
        let mut last = slot.lock().await;
        if let Some((at, answer)) = last.as_ref()
            && at.elapsed() < self.fresh_for
        {
            return Ok(Arc::clone(answer));
        }
        let answer = Arc::new(compute().await?);
        *last = Some((Instant::now(), Arc::clone(&answer)));
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn answer(chain: &str) -> ChainStatus {
        serde_json::from_value(super::super::openapi::examples::status())
            .map(|mut status: ChainStatus| {
                status.chain = chain.to_owned();
                status
            })
            .expect("the documented example is a status")
    }

    #[tokio::test]
    async fn concurrent_requests_share_one_computation_until_it_goes_stale() {
        let cache = Arc::new(AnswerCache::new(Duration::from_millis(200)));
        let computed = Arc::new(AtomicU32::new(0));
        let ask = |cache: Arc<AnswerCache<ChainStatus>>,
                   computed: Arc<AtomicU32>,
                   chain: &'static str| async move {
            cache
                .get_or_compute(chain, async || {
                    computed.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok::<_, String>(answer(chain))
                })
                .await
        };
        let answers = futures::future::join_all(
            (0..50).map(|_| ask(Arc::clone(&cache), Arc::clone(&computed), "devnet")),
        )
        .await;
        assert!(
            answers
                .iter()
                .all(|a| a.as_ref().is_ok_and(|s| s.chain == "devnet"))
        );
        assert_eq!(
            computed.load(Ordering::SeqCst),
            1,
            "50 requests, one computation"
        );
        // Another chain has its own answer.
        ask(Arc::clone(&cache), Arc::clone(&computed), "other")
            .await
            .expect("computed");
        assert_eq!(computed.load(Ordering::SeqCst), 2);
        // Once stale, the next request computes again.
        tokio::time::sleep(Duration::from_millis(250)).await;
        ask(Arc::clone(&cache), Arc::clone(&computed), "devnet")
            .await
            .expect("computed");
        assert_eq!(computed.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn zero_freshness_computes_every_time_and_errors_are_not_kept() {
        let cache = AnswerCache::new(Duration::ZERO);
        let computed = AtomicU32::new(0);
        for _ in 0..3 {
            cache
                .get_or_compute("devnet", async || {
                    computed.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, String>(answer("devnet"))
                })
                .await
                .expect("computed");
        }
        assert_eq!(computed.load(Ordering::SeqCst), 3);
        let cache = AnswerCache::new(Duration::from_secs(60));
        let failed = cache
            .get_or_compute("devnet", async || Err::<ChainStatus, _>("database away"))
            .await;
        assert_eq!(failed.err(), Some("database away"));
        let after = cache
            .get_or_compute("devnet", async || Ok::<_, String>(answer("devnet")))
            .await;
        assert!(after.is_ok(), "a failure is not cached");
    }
}
