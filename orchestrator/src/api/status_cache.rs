//! The status, gaps and fleet answers, each computed at most once per chain (and, for gaps and
//! fleet, per query) per `--status-cache` (250 ms by default): a dashboard wall or a script asking a thousand times
//! a second costs the database four answers a second, not a thousand. One computation runs at a
//! time per key. While it runs, callers get the last answer if it is younger than
//! [`SERVE_STALE_FOR`] (on a database busy with a full-speed backfill a computation can take a
//! second, and every caller waiting for it would wait that long); without one, they wait for it.
//! Zero turns the cache off.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use super::{ChainStatus, GapPage};
use crate::fleet::FleetView;

/// How old an answer may still be served while the next one is being computed.
pub(super) const SERVE_STALE_FOR: Duration = Duration::from_secs(10);

/// One key's last answer, and the lock its next computation holds.
#[derive(Debug)]
struct Slot<V> {
    last: Mutex<Option<(Instant, Arc<V>)>>,
    computing: tokio::sync::Mutex<()>,
}

impl<V> Default for Slot<V> {
    fn default() -> Self {
        Self {
            last: Mutex::new(None),
            computing: tokio::sync::Mutex::new(()),
        }
    }
}

impl<V> Slot<V> {
    /// Whether no answer was ever stored.
    fn is_empty(&self) -> bool {
        self.last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_none()
    }

    /// The last answer if it is younger than `age`.
    fn younger_than(&self, age: Duration) -> Option<Arc<V>> {
        self.last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .filter(|(at, _)| at.elapsed() < age)
            .map(|(_, answer)| Arc::clone(answer))
    }
}

/// Recent answers by key.
#[derive(Debug)]
pub struct AnswerCache<V> {
    fresh_for: Duration,
    slots: Mutex<HashMap<String, Arc<Slot<V>>>>,
}

/// Recent status and gaps answers.
#[derive(Debug)]
pub struct StatusCache {
    /// `GET /v1/chains/{name}/status`, by chain.
    pub status: AnswerCache<ChainStatus>,
    /// `GET /v1/chains/{name}/gaps`, by chain and query.
    pub gaps: AnswerCache<GapPage>,
    /// `GET /v1/chains/{name}/fleet`, by chain and query.
    pub fleet: AnswerCache<FleetView>,
}

impl StatusCache {
    /// Answers are reused for `fresh_for` (zero: never).
    pub fn new(fresh_for: Duration) -> Self {
        Self {
            status: AnswerCache::new(fresh_for),
            gaps: AnswerCache::new(fresh_for),
            fleet: AnswerCache::new(fresh_for),
        }
    }
}

impl StatusCache {
    /// Forgets every answer about `chain` (after its settings change, the next caller sees them).
    pub fn forget_chain(&self, chain: &str) {
        self.status.forget_chain(chain);
        self.gaps.forget_chain(chain);
        self.fleet.forget_chain(chain);
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

    /// Forgets the answers keyed `chain` or `chain?<query>`.
    fn forget_chain(&self, chain: &str) {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|key, _| {
                key.strip_prefix(chain)
                    .is_none_or(|rest| !(rest.is_empty() || rest.starts_with('?')))
            });
    }

    /// The answer for `key`: the last one if younger than the freshness; else, while another
    /// caller computes the next one, the last one if younger than [`SERVE_STALE_FOR`]; else
    /// `compute`'s (shared with the callers that wait for it).
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
        if let Some(answer) = slot.younger_than(self.fresh_for) {
            return Ok(answer);
        }
        let _computing = match slot.computing.try_lock() {
            Ok(guard) => guard,
            Err(_) => {
                if let Some(answer) = slot.younger_than(SERVE_STALE_FOR) {
                    return Ok(answer);
                }
                slot.computing.lock().await
            }
        };
        // Computed while this caller waited for the lock.
        if let Some(answer) = slot.younger_than(self.fresh_for) {
            return Ok(answer);
        }
        let answer = match compute().await {
            Ok(answer) => Arc::new(answer),
            Err(error) => {
                // A key that never had an answer (a chain that does not exist) keeps no slot, so
                // asking for made-up names does not grow the cache.
                if slot.is_empty() {
                    self.slots
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .remove(key);
                }
                return Err(error);
            }
        };
        *slot
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((Instant::now(), Arc::clone(&answer)));
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
    async fn a_failed_key_keeps_no_slot_unless_it_had_an_answer_and_a_chain_can_be_forgotten() {
        let cache: AnswerCache<ChainStatus> = AnswerCache::new(Duration::from_millis(1));
        for n in 0..100 {
            let missing = cache
                .get_or_compute(&format!("made-up-{n}"), async || {
                    Err::<ChainStatus, _>("404")
                })
                .await;
            assert_eq!(missing.err(), Some("404"));
        }
        assert_eq!(cache.slots.lock().expect("lock").len(), 0);
        cache
            .get_or_compute("devnet", async || Ok::<_, &str>(answer("devnet")))
            .await
            .expect("computed");
        tokio::time::sleep(Duration::from_millis(5)).await;
        let failed = cache
            .get_or_compute("devnet", async || Err::<ChainStatus, _>("database down"))
            .await;
        assert!(failed.is_err());
        assert_eq!(
            cache.slots.lock().expect("lock").len(),
            1,
            "a chain that had an answer keeps it"
        );
        for key in ["devnet?limit=1", "devnet2", "devnet2?limit=1"] {
            cache
                .get_or_compute(key, async || Ok::<_, &str>(answer(key)))
                .await
                .expect("computed");
        }
        cache.forget_chain("devnet");
        let mut kept: Vec<String> = cache.slots.lock().expect("lock").keys().cloned().collect();
        kept.sort();
        assert_eq!(kept, ["devnet2", "devnet2?limit=1"]);
    }

    #[tokio::test]
    async fn while_an_answer_is_recomputed_callers_get_the_last_one_at_once() {
        let cache = Arc::new(AnswerCache::new(Duration::from_millis(50)));
        let computed = Arc::new(AtomicU32::new(0));
        let first = cache
            .get_or_compute("devnet", async || Ok::<_, String>(answer("first")))
            .await
            .expect("computed");
        assert_eq!(first.chain, "first");
        tokio::time::sleep(Duration::from_millis(60)).await;
        // A slow recomputation (a busy database) starts...
        let slow = {
            let (cache, computed) = (Arc::clone(&cache), Arc::clone(&computed));
            tokio::spawn(async move {
                cache
                    .get_or_compute("devnet", async || {
                        computed.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        Ok::<_, String>(answer("second"))
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        // ...and a caller meanwhile gets the last answer without waiting for it.
        let asked = Instant::now();
        let meanwhile = cache
            .get_or_compute("devnet", async || {
                computed.fetch_add(1, Ordering::SeqCst);
                Ok::<_, String>(answer("third"))
            })
            .await
            .expect("answered");
        assert_eq!(meanwhile.chain, "first");
        assert!(
            asked.elapsed() < Duration::from_millis(200),
            "{:?}",
            asked.elapsed()
        );
        let second = slow.await.expect("joined").expect("computed");
        assert_eq!(second.chain, "second");
        assert_eq!(computed.load(Ordering::SeqCst), 1, "one recomputation");
        // Once the new answer is in, it is served.
        let after = cache
            .get_or_compute("devnet", async || Ok::<_, String>(answer("fourth")))
            .await
            .expect("answered");
        assert_eq!(after.chain, "second");
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
