//! The bound of each lane's Redis queue, as the leader records it for every pusher.

use sea_orm::sqlx::{self, PgConnection, PgPool};

use super::Lane;

/// Bound of a lane whose leader has not recorded one yet.
pub const DEFAULT_QUEUE_BOUND: u64 = 256;

/// Records the bound of every lane (the leader does, when elected).
pub async fn set(pool: &PgPool, bounds: &[(Lane, u64)]) -> Result<(), sqlx::Error> {
    for (lane, bound) in bounds {
        sqlx::query(
            "INSERT INTO queue_bounds (lane, max_queued) VALUES ($1, $2) \
             ON CONFLICT (lane) DO UPDATE SET max_queued = EXCLUDED.max_queued, updated_at = now()",
        )
        .bind(*lane)
        .bind((*bound).max(1) as i64)
        .execute(pool)
        .await?;
    }
    Ok(())
}

/// The bound of `lane` (as the leader recorded it, else [`DEFAULT_QUEUE_BOUND`]).
pub async fn get(conn: &mut PgConnection, lane: Lane) -> Result<u64, sqlx::Error> {
    let bound: Option<(i64,)> =
        sqlx::query_as("SELECT max_queued FROM queue_bounds WHERE lane = $1")
            .bind(lane)
            .fetch_optional(conn)
            .await?;
    Ok(bound.map_or(DEFAULT_QUEUE_BOUND, |(b,)| b.max(1) as u64))
}
