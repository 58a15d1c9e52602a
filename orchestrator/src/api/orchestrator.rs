//! `GET /v1/orchestrator`: this instance's id and role, and who leads.

use axum::{Json, Router, extract::State, routing::get};
use blockfill_activities::store::leadership;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiContext, ApiError, openapi::examples};

pub(super) fn router() -> Router<ApiContext> {
    Router::new().route("/v1/orchestrator", get(show))
}

/// The current leader as recorded in the database.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct LeaderView {
    /// Instance id of the leader.
    pub holder: String,
    /// Its API address.
    pub api_addr: Option<String>,
    /// When it was elected.
    pub acquired_at: DateTime<Utc>,
    /// Its last heartbeat.
    pub heartbeat_at: DateTime<Utc>,
}

impl From<leadership::Leader> for LeaderView {
    fn from(leader: leadership::Leader) -> Self {
        Self {
            holder: leader.holder,
            api_addr: leader.api_addr,
            acquired_at: leader.acquired_at,
            heartbeat_at: leader.heartbeat_at,
        }
    }
}

/// The answer of `GET /v1/orchestrator`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct OrchestratorView {
    /// This instance's id.
    pub instance: String,
    /// `leader` (schedules, accepts writes) or `standby` (read-only).
    pub role: String,
    /// The recorded leader, if any.
    pub leader: Option<LeaderView>,
}

/// This instance's id and role, and who leads.
#[utoipa::path(
    get,
    path = "/v1/orchestrator",
    tag = "fleet",
    responses((status = 200, description = "This orchestrator", body = OrchestratorView, example = json!(examples::orchestrator()))),
)]
pub(super) async fn show(
    State(ctx): State<ApiContext>,
) -> Result<Json<OrchestratorView>, ApiError> {
    let leader = leadership::leader(&ctx.app.pool).await?.map(Into::into);
    Ok(Json(OrchestratorView {
        instance: ctx.role.instance.clone(),
        role: if ctx.role.is_leader() {
            "leader"
        } else {
            "standby"
        }
        .to_owned(),
        leader,
    }))
}
