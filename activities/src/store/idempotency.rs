//! Stored answers of `Idempotency-Key` requests (`idempotency_keys`), per caller scope (a key id,
//! or `loopback` / `insecure`) and key: the first request claims the key ([`begin`]), runs, and
//! stores its answer ([`complete`]); a repeat with the same request gets the stored answer, one
//! with another request is told the key is taken. Rows live 24 hours ([`RETENTION`]).

use std::time::Duration;

use sea_orm::sqlx::{self, PgPool};
use sha2::{Digest as _, Sha256};

/// How long a stored answer is kept (and replayed).
pub const RETENTION: Duration = Duration::from_secs(24 * 3_600);

/// A stored claim: fingerprint, and the answer's status, body and content type once complete.
type Stored = (Vec<u8>, Option<i32>, Option<Vec<u8>>, Option<String>);

/// What a request with an `Idempotency-Key` should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// The key was free and is now claimed: run the request, then [`complete`] or [`abandon`].
    Run,
    /// The same request was answered before: answer this.
    Replay {
        /// HTTP status.
        status: u16,
        /// Body as sent.
        body: Vec<u8>,
        /// Its `Content-Type`, if it had one.
        content_type: Option<String>,
    },
    /// The same request is running now (claimed less than `in_flight_timeout` ago).
    InFlight,
    /// The key was used for a different request.
    Reused,
}

/// SHA-256 of what makes two requests the same: method, path and body.
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update(b"\n");
    hasher.update(path.as_bytes());
    hasher.update(b"\n");
    hasher.update(body);
    hasher.finalize().to_vec()
}

/// Claims `key` in `scope` for a request with `fingerprint`, or says what to answer instead. A
/// stored answer older than [`RETENTION`], or a claim older than `in_flight_timeout` that never
/// completed (its process died), gives way to the new request.
pub async fn begin(
    pool: &PgPool,
    scope: &str,
    key: &str,
    fingerprint: &[u8],
    in_flight_timeout: Duration,
) -> Result<Begin, sqlx::Error> {
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 \
           AND (created_at < now() - make_interval(secs => $3) \
             OR (status IS NULL AND created_at < now() - make_interval(secs => $4)))",
    )
    .bind(scope)
    .bind(key)
    .bind(RETENTION.as_secs_f64())
    .bind(in_flight_timeout.as_secs_f64())
    .execute(pool)
    .await?;
    // A claim abandoned between our insert and our read frees the key: try again.
    for _ in 0..3 {
        let claimed = sqlx::query(
            "INSERT INTO idempotency_keys (scope, key, fingerprint) VALUES ($1, $2, $3) \
             ON CONFLICT (scope, key) DO NOTHING",
        )
        .bind(scope)
        .bind(key)
        .bind(fingerprint)
        .execute(pool)
        .await?
        .rows_affected()
            == 1;
        if claimed {
            return Ok(Begin::Run);
        }
        let stored: Option<Stored> = sqlx::query_as(
            "SELECT fingerprint, status, body, content_type FROM idempotency_keys \
             WHERE scope = $1 AND key = $2",
        )
        .bind(scope)
        .bind(key)
        .fetch_optional(pool)
        .await?;
        let Some((stored_fingerprint, status, body, content_type)) = stored else {
            continue;
        };
        if stored_fingerprint != fingerprint {
            return Ok(Begin::Reused);
        }
        return Ok(match status.and_then(|s| u16::try_from(s).ok()) {
            Some(status) => Begin::Replay {
                status,
                body: body.unwrap_or_default(),
                content_type,
            },
            None => Begin::InFlight,
        });
    }
    Ok(Begin::InFlight)
}

/// Stores the answer of the request that claimed `key` in `scope`.
pub async fn complete(
    pool: &PgPool,
    scope: &str,
    key: &str,
    status: u16,
    body: &[u8],
    content_type: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE idempotency_keys SET status = $3, body = $4, content_type = $5 \
         WHERE scope = $1 AND key = $2",
    )
    .bind(scope)
    .bind(key)
    .bind(i32::from(status))
    .bind(body)
    .bind(content_type)
    .execute(pool)
    .await?;
    Ok(())
}

/// Frees `key` in `scope` without an answer (the request failed on our side; a retry runs it).
pub async fn abandon(pool: &PgPool, scope: &str, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND status IS NULL")
        .bind(scope)
        .bind(key)
        .execute(pool)
        .await?;
    Ok(())
}

/// Deletes the rows older than [`RETENTION`].
pub async fn prune(pool: &PgPool) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)",
    )
    .bind(RETENTION.as_secs_f64())
    .execute(pool)
    .await?
    .rows_affected())
}

#[cfg(test)]
mod tests {
    use super::fingerprint;

    #[test]
    fn the_fingerprint_tells_method_path_and_body_apart() {
        let base = fingerprint("POST", "/v1/backfills", b"{}");
        assert_eq!(base, fingerprint("POST", "/v1/backfills", b"{}"));
        assert_ne!(base, fingerprint("PUT", "/v1/backfills", b"{}"));
        assert_ne!(base, fingerprint("POST", "/v1/backfill", b"{}"));
        assert_ne!(base, fingerprint("POST", "/v1/backfills", b"{ }"));
    }
}
