//! `Idempotency-Key` on `POST /v1/backfills`, around the handler (which stays unaware of it).
//!
//! Per caller scope (the key id; `loopback` or `insecure` without a key): the first request with
//! a key runs and its answer (status and body) is stored; a repeat of the same request (same
//! method, path and body) answers the stored answer with `Idempotent-Replayed: true` and creates
//! nothing; the same key with another body answers 422 `idempotency_key_reused`; a repeat while
//! the first is still running answers 409 `conflict` at once (retry it: it then replays). A 5xx
//! answer is not stored (the key is freed: a retry runs again). Keys are kept 24 hours.

use std::time::Duration;

use axum::{
    body::Body,
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse as _, Response},
};
use blockfill_activities::store::idempotency::{self, Begin};
use sea_orm::sqlx::PgPool;

use crate::api::ApiError;

/// The request header.
pub(super) const HEADER: &str = "idempotency-key";
/// The header on a replayed answer.
pub(super) const REPLAYED: &str = "idempotent-replayed";
/// A claim older than this that never completed is taken over (above the API's 30 s request
/// timeout: its process died).
const IN_FLIGHT_TIMEOUT: Duration = Duration::from_secs(60);
/// Most bytes of an answer stored.
const ANSWER_LIMIT: usize = 1024 * 1024;

/// The routes whose requests honour `Idempotency-Key`.
pub(super) fn applies(method: &axum::http::Method, route: Option<&str>) -> bool {
    method == axum::http::Method::POST && route == Some("/v1/backfills")
}

/// A valid key: 1 to 255 visible ASCII characters.
pub(super) fn parse_key(value: &HeaderValue) -> Result<String, ApiError> {
    let key = value.to_str().unwrap_or_default();
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::BadRequest(
            "Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
        ));
    }
    Ok(key.to_owned())
}

/// Runs `request` under idempotency key `key` of `scope`, or answers what was stored.
pub(super) async fn run(
    pool: &PgPool,
    scope: &str,
    key: &str,
    body: &[u8],
    request: Request,
    next: Next,
) -> Response {
    let fingerprint =
        idempotency::fingerprint(request.method().as_str(), request.uri().path(), body);
    match idempotency::begin(pool, scope, key, &fingerprint, IN_FLIGHT_TIMEOUT).await {
        Err(e) => ApiError::from(e).into_response(),
        Ok(Begin::Reused) => ApiError::IdempotencyKeyReused(format!(
            "Idempotency-Key {key:?} was used for a different request in the last 24 hours; use a new key for a new request"
        ))
        .into_response(),
        Ok(Begin::InFlight) => ApiError::Conflict(format!(
            "a request with Idempotency-Key {key:?} is still running; retry shortly to get its answer"
        ))
        .into_response(),
        Ok(Begin::Replay {
            status,
            body,
            content_type,
        }) => {
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            if let Some(value) = content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
                response.headers_mut().insert(header::CONTENT_TYPE, value);
            }
            response
                .headers_mut()
                .insert(REPLAYED, HeaderValue::from_static("true"));
            response
        }
        Ok(Begin::Run) => {
            let response = next.run(request).await;
            let status = response.status();
            if status.is_server_error() {
                if let Err(e) = idempotency::abandon(pool, scope, key).await {
                    tracing::error!(target: "blockfill::api", error = %e, "cannot free an idempotency key");
                }
                return response;
            }
            let (parts, body) = response.into_parts();
            let bytes = match axum::body::to_bytes(body, ANSWER_LIMIT).await {
                Ok(bytes) => bytes,
                Err(e) => {
                    if let Err(e) = idempotency::abandon(pool, scope, key).await {
                        tracing::error!(target: "blockfill::api", error = %e, "cannot free an idempotency key");
                    }
                    return ApiError::Internal(format!("reading an answer to store: {e}"))
                        .into_response();
                }
            };
            let content_type = parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            if let Err(e) =
                idempotency::complete(pool, scope, key, status.as_u16(), &bytes, content_type)
                    .await
            {
                tracing::error!(target: "blockfill::api", error = %e, "cannot store the answer of an idempotent request; a repeat will wait for the claim to expire");
            }
            Response::from_parts(parts, Body::from(bytes))
        }
    }
}
