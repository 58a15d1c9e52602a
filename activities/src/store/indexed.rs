//! Reads of the index tables (`blocks`, `transactions`, `logs`) as `blockfill verify` compares
//! them with a node, and the footprint of the control tables per indexed block.

use std::collections::BTreeMap;

use sea_orm::sqlx::{self, PgPool};

use crate::types::{BlockRange, ChainName};

/// A stored block as verify compares it: hash, parent hash, transaction and log counts.
pub type StoredBlock = (String, String, i32, i32);

/// The stored blocks of `range`, by number.
pub async fn blocks(
    pool: &PgPool,
    chain: &ChainName,
    range: BlockRange,
) -> Result<BTreeMap<i64, StoredBlock>, sqlx::Error> {
    let rows: Vec<(i64, String, String, i32, i32)> = sqlx::query_as(
        "SELECT number, hash, parent_hash, tx_count, log_count FROM blocks \
         WHERE chain = $1 AND number BETWEEN $2 AND $3",
    )
    .bind(chain.as_str())
    .bind(range.from as i64)
    .bind(range.to as i64)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(n, h, p, t, l)| (n, (h, p, t, l)))
        .collect())
}

/// The stored transaction hashes of `range`, by (block, index).
pub async fn transactions(
    pool: &PgPool,
    chain: &ChainName,
    range: BlockRange,
) -> Result<BTreeMap<(i64, i32), String>, sqlx::Error> {
    let rows: Vec<(i64, i32, String)> = sqlx::query_as(
        "SELECT block_number, tx_index, hash FROM transactions \
         WHERE chain = $1 AND block_number BETWEEN $2 AND $3",
    )
    .bind(chain.as_str())
    .bind(range.from as i64)
    .bind(range.to as i64)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(b, i, h)| ((b, i), h)).collect())
}

/// The stored logs of `range` (transaction hash, address), by (block, log index).
pub async fn logs(
    pool: &PgPool,
    chain: &ChainName,
    range: BlockRange,
) -> Result<BTreeMap<(i64, i32), (String, String)>, sqlx::Error> {
    let rows: Vec<(i64, i32, String, String)> = sqlx::query_as(
        "SELECT block_number, log_index, tx_hash, address FROM logs \
         WHERE chain = $1 AND block_number BETWEEN $2 AND $3",
    )
    .bind(chain.as_str())
    .bind(range.from as i64)
    .bind(range.to as i64)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(b, i, t, a)| ((b, i), (t, a)))
        .collect())
}

/// Batch rows, and control rows (batches, backfills, checkpoints) per indexed block.
pub async fn control_rows_per_block(pool: &PgPool) -> Result<(i64, f64), sqlx::Error> {
    let (batches, control, blocks): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM batches), \
                (SELECT count(*) FROM batches) + (SELECT count(*) FROM backfills) \
                  + (SELECT count(*) FROM scheduler_checkpoints), \
                (SELECT count(*) FROM blocks)",
    )
    .fetch_one(pool)
    .await?;
    Ok((batches, control as f64 / blocks.max(1) as f64))
}
