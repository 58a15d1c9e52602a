//! The coverage ledger as the scheduler reads it: which blocks of a range are indexed, and how
//! many are neither indexed nor quarantined. (Writes to the ledger belong to the bulk write path,
//! [`crate::write`], in the batch's own transaction.)

use sea_orm::sqlx::{self, PgConnection};

use crate::types::{BlockRange, ChainName};

/// The covered intervals of `chain` that overlap `window`, lowest first.
pub async fn covered(
    conn: &mut PgConnection,
    chain: &ChainName,
    window: BlockRange,
) -> Result<Vec<BlockRange>, sqlx::Error> {
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT start_block, end_block FROM coverage WHERE chain = $1 AND end_block >= $2 \
         AND start_block <= $3 ORDER BY start_block",
    )
    .bind(chain.as_str())
    .bind(window.from as i64)
    .bind(window.to as i64)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(s, e)| BlockRange {
            from: s as u64,
            to: e as u64,
        })
        .collect())
}

/// Blocks of `range` that are neither covered nor quarantined.
pub async fn uncovered_blocks(
    conn: &mut PgConnection,
    chain: &ChainName,
    range: BlockRange,
) -> Result<i64, sqlx::Error> {
    let (covered, quarantined): (i64, i64) = sqlx::query_as(
        "SELECT \
           (SELECT COALESCE(sum(LEAST(end_block, $3) - GREATEST(start_block, $2) + 1), 0)::int8 \
            FROM coverage WHERE chain = $1 AND end_block >= $2 AND start_block <= $3), \
           (SELECT count(*) FROM quarantined_blocks \
            WHERE chain = $1 AND number BETWEEN $2 AND $3 AND released_at IS NULL)",
    )
    .bind(chain.as_str())
    .bind(range.from as i64)
    .bind(range.to as i64)
    .fetch_one(conn)
    .await?;
    Ok(range.len() as i64 - covered - quarantined)
}

/// Takes the transaction-scoped coverage lock of `chain`: batches of the chain add coverage (and
/// a reorg repair unwinds) one transaction at a time, so concurrent merges stay correct.
pub async fn lock(conn: &mut PgConnection, chain: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('blockfill.coverage'), hashtext($1))")
        .bind(chain)
        .execute(conn)
        .await?;
    Ok(())
}
