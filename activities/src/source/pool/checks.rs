//! The pool's checks of its endpoints: whether each serves the chain (before first use, then
//! periodically), and health probes of idle endpoints (so a dead endpoint nobody routes to is
//! found, and an open breaker gets its probe).

use super::*;

impl EndpointPool {
    /// Records `endpoint`'s identity; logs and counts a change of state.
    pub(super) fn set_identity(
        &self,
        endpoint: &Endpoint,
        health: &mut Health,
        state: IdentityState,
        detail: Option<String>,
    ) {
        let previous = endpoint.identity.set(state);
        if previous == state {
            if state == IdentityState::WrongChain {
                health.identity_detail = detail;
            }
            return;
        }
        let url = endpoint.label.as_str();
        match (previous, state) {
            (_, IdentityState::WrongChain) => {
                tracing::error!(target: "blockfill::rpc", chain = %self.chain, endpoint = url, expected = %self.expected, detail = detail.as_deref().unwrap_or(""), "endpoint serves another chain; it is not used until it serves this one again")
            }
            (IdentityState::WrongChain, IdentityState::Verified) => {
                tracing::warn!(target: "blockfill::rpc", chain = %self.chain, endpoint = url, "endpoint serves the chain again; using it")
            }
            (_, IdentityState::Verified) => {
                tracing::debug!(target: "blockfill::rpc", chain = %self.chain, endpoint = url, "endpoint identity verified")
            }
            (_, IdentityState::Unverified) => {
                tracing::info!(target: "blockfill::rpc", chain = %self.chain, endpoint = url, detail = detail.as_deref().unwrap_or(""), "endpoint identity to be checked again")
            }
        }
        health.identity_detail = detail;
        metrics::gauge!("blockfill_rpc_endpoint_wrong_chain", "chain" => self.chain.clone(), "endpoint" => url.to_owned())
            .set(if state == IdentityState::WrongChain { 1.0 } else { 0.0 });
    }

    /// Before `endpoint` is used: checks its identity, or waits for the check another request
    /// is running and takes its verdict.
    pub(super) async fn verify_before_use(&self, endpoint: &Endpoint) -> Verification {
        let asked = Instant::now();
        let _turn = endpoint.identity_check.lock().await;
        let (checked_since, detail) = {
            let health = endpoint.health();
            (
                health.identity_checked_at.is_some_and(|at| at >= asked),
                health.identity_detail.clone().unwrap_or_default(),
            )
        };
        match endpoint.identity.get() {
            IdentityState::Verified => Verification::Verified,
            IdentityState::WrongChain => Verification::FailedElsewhere(SourceError::WrongChain {
                endpoint: endpoint.label.clone(),
                detail,
            }),
            IdentityState::Unverified if checked_since => {
                Verification::FailedElsewhere(SourceError::NoEndpoint {
                    chain: self.chain.clone(),
                    detail: format!("{} is not verified: {detail}", endpoint.label),
                })
            }
            IdentityState::Unverified => match self.check_identity(endpoint).await {
                Ok(()) => Verification::Verified,
                Err(error) => Verification::Failed(error),
            },
        }
    }

    /// Reads `endpoint`'s chain id and (when the chain's is known) genesis hash and compares them
    /// with the chain's. Agreement verifies it. A disagreement comes back as
    /// [`SourceError::WrongChain`], which marks it `wrong_chain` when the caller records it
    /// through its claim; a read that fails leaves its state as it was (an unreachable endpoint
    /// stays unverified). The caller holds a claim and the endpoint's `identity_check` lock.
    pub(super) async fn check_identity(&self, endpoint: &Endpoint) -> Result<(), SourceError> {
        let calls = 1 + u32::from(self.expected.genesis_hash.is_some());
        if let (Some(rate), Some(rps)) = (&endpoint.rate, endpoint.rps) {
            let n = NonZeroU32::new(calls.min(rps.get())).unwrap_or(NonZeroU32::MIN);
            // Cannot fail: n never exceeds the bucket's burst.
            let _ = rate.until_n_ready(n).await;
        }
        endpoint
            .health()
            .stats
            .on_request(Instant::now(), u64::from(calls));
        let outcome = self.read_identity(endpoint).await;
        let mut health = endpoint.health();
        health.identity_checked_at = Some(Instant::now());
        match &outcome {
            Ok(()) => self.set_identity(endpoint, &mut health, IdentityState::Verified, None),
            Err(SourceError::WrongChain { .. }) => {}
            Err(error) => {
                if endpoint.identity.get() == IdentityState::Unverified {
                    health.identity_detail = Some(format!("identity check failed: {error}"));
                }
            }
        }
        outcome
    }

    pub(super) async fn read_identity(&self, endpoint: &Endpoint) -> Result<(), SourceError> {
        let wrong = |detail| SourceError::WrongChain {
            endpoint: endpoint.label.clone(),
            detail,
        };
        let chain_id = endpoint.client.chain_id().await?;
        if let Some(detail) = self.expected.chain_id_mismatch(chain_id) {
            return Err(wrong(detail));
        }
        if self.expected.genesis_hash.is_some() {
            let genesis = endpoint.client.genesis_hash().await?;
            if let Some(detail) = self.expected.genesis_mismatch(&genesis) {
                return Err(wrong(detail));
            }
        }
        Ok(())
    }

    /// Confirms that `client`, which has just given an answer that can move the head or decide
    /// a reorg, still answers the chain's id: a URL re-pointed since its last identity check
    /// is caught before that answer is used.
    pub(super) async fn confirm_chain_id(
        &self,
        client: &dyn EndpointClient,
    ) -> Result<(), SourceError> {
        if self.expected.chain_id.is_none() {
            return Ok(());
        }
        let chain_id = client.chain_id().await?;
        match self.expected.chain_id_mismatch(chain_id) {
            Some(detail) => Err(SourceError::WrongChain {
                endpoint: redact_url(client.url()),
                detail,
            }),
            None => Ok(()),
        }
    }

    /// The health loop's round. Checks the identity of every endpoint that is due (unverified,
    /// or last checked `identity_check_interval` ago), busy or not; asks every other endpoint
    /// that has been sent nothing for `idle` for its head. Both go through its breaker, skip it
    /// while it cools down for a `Retry-After`, and record their outcome like any request. This
    /// is how a dead endpoint nobody routes to gets its breaker opened, how an open one is found
    /// back when no traffic would probe it, and how an endpoint re-pointed at another chain is
    /// caught.
    pub async fn probe_idle(&self, idle: Duration) {
        let now = Instant::now();
        let recheck = self.settings.identity_check_interval;
        let mut due = Vec::new();
        for endpoint in &self.endpoints {
            let (quiet, identity_due) = {
                let health = endpoint.health();
                if health.cooldown_until.is_some_and(|c| c > now) {
                    continue;
                }
                (
                    health
                        .last_sent
                        .is_none_or(|at| now.saturating_duration_since(at) >= idle),
                    endpoint.identity.get() == IdentityState::Unverified
                        || health
                            .identity_checked_at
                            .is_none_or(|at| now.saturating_duration_since(at) >= recheck),
                )
            };
            // A check already running (a request's) does for this round.
            let turn = match identity_due.then(|| endpoint.identity_check.try_lock()) {
                Some(Ok(turn)) => Some(turn),
                Some(Err(_)) => continue,
                None if quiet => None,
                None => continue,
            };
            // Claims are held by the probes' futures: a round dropped midway gives them back.
            if let Some(claim) = self.claim(endpoint, now) {
                due.push((claim, turn));
            }
        }
        let probes = due.into_iter().map(|(claim, turn)| async move {
            let endpoint = claim.endpoint;
            let started = Instant::now();
            let outcome = match turn {
                Some(_turn) => self.check_identity(endpoint).await,
                None => {
                    // Probes spend the endpoint's rate budget like any request.
                    if let Some(rate) = &endpoint.rate {
                        let _ = rate.until_ready().await;
                    }
                    endpoint.health().stats.on_request(Instant::now(), 1);
                    endpoint.client.head().await.map(|_| ())
                }
            };
            match outcome {
                Ok(()) => claim.succeeded(started.elapsed()),
                Err(error) => claim.failed(&error, started.elapsed()),
            }
        });
        futures::future::join_all(probes).await;
    }
}
