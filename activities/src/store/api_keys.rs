//! API keys (`api_keys`): a public id, a name, a role and the SHA-256 of a 256-bit random
//! secret. The secret is shown once, when the key is created, and never stored.
//!
//! A key's token is `bfk_<12 hex>_<64 hex>`: the first part (`bfk_<12 hex>`) is the key's id, so
//! a request's token names the row to look up; the rest is the secret, whose hash is compared
//! with the stored one in constant time ([`verify`]).

use chrono::{DateTime, Utc};
use rand::TryRngCore as _;
use sea_orm::sqlx::{self, PgPool};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// Every key id starts with this.
pub const KEY_ID_PREFIX: &str = "bfk_";
/// Hex characters of a key id after its prefix (48 random bits).
const KEY_ID_HEX: usize = 12;
/// Random bytes of a secret (256 bits).
const SECRET_BYTES: usize = 32;

/// What a key may do: `viewer` < `operator` < `admin` (each may do what the lower ones may).
#[derive(
    utoipa::ToSchema,
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum AccessRole {
    /// Reads everything except keys, the audit log and raw configuration.
    Viewer,
    /// Also steers work: backfills, batches, control, chain fleet settings.
    Operator,
    /// Also keys, the audit log, chain registration, endpoints, raw configuration.
    Admin,
}

impl AccessRole {
    /// The spelling in PostgreSQL, JSON and the CLI.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A key as stored (without its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKey {
    /// Public id, `bfk_<12 hex>`.
    pub id: String,
    /// Who or what it is for.
    pub name: String,
    /// What it may do.
    pub role: AccessRole,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When a request last used it (refreshed at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked; a revoked key authenticates nothing.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A created key and its token, which holds the secret: shown once, never stored.
#[derive(Debug, Clone)]
pub struct CreatedKey {
    /// The stored key.
    pub key: ApiKey,
    /// `bfk_<id>_<secret>`, what a client sends as `Authorization: Bearer <token>`.
    pub token: String,
}

/// Errors of the key store.
#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The operating system's random source failed.
    #[error("cannot draw a random secret: {0}")]
    Random(String),
    /// A stored role is not one we know (the table's check forbids it).
    #[error("key {id} has an unknown role {role:?}")]
    UnknownRole {
        /// The key.
        id: String,
        /// Its stored role.
        role: String,
    },
}

type Row = (
    String,
    String,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

const COLUMNS: &str = "id, name, role, created_at, last_used_at, revoked_at";

fn from_row(
    (id, name, role, created_at, last_used_at, revoked_at): Row,
) -> Result<ApiKey, ApiKeyError> {
    let role = role.parse().map_err(|_| ApiKeyError::UnknownRole {
        id: id.clone(),
        role,
    })?;
    Ok(ApiKey {
        id,
        name,
        role,
        created_at,
        last_used_at,
        revoked_at,
    })
}

/// SHA-256 of a secret as it appears in the token.
fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// `bytes` random bytes from the operating system.
fn random_bytes<const N: usize>() -> Result<[u8; N], ApiKeyError> {
    let mut bytes = [0_u8; N];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| ApiKeyError::Random(e.to_string()))?;
    Ok(bytes)
}

/// Splits a token into the key id it names and its secret; `None` when it is not shaped like one
/// of our tokens.
pub fn parse_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(KEY_ID_PREFIX)?;
    let (id_hex, secret) = rest.split_once('_')?;
    let hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
    if id_hex.len() != KEY_ID_HEX
        || !hex(id_hex)
        || secret.len() != SECRET_BYTES * 2
        || !hex(secret)
    {
        return None;
    }
    Some((&token[..KEY_ID_PREFIX.len() + KEY_ID_HEX], secret))
}

/// Creates a key named `name` with `role`; answers it with its token (the only time the secret
/// exists outside the client).
pub async fn create(
    pool: &PgPool,
    name: &str,
    role: AccessRole,
) -> Result<CreatedKey, ApiKeyError> {
    loop {
        let id = format!(
            "{KEY_ID_PREFIX}{}",
            hex::encode(random_bytes::<{ KEY_ID_HEX / 2 }>()?)
        );
        let secret = hex::encode(random_bytes::<SECRET_BYTES>()?);
        let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO api_keys (id, name, role, secret_sha256) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO NOTHING RETURNING {COLUMNS}"
        )))
        .bind(&id)
        .bind(name)
        .bind(role.as_str())
        .bind(hash_secret(&secret))
        .fetch_optional(pool)
        .await?;
        // An id drawn twice (48 random bits) is drawn again.
        if let Some(row) = row {
            return Ok(CreatedKey {
                token: format!("{id}_{secret}"),
                key: from_row(row)?,
            });
        }
    }
}

/// Every key, revoked ones included, oldest first.
pub async fn list(pool: &PgPool) -> Result<Vec<ApiKey>, ApiKeyError> {
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM api_keys ORDER BY created_at, id"
    )))
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(from_row).collect()
}

/// Revokes key `id` (a no-op on a revoked one); `None` when there is no such key.
pub async fn revoke(pool: &PgPool, id: &str) -> Result<Option<ApiKey>, ApiKeyError> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1 \
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.map(from_row).transpose()
}

/// Whether any key is not revoked (then every `/v1` request needs one).
pub async fn any_active(pool: &PgPool) -> Result<bool, ApiKeyError> {
    let (any,): (bool,) =
        sqlx::query_as("SELECT EXISTS (SELECT 1 FROM api_keys WHERE revoked_at IS NULL)")
            .fetch_one(pool)
            .await?;
    Ok(any)
}

/// The active key `token` names, when its secret matches (compared in constant time); `None`
/// for a malformed token, an unknown or revoked key, or a wrong secret. Refreshes the key's
/// `last_used_at` when it is older than a minute.
pub async fn verify(pool: &PgPool, token: &str) -> Result<Option<ApiKey>, ApiKeyError> {
    let Some((id, secret)) = parse_token(token) else {
        return Ok(None);
    };
    let stored: Option<(Vec<u8>, bool)> =
        sqlx::query_as("SELECT secret_sha256, revoked_at IS NULL FROM api_keys WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    let Some((stored, active)) = stored else {
        return Ok(None);
    };
    let matches: bool = hash_secret(secret).ct_eq(&stored).into();
    if !matches || !active {
        return Ok(None);
    }
    sqlx::query(
        "UPDATE api_keys SET last_used_at = now() WHERE id = $1 \
           AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
    )
    .bind(id)
    .execute(pool)
    .await?;
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM api_keys WHERE id = $1 AND revoked_at IS NULL"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.map(from_row).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_key_and_carries_its_secret() {
        let secret = "ab".repeat(32);
        let token = format!("bfk_0123456789ab_{secret}");
        assert_eq!(
            parse_token(&token),
            Some(("bfk_0123456789ab", secret.as_str()))
        );
    }

    #[test]
    fn misshapen_tokens_name_no_key() {
        let secret = "ab".repeat(32);
        for token in [
            String::new(),
            "bfk_".to_owned(),
            format!("xyz_0123456789ab_{secret}"),
            format!("bfk_0123456789a_{secret}"),
            format!("bfk_0123456789zz_{secret}"),
            "bfk_0123456789ab_abcd".to_owned(),
            format!("bfk_0123456789ab_{secret}0"),
            format!("bfk_0123456789ab{secret}"),
        ] {
            assert_eq!(parse_token(&token), None, "{token}");
        }
    }

    #[test]
    fn roles_are_ordered_and_spelled_lowercase() {
        assert!(AccessRole::Viewer < AccessRole::Operator);
        assert!(AccessRole::Operator < AccessRole::Admin);
        assert_eq!(AccessRole::Operator.as_str(), "operator");
        assert_eq!("admin".parse::<AccessRole>().ok(), Some(AccessRole::Admin));
        assert!("root".parse::<AccessRole>().is_err());
    }
}
