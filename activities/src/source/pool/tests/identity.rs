//! The pool trusts no endpoint's word about which chain it serves: endpoints of another chain id
//! or genesis are never routed to, re-pointed ones are caught, and a chain without a recorded
//! genesis checks the chain id only.

use super::*;

fn hashes_of(chain: &TestChain, range: BlockRange) -> Vec<(u64, String)> {
    range
        .blocks()
        .map(|n| (n, format!("{:#x}", chain.block_hash(n))))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn endpoints_of_another_chain_id_or_another_genesis_are_never_routed_to() {
    // Fast (so preferred by score) but not this chain: another chain id; the same chain id with
    // another genesis block (a fork, another network).
    let foreign = Scripted::serving(
        "http://foreign",
        Duration::ZERO,
        &[],
        Step::Serve,
        another_chain(999, 0),
    );
    let forked = Scripted::serving(
        "http://forked",
        Duration::ZERO,
        &[],
        Step::Serve,
        another_chain(1337, 7),
    );
    let honest = Scripted::new("http://honest", Duration::from_millis(5), &[], Step::Serve);
    let pool = pool(&[&foreign, &forked, &honest], settings());
    let chain = honest.chain();
    for i in 0..20 {
        let bundle = pool.fetch_range(range(i * 10)).await.expect("served");
        let got: Vec<(u64, String)> = bundle
            .blocks
            .iter()
            .map(|b| (b.number, b.hash.clone()))
            .collect();
        assert_eq!(got, hashes_of(&chain, range(i * 10)), "range {}", i * 10);
    }
    assert_eq!(pool.head().await.expect("head"), chain.head_number());
    assert_eq!(
        pool.block_hashes(range(500)).await.expect("hashes"),
        hashes_of(&chain, range(500))
    );
    assert_eq!(foreign.calls(), 1, "its chain id, and nothing after");
    assert_eq!(
        forked.calls(),
        2,
        "its chain id and genesis, and nothing after"
    );

    let foreign_state = state_of(&pool, "http://foreign");
    assert_eq!(foreign_state.identity, IdentityState::WrongChain);
    assert_eq!(
        foreign_state.identity_detail.as_deref(),
        Some("serves chain id 999, expected 1337")
    );
    let forked_state = state_of(&pool, "http://forked");
    assert_eq!(forked_state.identity, IdentityState::WrongChain);
    let forked_genesis = format!("{:#x}", forked.chain().block_hash(0));
    assert_eq!(
        forked_state.identity_detail,
        Some(format!(
            "genesis {forked_genesis} differs from the chain's {}",
            its_identity().genesis_hash.unwrap_or_default()
        ))
    );
    assert_eq!(forked_state.errors.get("wrong_chain"), Some(&1));
    assert_eq!(forked_state.breaker, BreakerState::Closed, "it is up");
    assert_eq!(
        state_of(&pool, "http://honest").identity,
        IdentityState::Verified
    );

    // Checked again periodically, they still disagree and still get no traffic.
    tokio::time::advance(Duration::from_secs(30)).await;
    pool.probe_idle(Duration::from_secs(3_600)).await;
    assert_eq!((foreign.calls(), forked.calls()), (2, 4), "one check each");
    for i in 20..40 {
        pool.fetch_range(range(i * 10)).await.expect("served");
    }
    assert_eq!((foreign.calls(), forked.calls()), (2, 4));
    assert_eq!(
        state_of(&pool, "http://foreign").identity,
        IdentityState::WrongChain
    );
}

#[tokio::test(start_paused = true)]
async fn an_endpoint_re_pointed_after_verification_is_caught_by_the_periodic_check() {
    let steady = Scripted::new("http://steady", Duration::from_millis(5), &[], Step::Serve);
    let provider = Scripted::new("http://provider", Duration::ZERO, &[], Step::Serve);
    let pool = pool(
        &[&steady, &provider],
        PoolSettings {
            identity_check_interval: Duration::from_secs(10),
            ..settings()
        },
    );
    pool.probe_idle(Duration::ZERO).await;
    for i in 0..10 {
        pool.fetch_range(range(i * 10)).await.expect("served");
    }
    assert!(provider.calls() > 2, "the faster endpoint gets traffic");

    // Its URL now serves another network. The next periodic check catches it.
    provider.re_point(another_chain(999, 1));
    tokio::time::advance(Duration::from_secs(5)).await;
    pool.probe_idle(Duration::from_secs(3_600)).await;
    assert_eq!(
        state_of(&pool, "http://provider").identity,
        IdentityState::Verified,
        "not due yet"
    );
    tokio::time::advance(Duration::from_secs(5)).await;
    pool.probe_idle(Duration::from_secs(3_600)).await;
    let caught = state_of(&pool, "http://provider");
    assert_eq!(caught.identity, IdentityState::WrongChain, "{caught:?}");
    assert_eq!(
        caught.identity_detail.as_deref(),
        Some("serves chain id 999, expected 1337")
    );
    let calls = provider.calls();
    let chain = steady.chain();
    for i in 10..30 {
        let bundle = pool.fetch_range(range(i * 10)).await.expect("served");
        assert_eq!(
            bundle.blocks[0].hash,
            format!("{:#x}", chain.block_hash(i * 10))
        );
    }
    assert_eq!(provider.calls(), calls, "never routed to");

    // Pointed back at the chain, a later check verifies it again and traffic returns.
    provider.re_point(the_chain());
    tokio::time::advance(Duration::from_secs(10)).await;
    pool.probe_idle(Duration::from_secs(3_600)).await;
    assert_eq!(
        state_of(&pool, "http://provider").identity,
        IdentityState::Verified
    );
    for i in 30..40 {
        pool.fetch_range(range(i * 10)).await.expect("served");
    }
    assert!(
        provider.calls() > calls + 2,
        "a verified endpoint gets traffic again"
    );
}

#[tokio::test(start_paused = true)]
async fn a_head_or_hashes_from_an_endpoint_re_pointed_since_its_last_check_are_not_taken() {
    let steady = Scripted::new("http://steady", Duration::from_millis(5), &[], Step::Serve);
    let provider = Scripted::new("http://provider", Duration::ZERO, &[], Step::Serve);
    let pool = pool(&[&steady, &provider], settings());
    pool.probe_idle(Duration::ZERO).await;
    // Re-pointed at a longer chain of another network, long before its next check is due.
    provider.re_point(another_chain(999, 1));
    let chain = steady.chain();
    assert_eq!(
        pool.head().await.expect("head"),
        chain.head_number(),
        "the other network's head is not taken"
    );
    assert_eq!(
        state_of(&pool, "http://provider").identity,
        IdentityState::WrongChain,
        "the head's chain id gave it away"
    );

    let provider = Scripted::new("http://provider", Duration::ZERO, &[], Step::Serve);
    let pool = self::pool(&[&steady, &provider], settings());
    pool.probe_idle(Duration::ZERO).await;
    provider.re_point(another_chain(999, 1));
    let tip = BlockRange {
        from: 9_900,
        to: 9_999,
    };
    assert_eq!(
        pool.block_hashes(tip).await.expect("hashes"),
        hashes_of(&chain, tip),
        "the other network's hashes do not pass for a reorg"
    );
    assert_eq!(
        state_of(&pool, "http://provider").identity,
        IdentityState::WrongChain
    );
}

#[tokio::test(start_paused = true)]
async fn with_no_endpoint_of_the_chain_requests_fail_with_a_clear_error() {
    let foreign = Scripted::serving(
        "http://foreign",
        Duration::ZERO,
        &[],
        Step::Serve,
        another_chain(999, 0),
    );
    let pool = pool(&[&foreign], settings());
    match pool.fetch_range(range(0)).await {
        Err(error @ SourceError::WrongChain { .. }) => assert_eq!(
            error.to_string(),
            "wrong chain at http://foreign: serves chain id 999, expected 1337; check the chain's RPC URLs"
        ),
        other => panic!("expected a wrong-chain error, got {other:?}"),
    }
    match pool.head().await {
        Err(error @ SourceError::NoEndpoint { .. }) => {
            let message = error.to_string();
            assert!(
                message.contains("no endpoint is verified to serve chain id 1337")
                    && message.contains("wrong_chain (serves chain id 999, expected 1337)"),
                "{message}"
            );
        }
        other => panic!("expected no endpoint, got {other:?}"),
    }
    assert_eq!(foreign.calls(), 1, "checked once, never used");
}

#[tokio::test(start_paused = true)]
async fn a_chain_without_a_recorded_genesis_checks_the_chain_id_only() {
    let forked = Scripted::serving(
        "http://forked",
        Duration::ZERO,
        &[],
        Step::Serve,
        another_chain(1337, 7),
    );
    let pool = pool_expecting(&[&forked], ChainIdentity::new(1337, None), settings());
    pool.fetch_range(range(0)).await.expect("served");
    assert_eq!(forked.calls(), 2, "its chain id, then the request");
    assert_eq!(
        state_of(&pool, "http://forked").identity,
        IdentityState::Verified
    );
}

#[tokio::test(start_paused = true)]
async fn concurrent_first_requests_wait_for_one_identity_check() {
    let slow = Scripted::new("http://slow", Duration::from_secs(1), &[], Step::Serve);
    let pool = pool(&[&slow], settings());
    let requests = (0..8).map(|i| {
        let pool = Arc::clone(&pool);
        tokio::spawn(async move { pool.fetch_range(range(i * 10)).await })
    });
    for request in futures::future::join_all(requests).await {
        request.expect("joined").expect("served");
    }
    assert_eq!(
        slow.calls(),
        2 + 8,
        "one check (chain id, genesis), then 8 requests"
    );
}
