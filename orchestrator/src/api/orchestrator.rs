//! `GET /v1/orchestrator`: this instance's id and role, and who leads.

use axum::{Json, Router, extract::State, routing::get};
use chrono::{DateTime, Utc};
use sea_orm::sqlx;
use serde::{Deserialize, Serialize};

use super::{ApiContext, ApiError};

pub(super) fn router() -> Router<ApiContext> {
    Router::new().route("/v1/orchestrator", get(show))
}

/// The current leader as recorded in the database.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, sqlx::FromRow)]
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

/// The answer of `GET /v1/orchestrator`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OrchestratorView {
    /// This instance's id.
    pub instance: String,
    /// `leader` (schedules, accepts writes) or `standby` (read-only).
    pub role: String,
    /// The recorded leader, if any.
    pub leader: Option<LeaderView>,
}

async fn show(State(ctx): State<ApiContext>) -> Result<Json<OrchestratorView>, ApiError> {
    let leader: Option<LeaderView> = sqlx::query_as(
        "SELECT holder, api_addr, acquired_at, heartbeat_at FROM leadership WHERE role = 'scheduler'",
    )
    .fetch_optional(&ctx.app.pool)
    .await?;
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
