//! Reads of the stored chain (`blocks`) that reorg detection and repair compare with the node:
//! the stored tip and bounds, hashes of a range, and the first broken parent link; and the
//! recent density (rows a block) the scheduler sizes batches by. The rows are
//! written by the bulk write path ([`crate::write`]) and unwound by [`super::repair`].

use sea_orm::sqlx::{self, PgPool, postgres::PgExecutor};

/// The highest stored block of `chain`. Runs on a pool or in the caller's transaction (a repair
/// reads it again under the chain's coverage lock).
pub async fn tip<'e>(db: impl PgExecutor<'e>, chain: &str) -> Result<Option<i64>, sqlx::Error> {
    let (top,): (Option<i64>,) = sqlx::query_as("SELECT MAX(number) FROM blocks WHERE chain = $1")
        .bind(chain)
        .fetch_one(db)
        .await?;
    Ok(top)
}

/// The lowest and highest stored blocks of `chain`.
pub async fn bounds(pool: &PgPool, chain: &str) -> Result<(Option<i64>, Option<i64>), sqlx::Error> {
    sqlx::query_as("SELECT MIN(number), MAX(number) FROM blocks WHERE chain = $1")
        .bind(chain)
        .fetch_one(pool)
        .await
}

/// `(number, hash)` of the stored blocks of `chain` in `[from, to]`, lowest first. Runs on a pool
/// or in the caller's transaction.
pub async fn hashes<'e>(
    db: impl PgExecutor<'e>,
    chain: &str,
    from: i64,
    to: i64,
) -> Result<Vec<(i64, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT number, hash FROM blocks WHERE chain = $1 AND number BETWEEN $2 AND $3 \
         ORDER BY number",
    )
    .bind(chain)
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await
}

/// `(number, hash)` of every stored block of `chain` above `above`, lowest first.
pub async fn hashes_above(
    pool: &PgPool,
    chain: &str,
    above: i64,
) -> Result<Vec<(i64, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT number, hash FROM blocks WHERE chain = $1 AND number > $2 ORDER BY number",
    )
    .bind(chain)
    .bind(above)
    .fetch_all(pool)
    .await
}

/// The lowest stored block of `chain` above `above` whose parent hash is not the hash of the
/// stored block below it (both stored).
pub async fn first_broken_link(
    pool: &PgPool,
    chain: &str,
    above: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let broken: Option<(i64,)> = sqlx::query_as(
        "SELECT b.number FROM blocks b JOIN blocks p ON p.chain = b.chain AND p.number = b.number - 1 \
         WHERE b.chain = $1 AND b.number > $2 AND b.parent_hash <> p.hash ORDER BY b.number LIMIT 1",
    )
    .bind(chain)
    .bind(above)
    .fetch_optional(pool)
    .await?;
    Ok(broken.map(|(n,)| n))
}

/// Blocks [`rows_per_block`] averages over.
const DENSITY_SAMPLE: i64 = 1_000;

/// Rows a block of `chain` wrote (itself, its transactions and its logs), averaged over the
/// highest [`DENSITY_SAMPLE`] stored blocks below `below`; `None` when none is stored.
pub async fn rows_per_block(
    pool: &PgPool,
    chain: &str,
    below: i64,
) -> Result<Option<f64>, sqlx::Error> {
    let (rows,): (Option<f64>,) = sqlx::query_as(
        "SELECT avg(1 + tx_count + log_count)::float8 FROM ( \
           SELECT tx_count, log_count FROM blocks WHERE chain = $1 AND number < $2 \
           ORDER BY number DESC LIMIT $3) recent",
    )
    .bind(chain)
    .bind(below)
    .bind(DENSITY_SAMPLE)
    .fetch_one(pool)
    .await?;
    Ok(rows)
}
