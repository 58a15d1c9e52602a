//! An operator's control of a backfill (issue 12): `POST /v1/backfills/{id}/pause`, `/resume`,
//! `/cancel` (no body) and `PATCH /v1/backfills/{id}` `{"priority": n}`. Each answers 200 with
//! the backfill as `GET /v1/backfills/{id}` shows it; 404 for an unknown id, 409 when its state
//! forbids the change (a finished one, a cancelled one paused or resumed, the live lane's).
//! Repeating a pause on a paused backfill, a cancel on a cancelled one or a resume on an active
//! one changes nothing and answers 200.
//!
//! - pause: no batch of it is queued any more; its jobs waiting in Redis are withdrawn (their
//!   batches go back to `planned`), running ones finish; survives a restart (the leader resumes
//!   only active backfills' schedulers).
//! - resume: running again, a fresh scheduler generation continues from its checkpoint.
//! - cancel: ends `cancelled`; waiting jobs are withdrawn and their batches, and its planned
//!   ones, end `cancelled`; running ones finish and are written; nothing of it runs again.
//! - priority: higher runs first among the chain's active backfills (see
//!   `blockfill_activities::plan`).

use axum::{
    Json, Router,
    extract::{State, rejection::JsonRejection},
    routing::{patch, post},
};
use blockfill_activities::store::control::Transition;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    ApiContext, ApiError, BackfillView, ErrorBody,
    backfills::{backfill_id, load, priority},
    params::PathParam,
};
use crate::scheduler::{self, SchedulerError};

pub(super) fn router() -> Router<ApiContext> {
    Router::new()
        .route("/v1/backfills/{id}/pause", post(pause))
        .route("/v1/backfills/{id}/resume", post(resume))
        .route("/v1/backfills/{id}/cancel", post(cancel))
        .route("/v1/backfills/{id}", patch(change))
}

/// Body of `PATCH /v1/backfills/{id}`: only the fields given change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ChangeBackfill {
    /// Higher runs first (-100..=100).
    priority: Option<i64>,
}

/// Answers a transition: the backfill's view, or why not.
async fn answer(
    ctx: &ApiContext,
    id: Uuid,
    what: &str,
    done: Result<Transition, SchedulerError>,
) -> Result<Json<BackfillView>, ApiError> {
    match done? {
        Transition::Changed | Transition::Already => Ok(Json(load(ctx, id).await?)),
        Transition::Unknown => Err(ApiError::NotFound(format!("no backfill {id}"))),
        Transition::Refused(status) => {
            let view = load(ctx, id).await?;
            let why = if view.mode == blockfill_activities::store::BackfillMode::Live {
                "it is the live lane's backfill, which follows the head and cannot be stopped \
                 (halt live sync with PATCH /v1/chains/{name} {\"live_sync\": false})"
                    .to_owned()
            } else {
                format!("it is {status}")
            };
            Err(ApiError::Conflict(format!(
                "backfill {id} cannot be {what}: {why}"
            )))
        }
    }
}

#[utoipa::path(
    post,
    path = "/v1/backfills/{id}/pause",
    tag = "backfills",
    params(("id" = Uuid, Path, description = "Backfill id")),
    responses(
        (status = 200, description = "Paused (or already paused): no batch of it is queued; waiting ones are withdrawn, running ones finish", body = BackfillView, example = json!(super::openapi::examples::backfill())),
        (status = 400, description = "The id is not a UUID", body = ErrorBody, example = json!(super::openapi::examples::error("bad_request", "\"x\" is not a backfill id (a UUID)"))),
        (status = 404, description = "No such backfill", body = ErrorBody, example = json!(super::openapi::examples::error("not_found", "no backfill 0193c1d2-7a4e-7c3b-9a1e-3f2b8c4d5e6f"))),
        (status = 409, description = "Its state forbids it (finished, cancelled, or the live lane's)", body = ErrorBody, example = json!(super::openapi::examples::error("conflict", "backfill 0193c1d2-7a4e-7c3b-9a1e-3f2b8c4d5e6f cannot be paused: it is completed"))),
    ),
)]
pub(super) async fn pause(
    State(ctx): State<ApiContext>,
    PathParam(id): PathParam<String>,
) -> Result<Json<BackfillView>, ApiError> {
    let id = backfill_id(&id)?;
    let done = scheduler::pause_backfill(&ctx.app, id).await;
    answer(&ctx, id, "paused", done).await
}

#[utoipa::path(
    post,
    path = "/v1/backfills/{id}/resume",
    tag = "backfills",
    params(("id" = Uuid, Path, description = "Backfill id")),
    responses(
        (status = 200, description = "Running again from its checkpoint (or already active)", body = BackfillView, example = json!(super::openapi::examples::backfill())),
        (status = 400, description = "The id is not a UUID", body = ErrorBody, example = json!(super::openapi::examples::error("bad_request", "\"x\" is not a backfill id (a UUID)"))),
        (status = 404, description = "No such backfill", body = ErrorBody, example = json!(super::openapi::examples::error("not_found", "no backfill 0193c1d2-7a4e-7c3b-9a1e-3f2b8c4d5e6f"))),
        (status = 409, description = "Its state forbids it (finished, cancelled, or the live lane's)", body = ErrorBody, example = json!(super::openapi::examples::error("conflict", "backfill 0193c1d2-7a4e-7c3b-9a1e-3f2b8c4d5e6f cannot be resumed: it is completed"))),
    ),
)]
pub(super) async fn resume(
    State(ctx): State<ApiContext>,
    PathParam(id): PathParam<String>,
) -> Result<Json<BackfillView>, ApiError> {
    let id = backfill_id(&id)?;
    let done = scheduler::resume_backfill(&ctx.app, id).await;
    answer(&ctx, id, "resumed", done).await
}

#[utoipa::path(
    post,
    path = "/v1/backfills/{id}/cancel",
    tag = "backfills",
    params(("id" = Uuid, Path, description = "Backfill id")),
    responses(
        (status = 200, description = "Cancelled (or already cancelled): waiting batches end cancelled, running ones finish", body = BackfillView, example = json!(super::openapi::examples::backfill())),
        (status = 400, description = "The id is not a UUID", body = ErrorBody, example = json!(super::openapi::examples::error("bad_request", "\"x\" is not a backfill id (a UUID)"))),
        (status = 404, description = "No such backfill", body = ErrorBody, example = json!(super::openapi::examples::error("not_found", "no backfill 0193c1d2-7a4e-7c3b-9a1e-3f2b8c4d5e6f"))),
        (status = 409, description = "Its state forbids it (finished, cancelled, or the live lane's)", body = ErrorBody, example = json!(super::openapi::examples::error("conflict", "backfill 0193c1d2-7a4e-7c3b-9a1e-3f2b8c4d5e6f cannot be canceld: it is completed"))),
    ),
)]
pub(super) async fn cancel(
    State(ctx): State<ApiContext>,
    PathParam(id): PathParam<String>,
) -> Result<Json<BackfillView>, ApiError> {
    let id = backfill_id(&id)?;
    let done = scheduler::cancel_backfill(&ctx.app, id).await;
    answer(&ctx, id, "cancelled", done).await
}

#[utoipa::path(
    patch,
    path = "/v1/backfills/{id}",
    tag = "backfills",
    params(("id" = Uuid, Path, description = "Backfill id")),
    request_body(content = ChangeBackfill, example = json!({"priority": 50})),
    responses(
        (status = 200, description = "The backfill with its new priority", body = BackfillView, example = json!(super::openapi::examples::backfill())),
        (status = 400, description = "The id is not a UUID, or the body is not JSON", body = ErrorBody, example = json!(super::openapi::examples::error("bad_request", "\"x\" is not a backfill id (a UUID)"))),
        (status = 404, description = "No such backfill", body = ErrorBody, example = json!(super::openapi::examples::error("not_found", "no backfill 0193c1d2-7a4e-7c3b-9a1e-3f2b8c4d5e6f"))),
        (status = 409, description = "It is finished, or the live lane's", body = ErrorBody, example = json!(super::openapi::examples::error("conflict", "backfill 0193c1d2-7a4e-7c3b-9a1e-3f2b8c4d5e6f cannot be changed: it is completed"))),
        (status = 422, description = "A field is invalid", body = ErrorBody, example = json!({"error": "invalid fields: priority: must be between -100 and 100 (got 500)", "code": "invalid_fields", "fields": {"priority": "must be between -100 and 100 (got 500)"}})),
    ),
)]
pub(super) async fn change(
    State(ctx): State<ApiContext>,
    PathParam(id): PathParam<String>,
    body: Result<Json<ChangeBackfill>, JsonRejection>,
) -> Result<Json<BackfillView>, ApiError> {
    let id = backfill_id(&id)?;
    let Json(body) = body?;
    let Some(requested) = body.priority else {
        return Ok(Json(load(&ctx, id).await?));
    };
    let priority = priority(requested)?;
    let done = scheduler::set_priority(&ctx.app, id, priority).await;
    answer(&ctx, id, "changed", done).await
}
