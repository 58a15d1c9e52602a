//! `GET /v1/chains/{name}/reorgs?limit=`: detected reorgs, newest first.

use axum::{
    Json, Router,
    extract::{Query, State, rejection::QueryRejection},
    routing::get,
};
use chrono::{DateTime, Utc};
use sea_orm::sqlx::{self, PgPool};
use serde::{Deserialize, Serialize};

use super::{
    ApiContext, ApiError,
    params::{PathParam, Text},
};

pub(super) fn router() -> Router<ApiContext> {
    Router::new().route("/v1/chains/{name}/reorgs", get(list))
}

/// A detected reorg.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, sqlx::FromRow)]
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

/// The latest `limit` reorgs of `chain`.
pub(super) async fn recent_reorgs(
    pool: &PgPool,
    chain: &str,
    limit: i64,
) -> Result<Vec<ReorgView>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, common_ancestor, depth, old_hashes, new_hashes, detected_by, detected_at \
         FROM reorgs WHERE chain = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(chain)
    .bind(limit)
    .fetch_all(pool)
    .await
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
    let exists: Option<(String,)> = sqlx::query_as("SELECT name FROM chains WHERE name = $1")
        .bind(name.as_str())
        .fetch_optional(&ctx.app.pool)
        .await?;
    if exists.is_none() {
        return Err(ApiError::NotFound(format!("no chain named {name}")));
    }
    Ok(Json(
        recent_reorgs(&ctx.app.pool, name.as_str(), limit).await?,
    ))
}
