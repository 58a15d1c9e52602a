//! What the admin API reads to show batches and quarantined blocks: batch rows by filter or id,
//! the ids of a backfill's batches an operator may retry, and the blocks held in quarantine.
//! Reads only: retrying goes through the scheduler's batch transitions.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sqlx::{self, PgPool},
};
use uuid::Uuid;

use super::BatchStatus;
use crate::entity::batches;

/// Every batch status's spelling, in life order (what a status filter may name).
pub const STATUS_NAMES: &[&str] = <BatchStatus as strum::VariantNames>::VARIANTS;

/// Which batches to list (every given condition holds).
#[derive(Debug, Clone, Default)]
pub struct BatchFilter<'a> {
    /// Of this chain.
    pub chain: Option<&'a str>,
    /// Of this backfill.
    pub backfill: Option<Uuid>,
    /// In this status.
    pub status: Option<BatchStatus>,
}

/// The first `limit` batches matching `filter`, lowest block first.
pub async fn list(
    db: &DatabaseConnection,
    filter: BatchFilter<'_>,
    limit: u64,
) -> Result<Vec<batches::Model>, DbErr> {
    let mut select = batches::Entity::find()
        .order_by_asc(batches::Column::FromBlock)
        .limit(limit);
    if let Some(status) = filter.status {
        select = select.filter(batches::Column::Status.eq(status));
    }
    if let Some(chain) = filter.chain {
        select = select.filter(batches::Column::Chain.eq(chain));
    }
    if let Some(backfill) = filter.backfill {
        select = select.filter(batches::Column::BackfillId.eq(backfill));
    }
    select.all(db).await
}

/// The batch `id` (`{chain}:{from}-{to}`), if it exists.
pub async fn find(db: &DatabaseConnection, id: &str) -> Result<Option<batches::Model>, DbErr> {
    batches::Entity::find_by_id(id.to_owned()).one(db).await
}

/// The statuses an operator may retry a batch from.
pub const RETRYABLE: [BatchStatus; 2] = [BatchStatus::Failed, BatchStatus::Quarantined];

/// The ids of backfill `backfill_id`'s batches an operator may retry ([`RETRYABLE`]; index
/// `batches_backfill_status`).
pub async fn retryable_ids(pool: &PgPool, backfill_id: Uuid) -> Result<Vec<String>, sqlx::Error> {
    let ids: Vec<(String,)> =
        sqlx::query_as("SELECT id FROM batches WHERE backfill_id = $1 AND status = ANY($2)")
            .bind(backfill_id)
            .bind(&RETRYABLE[..])
            .fetch_all(pool)
            .await?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}

/// A block held in quarantine (as the admin API shows it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Quarantined {
    /// Chain name.
    pub chain: String,
    /// Block number.
    pub number: i64,
    /// The single-block batch that failed.
    pub batch_id: String,
    /// The backfill it belongs to.
    pub backfill_id: Uuid,
    /// The error of its last attempt.
    pub error: String,
    /// Attempts spent on it.
    pub attempts: i32,
    /// When it was quarantined.
    pub quarantined_at: DateTime<Utc>,
}

/// A `quarantined_blocks` row as read: chain, number, batch_id, backfill_id, error, attempts,
/// quarantined_at.
type QuarantinedRow = (String, i64, String, Uuid, String, i32, DateTime<Utc>);

/// The first `limit` blocks held in quarantine (of `chain`, or of every chain), by chain and
/// number; released ones are left out.
pub async fn quarantined(
    pool: &PgPool,
    chain: Option<&str>,
    limit: i64,
) -> Result<Vec<Quarantined>, sqlx::Error> {
    let rows: Vec<QuarantinedRow> = sqlx::query_as(
        "SELECT chain, number, batch_id, backfill_id, error, attempts, quarantined_at \
         FROM quarantined_blocks WHERE released_at IS NULL AND ($1::text IS NULL OR chain = $1) \
         ORDER BY chain, number LIMIT $2",
    )
    .bind(chain)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(chain, number, batch_id, backfill_id, error, attempts, quarantined_at)| Quarantined {
                chain,
                number,
                batch_id,
                backfill_id,
                error,
                attempts,
                quarantined_at,
            },
        )
        .collect())
}
