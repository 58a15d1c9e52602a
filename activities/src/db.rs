//! Connecting to PostgreSQL with errors an operator can act on.

use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr};

/// Why PostgreSQL could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DbSetupError {
    /// The URL does not parse.
    #[error("invalid DATABASE_URL {url}: expected postgres://user@host:port/database")]
    InvalidUrl {
        /// The URL, password masked.
        url: String,
    },
    /// Nothing answered or the login failed.
    #[error(
        "cannot reach PostgreSQL at {url}: {source}. Start it (scripts/services.sh, or \
         `pg_ctlcluster --skip-systemctl-redirect 15 main start`) or set DATABASE_URL"
    )]
    Unreachable {
        /// The URL, password masked.
        url: String,
        /// The driver error.
        #[source]
        source: DbErr,
    },
}

/// The one URL redaction, also under its old path (`db::redact_url`).
pub use crate::redact::redact_url;

/// Connects to `url` with a pool of `max_connections`.
pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbSetupError> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false);
    Database::connect(options)
        .await
        .map_err(|source| DbSetupError::Unreachable {
            url: redact_url(url),
            source,
        })
}

/// Drops database `name` on the server of `server_url` (connecting to `postgres` to do so), even
/// with sessions still open: for throw-away databases (benchmarks).
pub async fn drop_database(server_url: &str, name: &str) -> Result<(), DbSetupError> {
    let mut parsed = url::Url::parse(server_url).map_err(|_| DbSetupError::InvalidUrl {
        url: redact_url(server_url),
    })?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(DbSetupError::InvalidUrl {
            url: redact_url(server_url),
        });
    }
    parsed.set_path("/postgres");
    let admin = connect(parsed.as_str(), 1).await?;
    let dropped = admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await;
    let closed = admin.close().await;
    dropped
        .and(closed)
        .map(|_| ())
        .map_err(|source| DbSetupError::Unreachable {
            url: redact_url(server_url),
            source,
        })
}

/// Creates the database named in `url` if it does not exist (connecting to `postgres` to do so).
pub async fn ensure_database(url: &str) -> Result<(), DbSetupError> {
    let invalid = || DbSetupError::InvalidUrl {
        url: redact_url(url),
    };
    let mut parsed = url::Url::parse(url).map_err(|_| invalid())?;
    let name = parsed.path().trim_start_matches('/').to_owned();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(invalid());
    }
    parsed.set_path("/postgres");
    let admin = connect(parsed.as_str(), 1).await?;
    let unreachable = |source| DbSetupError::Unreachable {
        url: redact_url(url),
        source,
    };
    let exists = admin
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT 1 FROM pg_database WHERE datname = $1",
            [name.clone().into()],
        ))
        .await
        .map_err(unreachable)?
        .is_some();
    if !exists {
        // Two processes may race here; losing the race is fine.
        if let Err(e) = admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            && !e.to_string().contains("already exists")
        {
            return Err(unreachable(e));
        }
    }
    admin.close().await.map_err(unreachable)?;
    Ok(())
}
