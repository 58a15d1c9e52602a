//! The `reorgs` table: one row per repaired reorg, written in the unwind's transaction and read
//! by the admin API (index `reorgs_chain_detected`; `id` grows with time).

use chrono::{DateTime, Utc};
use sea_orm::sqlx::{self, PgConnection, PgPool};

/// A recorded reorg (as the admin API shows it).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ReorgRecord {
    /// Sequence number.
    pub id: i64,
    /// Highest block on which the database and the node still agreed (-1: none).
    pub common_ancestor: i64,
    /// Blocks unwound above it.
    pub depth: i32,
    /// Replaced blocks `[{number, hash}]` (at most 64).
    #[schema(value_type = Vec<Object>)]
    pub old_hashes: serde_json::Value,
    /// The node's blocks at those heights.
    #[schema(value_type = Vec<Object>)]
    pub new_hashes: serde_json::Value,
    /// `write` (a batch did not link to stored blocks) or `seam` (the periodic check).
    pub detected_by: String,
    /// When it was repaired.
    pub detected_at: DateTime<Utc>,
}

/// A `reorgs` row as read: id, common_ancestor, depth, old_hashes, new_hashes, detected_by,
/// detected_at.
type ReorgRow = (
    i64,
    i64,
    i32,
    serde_json::Value,
    serde_json::Value,
    String,
    DateTime<Utc>,
);

/// The latest `limit` reorgs of `chain`, newest first.
pub async fn recent(
    pool: &PgPool,
    chain: &str,
    limit: i64,
) -> Result<Vec<ReorgRecord>, sqlx::Error> {
    let rows: Vec<ReorgRow> = sqlx::query_as(
        "SELECT id, common_ancestor, depth, old_hashes, new_hashes, detected_by, detected_at \
         FROM reorgs WHERE chain = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(chain)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, common_ancestor, depth, old_hashes, new_hashes, detected_by, detected_at)| {
                ReorgRecord {
                    id,
                    common_ancestor,
                    depth,
                    old_hashes,
                    new_hashes,
                    detected_by,
                    detected_at,
                }
            },
        )
        .collect())
}

/// How many reorgs of `chain` were repaired.
pub async fn count(pool: &PgPool, chain: &str) -> Result<i64, sqlx::Error> {
    let (seen,): (i64,) = sqlx::query_as("SELECT count(*) FROM reorgs WHERE chain = $1")
        .bind(chain)
        .fetch_one(pool)
        .await?;
    Ok(seen)
}

/// A reorg to record.
#[derive(Debug, Clone)]
pub struct NewReorg<'a> {
    /// The chain.
    pub chain: &'a str,
    /// Highest block still agreed on (-1: none).
    pub common_ancestor: i64,
    /// Blocks replaced.
    pub depth: i32,
    /// Replaced blocks `[{number, hash}]` (at most 64).
    pub old_hashes: serde_json::Value,
    /// The node's blocks at those heights.
    pub new_hashes: serde_json::Value,
    /// `write` (a batch did not link to stored blocks) or `seam` (the periodic check).
    pub detected_by: &'a str,
}

/// Records a repaired reorg. Runs in the caller's transaction, the one that unwinds it.
pub async fn record(conn: &mut PgConnection, reorg: NewReorg<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO reorgs (chain, common_ancestor, depth, old_hashes, new_hashes, detected_by) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(reorg.chain)
    .bind(reorg.common_ancestor)
    .bind(reorg.depth)
    .bind(reorg.old_hashes)
    .bind(reorg.new_hashes)
    .bind(reorg.detected_by)
    .execute(conn)
    .await?;
    Ok(())
}
