//! Scheduler checkpoints: one row per backfill and generation, holding the planning cursor. A
//! generation continues as new by copying its row to the next generation; only the last ten are
//! kept.

use sea_orm::sqlx::{self, PgConnection, PgPool};
use uuid::Uuid;

/// Generations kept per backfill.
const KEPT_GENERATIONS: i64 = 10;

/// Records generation 0 of a backfill at `from` (nothing if it exists).
pub async fn start(pool: &PgPool, backfill_id: Uuid, from: u64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO scheduler_checkpoints (backfill_id, generation, cursor_block) \
         VALUES ($1, 0, $2) ON CONFLICT DO NOTHING",
    )
    .bind(backfill_id)
    .bind(from as i64)
    .execute(pool)
    .await?;
    Ok(())
}

/// The latest generation of a backfill and its cursor.
pub async fn latest(pool: &PgPool, backfill_id: Uuid) -> Result<Option<(i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT generation, cursor_block FROM scheduler_checkpoints WHERE backfill_id = $1 \
         ORDER BY generation DESC LIMIT 1",
    )
    .bind(backfill_id)
    .fetch_optional(pool)
    .await
}

/// Records that a generation is alive, run by `holder`.
pub async fn touch(
    pool: &PgPool,
    backfill_id: Uuid,
    generation: i64,
    holder: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE scheduler_checkpoints SET updated_at = now(), holder = $3 \
         WHERE backfill_id = $1 AND generation = $2",
    )
    .bind(backfill_id)
    .bind(generation)
    .bind(holder)
    .execute(pool)
    .await?;
    Ok(())
}

/// Serialises planning steps of all backfills until the caller's transaction ends.
pub async fn lock_planning(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('blockfill.plan'))")
        .execute(conn)
        .await?;
    Ok(())
}

/// Locks a generation's row and reads its cursor (`None`: no such generation).
pub async fn lock_cursor(
    conn: &mut PgConnection,
    backfill_id: Uuid,
    generation: i64,
) -> Result<Option<u64>, sqlx::Error> {
    let row: Option<(i64,)> = sqlx::query_as(
        "SELECT cursor_block FROM scheduler_checkpoints WHERE backfill_id = $1 AND generation = $2 \
         FOR UPDATE",
    )
    .bind(backfill_id)
    .bind(generation)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(c,)| c as u64))
}

/// Moves a generation's cursor to `cursor` after planning `planned` batches.
pub async fn advance(
    conn: &mut PgConnection,
    backfill_id: Uuid,
    generation: i64,
    cursor: u64,
    planned: u64,
    holder: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE scheduler_checkpoints SET cursor_block = $3, planned_batches = planned_batches + $4, \
           updated_at = now(), holder = $5 WHERE backfill_id = $1 AND generation = $2",
    )
    .bind(backfill_id)
    .bind(generation)
    .bind(cursor as i64)
    .bind(planned as i64)
    .bind(holder)
    .execute(conn)
    .await?;
    Ok(())
}

/// Puts a generation's cursor back to `cursor` (a rescan).
pub async fn rewind(
    conn: &mut PgConnection,
    backfill_id: Uuid,
    generation: i64,
    cursor: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE scheduler_checkpoints SET cursor_block = $3, updated_at = now() \
         WHERE backfill_id = $1 AND generation = $2",
    )
    .bind(backfill_id)
    .bind(generation)
    .bind(cursor as i64)
    .execute(conn)
    .await?;
    Ok(())
}

/// Copies generation `generation` to `generation + 1` and drops generations older than the
/// kept window. Returns whether the next generation is new (false: another copy continued).
pub async fn continue_as_new(
    conn: &mut PgConnection,
    backfill_id: Uuid,
    generation: i64,
) -> Result<bool, sqlx::Error> {
    let next = generation + 1;
    let inserted = sqlx::query(
        "INSERT INTO scheduler_checkpoints (backfill_id, generation, cursor_block, planned_batches) \
         SELECT backfill_id, $2, cursor_block, planned_batches FROM scheduler_checkpoints \
         WHERE backfill_id = $1 AND generation = $3 ON CONFLICT DO NOTHING",
    )
    .bind(backfill_id)
    .bind(next)
    .bind(generation)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    sqlx::query("DELETE FROM scheduler_checkpoints WHERE backfill_id = $1 AND generation < $2")
        .bind(backfill_id)
        .bind(next - KEPT_GENERATIONS)
        .execute(conn)
        .await?;
    Ok(inserted > 0)
}
