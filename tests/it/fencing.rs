//! Leadership with fencing: a leader that cannot confirm its lock within a bounded time stops
//! scheduling, and every scheduler write of a deposed leader is refused once a newer term exists
//! (no second live backfill, no doubled reorg rows or deliveries).

use std::time::{Duration, Instant};

use blockfill_activities::{SchedulerJob, entity::chains};
use blockfill_orchestrator::{live::advance_live, scheduler::handle_scheduler_job};
use blockfill_tests::{
    anvil::Anvil,
    app::{TestApp, spawn_app, spawn_app_with, test_scheduler},
    tcp_proxy::TcpProxy,
};
use sea_orm::EntityTrait;
use uuid::Uuid;

async fn wait_for_role(app: &TestApp, role: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let (_, view) = app.get("/v1/orchestrator").await;
        if view["role"] == role {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not {role} within {timeout:?}: {view}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_leaders_scheduler_writes_are_refused() {
    let anvil = Anvil::start().await.unwrap();
    anvil.mine(200).await.unwrap();
    let mut scheduler = test_scheduler();
    scheduler.seam_check_interval = Duration::from_secs(3_600);
    let app = spawn_app(scheduler).await;
    app.register_chain("fenced", &anvil.url, 10).await;
    wait_for_role(&app, "leader", Duration::from_secs(10)).await;
    let ctx = app.context();

    // Another orchestrator is elected (a new term) while this one still believes it leads.
    sea_orm::sqlx::query(
        "UPDATE leadership SET holder = 'usurper', term = term + 1 WHERE role = 'scheduler'",
    )
    .execute(&app.pool)
    .await
    .unwrap();

    // Its live lane writes nothing ...
    let mut chain = chains::Entity::find_by_id("fenced".to_owned())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    chain.live_sync = true;
    let advanced = advance_live(&ctx, &chain, 150).await;
    assert!(
        advanced.is_err(),
        "a deposed leader's live lane: {advanced:?}"
    );
    // ... and its scheduler generations plan nothing.
    let backfill = Uuid::now_v7();
    sea_orm::sqlx::query(
        "INSERT INTO backfills (id, chain, mode, from_block, to_block, status) \
         VALUES ($1, 'fenced', 'range', 0, 199, 'planned')",
    )
    .bind(backfill)
    .execute(&app.pool)
    .await
    .unwrap();
    sea_orm::sqlx::query(
        "INSERT INTO scheduler_checkpoints (backfill_id, generation, cursor_block) VALUES ($1, 0, 0)",
    )
    .bind(backfill)
    .execute(&app.pool)
    .await
    .unwrap();
    let _ = handle_scheduler_job(
        SchedulerJob {
            backfill_id: backfill,
            generation: 0,
            trace_context: None,
        },
        ctx.clone(),
    )
    .await;
    assert_eq!(
        app.count("SELECT count(*) FROM batches WHERE chain = 'fenced'")
            .await,
        0,
        "no batch planned by a deposed leader"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM backfills WHERE chain = 'fenced' AND mode = 'live'")
            .await,
        0,
        "no live backfill created by a deposed leader"
    );
    // It notices and steps down.
    wait_for_role(&app, "standby", Duration::from_secs(10)).await;
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_cannot_confirm_its_lock_stops_scheduling() {
    let proxy = TcpProxy::start("127.0.0.1:5432").await.unwrap();
    let through_proxy = proxy.addr.to_string();
    let app = spawn_app_with(test_scheduler(), |args| {
        let database = args
            .stores
            .database_url
            .rsplit('/')
            .next()
            .unwrap_or_default();
        args.lock_database_url = Some(format!("postgres://postgres@{through_proxy}/{database}"));
    })
    .await;
    wait_for_role(&app, "leader", Duration::from_secs(10)).await;

    // The lock connection goes silent: no error, no close, just no answers (a partition).
    proxy.freeze();
    wait_for_role(&app, "standby", Duration::from_secs(20)).await;
    proxy.thaw();
    app.teardown().await;
}
