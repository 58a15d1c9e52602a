//! The `chains` table: registered chains, their recorded head, live-sync halts, the settings an
//! operator changes ([`change_settings`]) and those a reorg repair reads. The live lane's cursor
//! is in [`super::live_lane`].

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, DatabaseConnection, DbErr, EntityTrait, IntoActiveModel, QueryOrder,
    QuerySelect, Set, SqlErr, TransactionTrait,
    sqlx::{self, PgPool},
};
use uuid::Uuid;

use crate::{entity::chains, types::ChainName};

/// The chain named `name`, if registered.
pub async fn find(db: &DatabaseConnection, name: &str) -> Result<Option<chains::Model>, DbErr> {
    chains::Entity::find_by_id(name.to_owned()).one(db).await
}

/// Every registered chain, by name.
pub async fn all(db: &DatabaseConnection) -> Result<Vec<chains::Model>, DbErr> {
    chains::Entity::find()
        .order_by_asc(chains::Column::Name)
        .all(db)
        .await
}

/// Whether a chain named `name` is registered (reads its primary key only).
pub async fn exists(pool: &PgPool, name: &str) -> Result<bool, sqlx::Error> {
    let found: Option<(String,)> = sqlx::query_as("SELECT name FROM chains WHERE name = $1")
        .bind(name)
        .fetch_optional(pool)
        .await?;
    Ok(found.is_some())
}

/// The names of every registered chain.
pub async fn names(pool: &PgPool) -> Result<Vec<ChainName>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as("SELECT name FROM chains ORDER BY name")
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(name,)| ChainName::parse(&name).ok())
        .collect())
}

/// A chain to register: what the API validated and the endpoints answered.
#[derive(Debug, Clone)]
pub struct NewChain {
    /// Name used in URLs and batch ids.
    pub name: String,
    /// Chain id the endpoints reported.
    pub chain_id: i64,
    /// The `rpc_urls` entries as stored (URL strings or `{url, rps?, max_concurrency?}`).
    pub rpc_urls: serde_json::Value,
    /// First block to cover.
    pub start_block: i64,
    /// Confirmation depth.
    pub confirmations: i64,
    /// Blocks per batch.
    pub batch_size: i32,
    /// Fewest workers.
    pub min_workers: i32,
    /// Most workers.
    pub max_workers: i32,
    /// Head of the first endpoint that answered, if any.
    pub head_block: Option<i64>,
    /// Whether the live lane follows the head.
    pub live_sync: bool,
    /// Hash of block 0 every endpoint must serve.
    pub genesis_hash: String,
    /// Deepest reorg repaired automatically.
    pub max_reorg_depth: i64,
}

/// Inserts `chain` (live sync not halted, no live cursor or live backfill yet) and returns its
/// row; `None` when a chain of that name exists (the primary key settles concurrent
/// registrations).
pub async fn register(
    db: &DatabaseConnection,
    chain: NewChain,
) -> Result<Option<chains::Model>, DbErr> {
    let now = Utc::now();
    let inserted = chains::ActiveModel {
        name: Set(chain.name),
        chain_id: Set(Some(chain.chain_id)),
        rpc_urls: Set(chain.rpc_urls),
        start_block: Set(chain.start_block),
        confirmations: Set(chain.confirmations),
        batch_size: Set(chain.batch_size),
        min_workers: Set(chain.min_workers),
        max_workers: Set(chain.max_workers),
        head_block: Set(chain.head_block),
        head_updated_at: Set(Some(now.into())),
        created_at: Set(now.into()),
        updated_at: Set(now.into()),
        live_sync: Set(chain.live_sync),
        live_cursor: Set(None),
        live_backfill_id: Set(None),
        genesis_hash: Set(Some(chain.genesis_hash)),
        max_reorg_depth: Set(chain.max_reorg_depth),
        live_halted: Set(false),
        live_halted_reason: Set(None),
        live_halted_at: Set(None),
    }
    .insert(db)
    .await;
    match inserted {
        Ok(row) => Ok(Some(row)),
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Settings an operator changes after registration; `None` keeps the stored value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SettingsChange {
    /// The `rpc_urls` entries as stored (URL strings or `{url, rps?, max_concurrency?}`).
    pub rpc_urls: Option<serde_json::Value>,
    /// Confirmation depth.
    pub confirmations: Option<i64>,
    /// Blocks per batch.
    pub batch_size: Option<i32>,
    /// Fewest workers.
    pub min_workers: Option<i32>,
    /// Most workers.
    pub max_workers: Option<i32>,
    /// Whether the live lane follows the head.
    pub live_sync: Option<bool>,
    /// Deepest reorg repaired automatically.
    pub max_reorg_depth: Option<i64>,
}

/// How [`change_settings`] ended.
#[derive(Debug)]
pub enum SettingsChanged<E> {
    /// No chain of that name.
    NotFound,
    /// The check refused the change against the stored row; nothing changed.
    Refused(E),
    /// The row before and after the change.
    Changed {
        /// As it was.
        before: Box<chains::Model>,
        /// As it is now.
        after: Box<chains::Model>,
    },
}

/// Applies `change` to the chain named `name` if `check` accepts it against the stored row.
/// The row is locked from the check to the commit, so checks across fields (`min_workers` not
/// above `max_workers`, one of them stored) hold against concurrent changes.
pub async fn change_settings<E>(
    db: &DatabaseConnection,
    name: &str,
    change: &SettingsChange,
    check: impl FnOnce(&chains::Model) -> Result<(), E>,
) -> Result<SettingsChanged<E>, DbErr> {
    let tx = db.begin().await?;
    let Some(before) = chains::Entity::find_by_id(name.to_owned())
        .lock_exclusive()
        .one(&tx)
        .await?
    else {
        return Ok(SettingsChanged::NotFound);
    };
    if let Err(refused) = check(&before) {
        tx.rollback().await?;
        return Ok(SettingsChanged::Refused(refused));
    }
    let mut row = before.clone().into_active_model();
    if let Some(rpc_urls) = &change.rpc_urls {
        row.rpc_urls = Set(rpc_urls.clone());
    }
    if let Some(confirmations) = change.confirmations {
        row.confirmations = Set(confirmations);
    }
    if let Some(batch_size) = change.batch_size {
        row.batch_size = Set(batch_size);
    }
    if let Some(min_workers) = change.min_workers {
        row.min_workers = Set(min_workers);
    }
    if let Some(max_workers) = change.max_workers {
        row.max_workers = Set(max_workers);
    }
    if let Some(live_sync) = change.live_sync {
        row.live_sync = Set(live_sync);
    }
    if let Some(max_reorg_depth) = change.max_reorg_depth {
        row.max_reorg_depth = Set(max_reorg_depth);
    }
    row.updated_at = Set(Utc::now().into());
    let after = row.update(&tx).await?;
    tx.commit().await?;
    Ok(SettingsChanged::Changed {
        before: Box::new(before),
        after: Box::new(after),
    })
}

/// The stored endpoints of the chain named `name` (`None`: not registered); reads only its
/// `rpc_urls`.
pub async fn endpoints(
    pool: &PgPool,
    name: &str,
) -> Result<Option<Vec<crate::source::EndpointConfig>>, sqlx::Error> {
    let row: Option<(serde_json::Value,)> =
        sqlx::query_as("SELECT rpc_urls FROM chains WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(rpc_urls,)| chains::endpoints_of(&rpc_urls)))
}

/// Records `head` as the chain's newest head, read now.
pub async fn record_head(pool: &PgPool, name: &str, head: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE chains SET head_block = $2, head_updated_at = now() WHERE name = $1")
        .bind(name)
        .bind(head)
        .execute(pool)
        .await?;
    Ok(())
}

/// Raises `name`'s recorded head to `head` (never lowers it: a read outside the head tracker
/// must not move the head back); returns the recorded head afterwards.
pub async fn raise_head(pool: &PgPool, name: &str, head: i64) -> Result<Option<i64>, sqlx::Error> {
    let recorded: Option<(Option<i64>,)> = sqlx::query_as(
        "UPDATE chains SET head_block = GREATEST(head_block, $2), \
         head_updated_at = CASE WHEN head_block IS NULL OR head_block < $2 THEN now() ELSE head_updated_at END \
         WHERE name = $1 RETURNING head_block",
    )
    .bind(name)
    .bind(head)
    .fetch_optional(pool)
    .await?;
    Ok(recorded.and_then(|(h,)| h))
}

/// Halts live sync of the chain for an operator, with `reason`; a chain already halted keeps its
/// first reason and time. Returns whether this call halted it.
pub async fn halt_live_sync(pool: &PgPool, name: &str, reason: &str) -> Result<bool, sqlx::Error> {
    let halted = sqlx::query(
        "UPDATE chains SET live_halted = true, live_halted_reason = $2, live_halted_at = now() \
         WHERE name = $1 AND NOT live_halted",
    )
    .bind(name)
    .bind(reason)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(halted > 0)
}

/// An operator resumes live sync of the chain (clearing the halt and its reason), setting its
/// reorg depth limit to `max_reorg_depth` when given. Returns whether the chain exists.
pub async fn resume_live_sync(
    pool: &PgPool,
    name: &str,
    max_reorg_depth: Option<i64>,
) -> Result<bool, sqlx::Error> {
    let resumed = sqlx::query(
        "UPDATE chains SET live_halted = false, live_halted_reason = NULL, live_halted_at = NULL, \
           max_reorg_depth = COALESCE($2, max_reorg_depth), updated_at = now() \
         WHERE name = $1",
    )
    .bind(name)
    .bind(max_reorg_depth)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(resumed > 0)
}

/// What a reorg repair reads of its chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairSettings {
    /// Deepest reorg repaired automatically.
    pub max_reorg_depth: i64,
    /// Whether live sync is halted (then nothing is repaired).
    pub live_halted: bool,
    /// Why it is halted.
    pub live_halted_reason: Option<String>,
    /// Blocks per batch of the re-index.
    pub batch_size: i32,
}

/// The repair settings of the chain named `name`, if registered.
pub async fn repair_settings(
    pool: &PgPool,
    name: &str,
) -> Result<Option<RepairSettings>, sqlx::Error> {
    let row: Option<(i64, bool, Option<String>, i32)> = sqlx::query_as(
        "SELECT max_reorg_depth, live_halted, live_halted_reason, batch_size FROM chains \
         WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(
        |(max_reorg_depth, live_halted, live_halted_reason, batch_size)| RepairSettings {
            max_reorg_depth,
            live_halted,
            live_halted_reason,
            batch_size,
        },
    ))
}

/// Links the chain to its `live` backfill. Runs in the caller's (fenced) transaction, the one
/// that inserts that backfill.
pub async fn set_live_backfill(
    conn: &mut sqlx::PgConnection,
    name: &str,
    backfill_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE chains SET live_backfill_id = $2 WHERE name = $1")
        .bind(name)
        .bind(backfill_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Registers chain `name` on one RPC URL, or re-points it (the demo and benchmarks, which
/// register directly rather than through the API).
pub async fn upsert(
    pool: &PgPool,
    name: &str,
    rpc_url: &str,
    chain_id: u64,
    batch_size: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO chains (name, chain_id, rpc_urls, batch_size) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name) DO UPDATE SET rpc_urls = EXCLUDED.rpc_urls, chain_id = EXCLUDED.chain_id, \
           batch_size = EXCLUDED.batch_size, updated_at = now()",
    )
    .bind(name)
    .bind(chain_id as i64)
    .bind(serde_json::json!([rpc_url]))
    .bind(batch_size)
    .execute(pool)
    .await?;
    Ok(())
}

/// Sets `name`'s fleet bounds (the tools' chains; operators use `PATCH /v1/chains/{name}`).
pub async fn set_fleet_bounds(
    pool: &PgPool,
    name: &str,
    min_workers: u32,
    max_workers: u32,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE chains SET min_workers = $2, max_workers = $3 WHERE name = $1")
        .bind(name)
        .bind(i32::try_from(min_workers).unwrap_or(i32::MAX))
        .bind(i32::try_from(max_workers.max(min_workers)).unwrap_or(i32::MAX))
        .execute(pool)
        .await?;
    Ok(())
}
