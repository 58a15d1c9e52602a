//! The write activity: one fetched range into PostgreSQL in one transaction (rows, coverage,
//! batch status).
//!
//! Rows are streamed with `COPY .. FROM STDIN` ([`copy_text`]). Writing a batch twice leaves the
//! same rows: a range whose blocks are all stored (with the same hashes) is skipped, and a range
//! partly stored (by an overlapping batch) has its rows deleted and written again, in the same
//! transaction. Two writers of the same range take turns on a transaction-scoped advisory lock,
//! so the second sees the first's rows. The transaction commits with `synchronous_commit` off:
//! a commit lost in a database crash takes the batch's `done` mark and coverage with it, so the
//! reconciler queues the batch again and nothing is lost or doubled.
//!
//! The index tables are partitioned by block number; [`ensure_partitions`] makes the partitions a
//! range needs before its transaction starts.

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

impl WriteOutcome {
    /// Rows written less rows they replaced.
    fn minus(self, replaced: Self) -> Self {
        Self {
            blocks_inserted: self
                .blocks_inserted
                .saturating_sub(replaced.blocks_inserted),
            transactions_inserted: self
                .transactions_inserted
                .saturating_sub(replaced.transactions_inserted),
            logs_inserted: self.logs_inserted.saturating_sub(replaced.logs_inserted),
        }
    }
}

/// How the fetched blocks fit what is stored.
enum Continuity {
    /// They link to their stored neighbours; `stored` of the range's blocks are already stored,
    /// with the same hashes.
    Linked { stored: u64 },
    /// They do not: the lowest disagreeing block, and what disagrees.
    Reorg { block: u64, detail: String },
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
    let mut connection = pool.acquire().await.map_err(wrap)?;
    ensure_partitions(&mut *connection, range)
        .await
        .map_err(wrap)?;
    let mut tx = sqlx::Connection::begin(&mut *connection)
        .await
        .map_err(wrap)?;
    sqlx::query(
        "SELECT set_config('synchronous_commit', 'off', true), \
                pg_advisory_xact_lock(hashtextextended($1, $2))",
    )
    .bind(chain.as_str())
    .bind(to_i64(range.from))
    .execute(&mut *tx)
    .await
    .map_err(wrap)?;
    let stored = match check_continuity(&mut tx, chain, range, bundle)
        .await
        .map_err(wrap)?
    {
        Continuity::Reorg { block, detail } => {
            return Err(WriteError::Reorg {
                chain: chain.clone(),
                block,
                detail,
            });
        }
        Continuity::Linked { stored } => stored,
    };
    let outcome = if stored >= range.len() {
        // Written before (a re-delivery, or a second run): the same blocks, so the same rows.
        WriteOutcome::default()
    } else {
        let deleted = if stored > 0 {
            delete_rows(&mut tx, chain, range).await.map_err(wrap)?
        } else {
            WriteOutcome::default()
        };
        let copied = copy_rows(&mut tx, chain, bundle).await.map_err(wrap)?;
        copied.minus(deleted)
    };
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

/// Makes sure the partitions of the index tables that will hold `range` exist (the tables are
/// partitioned by block number in fixed spans; see the migration `partitioned_index`). Runs
/// outside the batch's transaction: when a partition is missing, making it locks its parent table
/// only until this statement commits, not for the whole batch. When they exist it is one catalog
/// lookup per table. Returns the partitions made.
pub async fn ensure_partitions<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    range: BlockRange,
) -> Result<i32, sqlx::Error> {
    let (made,): (i32,) = sqlx::query_as("SELECT blockfill_ensure_index_partitions($1, $2)")
        .bind(to_i64(range.from))
        .bind(to_i64(range.to))
        .fetch_one(executor)
        .await?;
    if made > 0 {
        tracing::info!(range = %range, partitions = made, "made index table partitions");
    }
    Ok(made)
}

/// Compares the fetched blocks with what is stored: the block below the range must be the first
/// block's parent, the block above must have the last block as parent, and blocks of the range
/// already stored must have the same hashes.
async fn check_continuity(
    tx: &mut Transaction<'_, Postgres>,
    chain: &ChainName,
    range: BlockRange,
    bundle: &BlockBundle,
) -> Result<Continuity, sqlx::Error> {
    let (Some(first), Some(last)) = (bundle.blocks.first(), bundle.blocks.last()) else {
        return Ok(Continuity::Linked { stored: 0 });
    };
    let reorg = |block: u64, detail: String| Ok(Continuity::Reorg { block, detail });
    let mut stored_in_range = 0;
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
                return reorg(
                    range.from,
                    format!(
                        "block {} has parent {} but the stored block {number} is {hash}",
                        range.from, first.parent_hash
                    ),
                );
            }
        } else if number == range.to + 1 {
            if parent_hash != last.hash {
                return reorg(
                    number,
                    format!(
                        "the stored block {number} has parent {parent_hash} but block {} is {}",
                        range.to, last.hash
                    ),
                );
            }
        } else if let Some(fetched) = bundle.blocks.get((number - range.from) as usize) {
            if fetched.hash != hash {
                return reorg(
                    number,
                    format!(
                        "block {number} is stored as {hash} but the node has {}",
                        fetched.hash
                    ),
                );
            }
            stored_in_range += 1;
        }
    }
    Ok(Continuity::Linked {
        stored: stored_in_range,
    })
}

/// Deletes the rows of `range` (before writing them again); returns how many went.
async fn delete_rows(
    tx: &mut Transaction<'_, Postgres>,
    chain: &ChainName,
    range: BlockRange,
) -> Result<WriteOutcome, sqlx::Error> {
    let (from, to) = (to_i64(range.from), to_i64(range.to));
    let mut deleted = [0; 3];
    for (count, statement) in deleted.iter_mut().zip([
        "DELETE FROM logs WHERE chain = $1 AND block_number BETWEEN $2 AND $3",
        "DELETE FROM transactions WHERE chain = $1 AND block_number BETWEEN $2 AND $3",
        "DELETE FROM blocks WHERE chain = $1 AND number BETWEEN $2 AND $3",
    ]) {
        *count = sqlx::query(statement)
            .bind(chain.as_str())
            .bind(from)
            .bind(to)
            .execute(&mut **tx)
            .await?
            .rows_affected();
    }
    let [logs_inserted, transactions_inserted, blocks_inserted] = deleted;
    Ok(WriteOutcome {
        blocks_inserted,
        transactions_inserted,
        logs_inserted,
    })
}

/// Streams the bundle's rows into the index tables with `COPY`.
async fn copy_rows(
    tx: &mut Transaction<'_, Postgres>,
    chain: &ChainName,
    bundle: &BlockBundle,
) -> Result<WriteOutcome, sqlx::Error> {
    let chain = chain.as_str();
    let blocks_inserted = copy_in(
        tx,
        "blocks",
        copy_text::BLOCK_COLUMNS,
        copy_text::blocks(chain, &bundle.blocks),
    )
    .await?;
    let transactions_inserted = copy_in(
        tx,
        "transactions",
        copy_text::TRANSACTION_COLUMNS,
        copy_text::transactions(chain, &bundle.transactions),
    )
    .await?;
    let logs_inserted = copy_in(
        tx,
        "logs",
        copy_text::LOG_COLUMNS,
        copy_text::logs(chain, &bundle.logs),
    )
    .await?;
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
