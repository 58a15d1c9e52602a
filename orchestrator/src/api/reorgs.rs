//! `GET /v1/chains/{name}/reorgs?limit=`: detected reorgs, newest first.

use axum::{
    Json, Router,
    extract::{Query, State, rejection::QueryRejection},
    routing::get,
};
use blockfill_activities::store::{chains, reorg_log};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    ApiContext, ApiError,
    params::{PathParam, Text},
};

pub(super) fn router() -> Router<ApiContext> {
    Router::new().route("/v1/chains/{name}/reorgs", get(list))
}

/// A detected reorg.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReorgView {
    /// Sequence number.
    pub id: i64,
    /// Highest block on which the database and the node still agreed (-1: none).
    pub common_ancestor: i64,
    /// Blocks unwound above it.
    pub depth: i32,
    /// Replaced blocks `[{number, hash}]` (at most 64).
    pub old_hashes: serde_json::Value,
    /// The node's blocks at those heights when it was repaired.
    pub new_hashes: serde_json::Value,
    /// `write` (a batch did not link to stored blocks) or `seam` (the periodic check).
    pub detected_by: String,
    /// When it was repaired.
    pub detected_at: DateTime<Utc>,
}

impl From<reorg_log::ReorgRecord> for ReorgView {
    fn from(row: reorg_log::ReorgRecord) -> Self {
        Self {
            id: row.id,
            common_ancestor: row.common_ancestor,
            depth: row.depth,
            old_hashes: row.old_hashes,
            new_hashes: row.new_hashes,
            detected_by: row.detected_by,
            detected_at: row.detected_at,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<i64>,
}

async fn list(
    State(ctx): State<ApiContext>,
    PathParam(name): PathParam<Text>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Vec<ReorgView>>, ApiError> {
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=1_000).contains(&limit) {
        return Err(ApiError::BadRequest(
            "limit must be between 1 and 1000".into(),
        ));
    }
    if !chains::exists(&ctx.app.pool, name.as_str()).await? {
        return Err(ApiError::NotFound(format!("no chain named {name}")));
    }
    let reorgs = reorg_log::recent(&ctx.app.pool, name.as_str(), limit).await?;
    Ok(Json(reorgs.into_iter().map(Into::into).collect()))
}
