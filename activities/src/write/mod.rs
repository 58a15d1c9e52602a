//! The write activity: one fetched range into PostgreSQL in one transaction (rows, coverage,
//! batch status). Rows go in with `INSERT .. SELECT .. FROM UNNEST(..) ON CONFLICT DO NOTHING`, so
//! writing a batch twice leaves the same rows. [`copy_text`] renders rows for `COPY`.

pub mod copy_text;

use sea_orm::sqlx::{self, PgPool, Postgres, Transaction};

use crate::store::{batches, coverage};
use crate::{
    source::BlockBundle,
    types::{BlockRange, ChainName},
};

/// Why a batch could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The fetched blocks do not link to what is stored: the chain reorganised.
    #[error("reorg on chain {chain} at block {block}: {detail}")]
    Reorg {
        /// The chain.
        chain: ChainName,
        /// The lowest block whose stored and fetched versions disagree (or do not link).
        block: u64,
        /// What disagrees.
        detail: String,
    },
    /// PostgreSQL refused or went away; nothing of the batch was committed.
    #[error("writing blocks {range} of chain {chain} failed, nothing was committed: {source}")]
    Database {
        /// The chain written to.
        chain: ChainName,
        /// The range written.
        range: BlockRange,
        /// The database error.
        #[source]
        source: sqlx::Error,
    },
}

/// What a write changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteOutcome {
    /// Block rows inserted (0 when the batch was already written).
    pub blocks_inserted: u64,
    /// Transaction rows inserted.
    pub transactions_inserted: u64,
    /// Log rows inserted.
    pub logs_inserted: u64,
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Writes `bundle` (the blocks of `range`) and marks batch `batch_id` done, in one transaction.
#[tracing::instrument(name = "write", skip(pool, bundle), fields(chain = %chain, range = %range, blocks = tracing::field::Empty, transactions = tracing::field::Empty, logs = tracing::field::Empty))]
pub async fn write_batch(
    pool: &PgPool,
    chain: &ChainName,
    range: BlockRange,
    batch_id: Option<&str>,
    bundle: &BlockBundle,
) -> Result<WriteOutcome, WriteError> {
    let wrap = |source| WriteError::Database {
        chain: chain.clone(),
        range,
        source,
    };
    let mut tx = pool.begin().await.map_err(wrap)?;
    if let Some((block, detail)) = check_continuity(&mut tx, chain, range, bundle)
        .await
        .map_err(wrap)?
    {
        return Err(WriteError::Reorg {
            chain: chain.clone(),
            block,
            detail,
        });
    }
    let outcome = write_rows(&mut tx, chain, bundle).await.map_err(wrap)?;
    add_coverage(&mut tx, chain, range).await.map_err(wrap)?;
    if let Some(batch_id) = batch_id {
        batches::mark_done(&mut tx, batch_id).await.map_err(wrap)?;
    }
    tx.commit().await.map_err(wrap)?;
    let span = tracing::Span::current();
    span.record("blocks", outcome.blocks_inserted);
    span.record("transactions", outcome.transactions_inserted);
    span.record("logs", outcome.logs_inserted);
    Ok(outcome)
}

/// Compares the fetched blocks with what is stored: the block below the range must be the first
/// block's parent, the block above must have the last block as parent, and blocks of the range
/// already stored must have the same hashes. Returns the lowest disagreeing block, if any.
async fn check_continuity(
    tx: &mut Transaction<'_, Postgres>,
    chain: &ChainName,
    range: BlockRange,
    bundle: &BlockBundle,
) -> Result<Option<(u64, String)>, sqlx::Error> {
    let (Some(first), Some(last)) = (bundle.blocks.first(), bundle.blocks.last()) else {
        return Ok(None);
    };
    let stored: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT number, hash, parent_hash FROM blocks \
         WHERE chain = $1 AND number BETWEEN $2 AND $3 ORDER BY number",
    )
    .bind(chain.as_str())
    .bind(to_i64(range.from).saturating_sub(1))
    .bind(to_i64(range.to).saturating_add(1))
    .fetch_all(&mut **tx)
    .await?;
    for (number, hash, parent_hash) in stored {
        let number = number as u64;
        if number + 1 == range.from {
            if hash != first.parent_hash {
                return Ok(Some((
                    range.from,
                    format!(
                        "block {} has parent {} but the stored block {number} is {hash}",
                        range.from, first.parent_hash
                    ),
                )));
            }
        } else if number == range.to + 1 {
            if parent_hash != last.hash {
                return Ok(Some((
                    number,
                    format!(
                        "the stored block {number} has parent {parent_hash} but block {} is {}",
                        range.to, last.hash
                    ),
                )));
            }
        } else if let Some(fetched) = bundle.blocks.get((number - range.from) as usize)
            && fetched.hash != hash
        {
            return Ok(Some((
                number,
                format!(
                    "block {number} is stored as {hash} but the node has {}",
                    fetched.hash
                ),
            )));
        }
    }
    Ok(None)
}

async fn write_rows(
    tx: &mut Transaction<'_, Postgres>,
    chain: &ChainName,
    bundle: &BlockBundle,
) -> Result<WriteOutcome, sqlx::Error> {
    let blocks = &bundle.blocks;
    let blocks_inserted = sqlx::query(
        "INSERT INTO blocks (chain, number, hash, parent_hash, timestamp, miner, gas_used, gas_limit, \
           base_fee_per_gas, tx_count, log_count) \
         SELECT $1, * FROM UNNEST($2::int8[], $3::text[], $4::text[], $5::int8[], $6::text[], \
           $7::int8[], $8::int8[], $9::numeric[], $10::int4[], $11::int4[]) \
         ON CONFLICT DO NOTHING",
    )
    .bind(chain.as_str())
    .bind(blocks.iter().map(|b| to_i64(b.number)).collect::<Vec<_>>())
    .bind(blocks.iter().map(|b| b.hash.as_str()).collect::<Vec<_>>())
    .bind(blocks.iter().map(|b| b.parent_hash.as_str()).collect::<Vec<_>>())
    .bind(blocks.iter().map(|b| to_i64(b.timestamp)).collect::<Vec<_>>())
    .bind(blocks.iter().map(|b| b.miner.as_str()).collect::<Vec<_>>())
    .bind(blocks.iter().map(|b| to_i64(b.gas_used)).collect::<Vec<_>>())
    .bind(blocks.iter().map(|b| to_i64(b.gas_limit)).collect::<Vec<_>>())
    .bind(blocks.iter().map(|b| b.base_fee_per_gas.as_deref()).collect::<Vec<_>>())
    .bind(blocks.iter().map(|b| b.tx_count as i32).collect::<Vec<_>>())
    .bind(blocks.iter().map(|b| b.log_count as i32).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?
    .rows_affected();

    let txs = &bundle.transactions;
    let transactions_inserted = if txs.is_empty() {
        0
    } else {
        sqlx::query(
            "INSERT INTO transactions (chain, block_number, tx_index, hash, from_address, to_address, \
               value, nonce, gas, gas_price, input, tx_type) \
             SELECT $1, * FROM UNNEST($2::int8[], $3::int4[], $4::text[], $5::text[], $6::text[], \
               $7::numeric[], $8::int8[], $9::int8[], $10::numeric[], $11::text[], $12::int8[]) \
             ON CONFLICT DO NOTHING",
        )
        .bind(chain.as_str())
        .bind(txs.iter().map(|t| to_i64(t.block_number)).collect::<Vec<_>>())
        .bind(txs.iter().map(|t| t.tx_index as i32).collect::<Vec<_>>())
        .bind(txs.iter().map(|t| t.hash.as_str()).collect::<Vec<_>>())
        .bind(txs.iter().map(|t| t.from_address.as_str()).collect::<Vec<_>>())
        .bind(txs.iter().map(|t| t.to_address.as_deref()).collect::<Vec<_>>())
        .bind(txs.iter().map(|t| t.value.as_str()).collect::<Vec<_>>())
        .bind(txs.iter().map(|t| to_i64(t.nonce)).collect::<Vec<_>>())
        .bind(txs.iter().map(|t| to_i64(t.gas)).collect::<Vec<_>>())
        .bind(txs.iter().map(|t| t.gas_price.as_deref()).collect::<Vec<_>>())
        .bind(txs.iter().map(|t| t.input.as_str()).collect::<Vec<_>>())
        .bind(txs.iter().map(|t| t.tx_type.map(to_i64)).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?
        .rows_affected()
    };

    let logs = &bundle.logs;
    let logs_inserted = if logs.is_empty() {
        0
    } else {
        // UNNEST flattens nested arrays, so topics travel as one comma-joined string per log.
        sqlx::query(
            "INSERT INTO logs (chain, block_number, log_index, tx_index, tx_hash, address, topics, data) \
             SELECT $1, n, li, ti, h, a, string_to_array(t, ','), d \
             FROM UNNEST($2::int8[], $3::int4[], $4::int4[], $5::text[], $6::text[], $7::text[], $8::text[]) \
               AS l(n, li, ti, h, a, t, d) \
             ON CONFLICT DO NOTHING",
        )
        .bind(chain.as_str())
        .bind(logs.iter().map(|l| to_i64(l.block_number)).collect::<Vec<_>>())
        .bind(logs.iter().map(|l| l.log_index as i32).collect::<Vec<_>>())
        .bind(logs.iter().map(|l| l.tx_index as i32).collect::<Vec<_>>())
        .bind(logs.iter().map(|l| l.tx_hash.as_str()).collect::<Vec<_>>())
        .bind(logs.iter().map(|l| l.address.as_str()).collect::<Vec<_>>())
        .bind(logs.iter().map(|l| l.topics.join(",")).collect::<Vec<_>>())
        .bind(logs.iter().map(|l| l.data.as_str()).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?
        .rows_affected()
    };
    Ok(WriteOutcome {
        blocks_inserted,
        transactions_inserted,
        logs_inserted,
    })
}

/// `COPY table (columns) FROM STDIN` with `rows` in the text format; returns the rows copied.
pub async fn copy_in(
    connection: &mut sqlx::PgConnection,
    table: &str,
    columns: &str,
    rows: Vec<u8>,
) -> Result<u64, sqlx::Error> {
    if rows.is_empty() {
        return Ok(0);
    }
    let mut copy = connection
        .copy_in_raw(&format!("COPY {table} ({columns}) FROM STDIN"))
        .await?;
    copy.send(rows).await?;
    copy.finish().await
}

/// Adds `range` to the chain's coverage ledger, merging it with overlapping and adjacent intervals.
/// Serialised per chain by a transaction-scoped advisory lock taken at the end of the write, so
/// concurrent batches merge correctly and hold the lock only until they commit.
pub async fn add_coverage(
    tx: &mut Transaction<'_, Postgres>,
    chain: &ChainName,
    range: BlockRange,
) -> Result<(), sqlx::Error> {
    coverage::lock(tx, chain.as_str()).await?;
    let (from, to) = (to_i64(range.from), to_i64(range.to));
    let absorbed: (Option<i64>, Option<i64>) = sqlx::query_as(
        "WITH absorbed AS ( \
           DELETE FROM coverage WHERE chain = $1 AND start_block <= $3 + 1 AND end_block >= $2 - 1 \
           RETURNING start_block, end_block) \
         SELECT MIN(start_block), MAX(end_block) FROM absorbed",
    )
    .bind(chain.as_str())
    .bind(from)
    .bind(to)
    .fetch_one(&mut **tx)
    .await?;
    let start = absorbed.0.map_or(from, |s| s.min(from));
    let end = absorbed.1.map_or(to, |e| e.max(to));
    sqlx::query("INSERT INTO coverage (chain, start_block, end_block) VALUES ($1, $2, $3)")
        .bind(chain.as_str())
        .bind(start)
        .bind(end)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
