//! Fresh stores per test (a PostgreSQL database and a Redis key prefix) and [`TestStores`], the
//! guard that drops them when the test ends, also when it panics.
//!
//! A test's stores are named `bf_test_<16 hex>` (database) and `bf-test-<uuid>` (Redis prefix).
//! The orderly path is [`TestStores::drop_now`] (or [`drop_stores`]) after everything using them
//! stopped; if a test never gets there (a panic, an early return), dropping the guard does the
//! same with blocking calls on a thread of its own, so it works inside a tokio runtime (a test
//! body unwinding) as well as outside one. `BLOCKFILL_TEST_KEEP=1` keeps both for debugging and
//! prints their names.

use std::{
    collections::BTreeSet,
    ops::{Deref, DerefMut},
    sync::{Mutex, PoisonError},
    time::Duration,
};

use blockfill_activities::settings::StoreArgs;
use sea_orm::sqlx::{self, Connection as _};
use uuid::Uuid;

/// Environment variable that keeps every test's database and Redis keys (`1`).
pub const KEEP_ENV: &str = "BLOCKFILL_TEST_KEEP";

/// How long one cleanup may take before it gives up (and says so on stderr).
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(30);
/// At most this many scans for keys that keep coming back.
const SCAN_PASSES: usize = 20;
/// Keys removed per `UNLINK`.
const UNLINK_CHUNK: usize = 500;

/// Base PostgreSQL URL (without database) and Redis URL used by tests.
pub fn base_urls() -> (String, String) {
    (
        std::env::var("BLOCKFILL_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into()),
        std::env::var("BLOCKFILL_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
    )
}

/// A fresh database name and Redis prefix, unique to one test, dropped with the returned guard.
/// The database itself is created by whatever starts first on it (the orchestrator does).
pub fn fresh_stores() -> TestStores {
    let id = Uuid::now_v7().simple().to_string();
    let (postgres, redis) = base_urls();
    TestStores {
        args: StoreArgs {
            database_url: format!("{postgres}/bf_test_{}", &id[id.len() - 16..]),
            redis_url: redis,
            redis_prefix: format!("bf-test-{id}"),
        },
        armed: true,
    }
}

/// One test's stores: reads as the [`StoreArgs`] it wraps; dropping it drops the database
/// (`DROP DATABASE … WITH (FORCE)`) and deletes every Redis key under the prefix, unless that
/// was done already or `BLOCKFILL_TEST_KEEP=1`.
#[derive(Debug)]
pub struct TestStores {
    args: StoreArgs,
    armed: bool,
}

impl Deref for TestStores {
    type Target = StoreArgs;

    fn deref(&self) -> &StoreArgs {
        &self.args
    }
}

impl DerefMut for TestStores {
    fn deref_mut(&mut self) -> &mut StoreArgs {
        &mut self.args
    }
}

impl TestStores {
    /// Drops the database and the Redis keys now (the orderly end of a test, once nothing uses
    /// them any more); the guard then has nothing left to do.
    pub async fn drop_now(&mut self) {
        drop_stores(&self.args).await;
        self.armed = false;
    }
}

impl Drop for TestStores {
    fn drop(&mut self) {
        if !self.armed || already_dropped(&self.args) {
            return;
        }
        if keep_requested(&self.args) {
            return;
        }
        let args = self.args.clone();
        // A thread with its own runtime: `Drop` may run on a runtime's thread (where blocking
        // on another future panics) or on none.
        let cleanup = std::thread::Builder::new()
            .name("bf-test-cleanup".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                runtime.block_on(cleanup(&args))
            });
        let outcome = match cleanup {
            Ok(thread) => thread
                .join()
                .unwrap_or_else(|_| Err("the cleanup thread panicked".into())),
            Err(e) => Err(format!("cannot start the cleanup thread: {e}")),
        };
        if let Err(e) = outcome {
            eprintln!(
                "test stores {} / {}* not cleaned up: {e}",
                self.args.database_url, self.args.redis_prefix
            );
        }
    }
}

/// Drops a test's database and Redis keys (or keeps them, printed, with `BLOCKFILL_TEST_KEEP=1`).
/// Call it once nothing uses them any more.
pub async fn drop_stores(stores: &StoreArgs) {
    if keep_requested(stores) {
        return;
    }
    match cleanup(stores).await {
        Ok(()) => {
            DROPPED
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(stores.database_url.clone());
        }
        Err(e) => eprintln!(
            "test stores {} / {}* not cleaned up: {e}",
            stores.database_url, stores.redis_prefix
        ),
    }
}

/// Databases [`drop_stores`] dropped already (tests that call it on a guard's arguments).
static DROPPED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

fn already_dropped(stores: &StoreArgs) -> bool {
    DROPPED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .contains(&stores.database_url)
}

/// Whether `BLOCKFILL_TEST_KEEP=1`; if so, says what is kept.
fn keep_requested(stores: &StoreArgs) -> bool {
    let keep = std::env::var(KEEP_ENV).is_ok_and(|v| v == "1");
    if keep {
        eprintln!(
            "{KEEP_ENV}=1: keeping database {} and Redis keys {}* on {}",
            stores.database_url, stores.redis_prefix, stores.redis_url
        );
    }
    keep
}

/// The database name and the URL of the `postgres` database on the same server.
fn database_and_admin_url(database_url: &str) -> Result<(String, String), String> {
    let (server, name) = database_url
        .rsplit_once('/')
        .ok_or_else(|| format!("no database in {database_url}"))?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("unexpected database name {name:?}"));
    }
    Ok((name.to_owned(), format!("{server}/postgres")))
}

/// Drops the database, then deletes the keys.
async fn cleanup(stores: &StoreArgs) -> Result<(), String> {
    let work = async {
        let database = drop_database(&stores.database_url).await;
        let keys = delete_keys(stores).await;
        database.and(keys)
    };
    tokio::time::timeout(CLEANUP_TIMEOUT, work)
        .await
        .map_err(|_| format!("cleanup took more than {CLEANUP_TIMEOUT:?}"))?
}

async fn drop_database(database_url: &str) -> Result<(), String> {
    let (name, admin_url) = database_and_admin_url(database_url)?;
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .map_err(|e| format!("connecting to {admin_url}: {e}"))?;
    let dropped = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .map(|_| ())
    .map_err(|e| format!("dropping database {name}: {e}"));
    admin.close().await.ok();
    dropped
}

/// The `SCAN MATCH` pattern of every key under `prefix` (glob characters escaped).
fn key_pattern(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('*');
    pattern
}

/// Deletes every key under the prefix. Something may still be writing (a worker's last
/// heartbeat; after a panic nothing was stopped gracefully), so it scans again until two scans
/// in a row, 150 ms apart, find nothing (at most 20 passes).
async fn delete_keys(stores: &StoreArgs) -> Result<(), String> {
    let client = redis::Client::open(stores.redis_url.as_str()).map_err(|e| e.to_string())?;
    let mut conn = tokio::time::timeout(
        Duration::from_secs(5),
        client.get_multiplexed_async_connection(),
    )
    .await
    .map_err(|_| format!("connecting to {}: timed out", stores.redis_url))?
    .map_err(|e| format!("connecting to {}: {e}", stores.redis_url))?;
    let pattern = key_pattern(&stores.redis_prefix);
    let mut quiet = 0;
    for pass in 0..SCAN_PASSES {
        if pass > 0 {
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        let keys = scan(&mut conn, &pattern).await?;
        for chunk in keys.chunks(UNLINK_CHUNK) {
            redis::cmd("UNLINK")
                .arg(chunk)
                .query_async::<()>(&mut conn)
                .await
                .map_err(|e| format!("UNLINK: {e}"))?;
        }
        if keys.is_empty() {
            quiet += 1;
            if quiet >= 2 {
                return Ok(());
            }
        } else {
            quiet = 0;
        }
    }
    let left = scan(&mut conn, &pattern).await?;
    if left.is_empty() {
        Ok(())
    } else {
        let some: Vec<&String> = left.iter().take(5).collect();
        Err(format!(
            "{} keys keep coming back, such as {some:?}",
            left.len()
        ))
    }
}

/// Every key matching `pattern` (a full `SCAN` cursor walk).
pub(crate) async fn scan(
    conn: &mut redis::aio::MultiplexedConnection,
    pattern: &str,
) -> Result<Vec<String>, String> {
    let mut keys = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1_000)
            .query_async(conn)
            .await
            .map_err(|e| format!("SCAN: {e}"))?;
        keys.extend(batch);
        if next == 0 {
            return Ok(keys);
        }
        cursor = next;
    }
}

/// Whether the database of `stores` exists, and how many Redis keys its prefix has (for tests of
/// the cleanup itself).
pub async fn stores_left(stores: &StoreArgs) -> anyhow::Result<(bool, usize)> {
    let (name, admin_url) =
        database_and_admin_url(&stores.database_url).map_err(anyhow::Error::msg)?;
    let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
    let (exists,): (bool,) =
        sqlx::query_as("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
    admin.close().await.ok();
    let client = redis::Client::open(stores.redis_url.as_str())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let keys = scan(&mut conn, &key_pattern(&stores.redis_prefix))
        .await
        .map_err(anyhow::Error::msg)?;
    Ok((exists, keys.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_patterns_escape_glob_characters() {
        assert_eq!(key_pattern("bf-test-01ab"), "bf-test-01ab*");
        assert_eq!(key_pattern("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\*");
    }

    #[test]
    fn the_admin_url_is_on_the_same_server() {
        assert_eq!(
            database_and_admin_url("postgres://postgres@127.0.0.1:5432/bf_test_00ff"),
            Ok((
                "bf_test_00ff".to_owned(),
                "postgres://postgres@127.0.0.1:5432/postgres".to_owned()
            ))
        );
        assert!(database_and_admin_url("postgres://h/x;drop").is_err());
    }
}
