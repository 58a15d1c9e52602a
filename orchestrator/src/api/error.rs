//! API errors: 4xx answers say what to fix; 5xx answers stay generic and the cause is logged.
//!
//! Bad input is refused before it reaches PostgreSQL; as a safety net, a database error that
//! can only come from the request's values (SQLSTATE class 22, data exception) answers 400 and a
//! unique violation (23505, a concurrent request created the same thing) answers 409. Both are
//! logged at warn, and neither is ever a 500.
//!
//! Every error answer is an [`ErrorBody`]: `{"error": "...", "code": "not_found"}`, the text for a
//! person and a stable snake_case `code` for a program ([`ApiError::code`]); a body whose fields
//! are invalid ([`ApiError::InvalidFields`]) also names each one: `{"error": "...", "code":
//! "invalid_fields", "fields": {"min_workers": "must not exceed max_workers (3)"}}`. Answers that
//! axum or a tower layer makes itself (405, 408, 413, an unknown route) are rewritten to the same
//! shape by [`json_errors`], with a code from their status ([`code_for_status`]).
//! The access layer's refusals: `unauthorized` (401, with `WWW-Authenticate: Bearer`),
//! `forbidden` (403, with the `required_role`), `rate_limited` (429, with `Retry-After` and
//! `retry_after_secs`), `idempotency_key_reused` (422).

use std::collections::BTreeMap;

use axum::{
    Json,
    body::Body,
    extract::rejection::{JsonRejection, PathRejection, QueryRejection},
    http::{HeaderValue, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use sea_orm::{DbErr, RuntimeErr, sqlx};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An error answer of the admin API.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request cannot be understood.
    #[error("{0}")]
    BadRequest(String),
    /// 404: no such resource.
    #[error("{0}")]
    NotFound(String),
    /// 409: the resource exists or is in the wrong state.
    #[error("{0}")]
    Conflict(String),
    /// 422: understood but invalid.
    #[error("{0}")]
    Unprocessable(String),
    /// 422: fields of the body are invalid; each is named with why (`fields` in the answer).
    #[error("{}", describe_fields(.0))]
    InvalidFields(FieldErrors),
    /// 503: this instance cannot take the request (a standby, or a store is away).
    #[error("{0}")]
    Unavailable(String),
    /// 401: no valid API key (code `unauthorized`); says how to get one.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the key's role is too weak for the route (code `forbidden`); names the role needed.
    #[error("{message}")]
    Forbidden {
        /// What was refused and why.
        message: String,
        /// The role the route needs.
        required_role: &'static str,
    },
    /// 429: the caller is over its request rate (code `rate_limited`, `Retry-After` header).
    #[error("rate limit exceeded; retry in {retry_after_secs} s")]
    RateLimited {
        /// Whole seconds until a request is allowed again (at least 1).
        retry_after_secs: u64,
    },
    /// 422: the `Idempotency-Key` was used for a different request (code
    /// `idempotency_key_reused`).
    #[error("{0}")]
    IdempotencyKeyReused(String),
    /// 500: our fault; details are logged, not returned.
    #[error("internal error")]
    Internal(String),
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"error": "no chain named mainnet", "code": "not_found"}))]
pub struct ErrorBody {
    /// What went wrong, for a person (5xx answers stay generic; the cause is logged).
    pub error: String,
    /// What went wrong, for a program: stable and snake_case. `bad_request` (400),
    /// `unauthorized` (401), `forbidden` (403), `not_found` (404), `method_not_allowed` (405),
    /// `timeout` (408), `conflict` or `invalid_state` (409), `payload_too_large` (413),
    /// `unsupported_media_type` (415), `unprocessable` or `invalid_fields` (422),
    /// `rate_limited` (429), `internal` (500), `unavailable` (503).
    pub code: String,
    /// With `invalid_fields`: why each named field of the body is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<FieldErrors>,
    /// With `forbidden`: the role the route needs (`viewer`, `operator` or `admin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_role: Option<String>,
    /// With `rate_limited`: seconds until a request may succeed (also in `Retry-After`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    /// The stable, machine-readable name of this error (`code` in the answer).
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::Unprocessable(_) => "unprocessable",
            Self::InvalidFields(_) => "invalid_fields",
            Self::Unavailable(_) => "unavailable",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden { .. } => "forbidden",
            Self::RateLimited { .. } => "rate_limited",
            Self::IdempotencyKeyReused(_) => "idempotency_key_reused",
            Self::Internal(_) => "internal",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unprocessable(_) | Self::InvalidFields(_) | Self::IdempotencyKeyReused(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(cause) = &self {
            tracing::error!(target: "blockfill::api", cause, "internal error");
        }
        let body = ErrorBody {
            error: self.to_string(),
            code: self.code().to_owned(),
            fields: match &self {
                Self::InvalidFields(fields) => Some(fields.clone()),
                _ => None,
            },
            required_role: match &self {
                Self::Forbidden { required_role, .. } => Some(required_role.to_string()),
                _ => None,
            },
            retry_after_secs: match &self {
                Self::RateLimited { retry_after_secs } => Some(*retry_after_secs),
                _ => None,
            },
        };
        let mut response = (self.status(), Json(body)).into_response();
        match &self {
            Self::Unauthorized(_) => {
                response.headers_mut().insert(
                    axum::http::header::WWW_AUTHENTICATE,
                    axum::http::HeaderValue::from_static("Bearer"),
                );
            }
            Self::RateLimited { retry_after_secs } => {
                response.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from(*retry_after_secs),
                );
            }
            _ => {}
        }
        response
    }
}

/// The `code` of an error answer made by axum or a layer, from its status.
pub fn code_for_status(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    }
}

/// Most bytes of a plain error answer kept as its `error` text.
const PLAIN_ERROR_LIMIT: usize = 4096;

/// Rewrites an error answer that is not JSON (axum's 405 with an empty body, a layer's 408 or
/// 413, a plain-text rejection) into an [`ErrorBody`], keeping its status and headers (`Allow`,
/// `Retry-After`). JSON answers and successes pass untouched.
pub(super) async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, PLAIN_ERROR_LIMIT)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let error = if status.is_server_error() || text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        text
    };
    let body = ErrorBody {
        error,
        code: code_for_status(status).to_owned(),
        fields: None,
        required_role: None,
        retry_after_secs: None,
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(bytes))
}

/// The answer to a path no route matches: a JSON 404.
pub(super) async fn unknown_route(method: Method, uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no route {method} {}", uri.path()))
}

/// Why each bad field of a request body is bad, by field name.
pub type FieldErrors = BTreeMap<String, String>;

/// One line naming every bad field: `invalid fields: a: why; b: why`.
fn describe_fields(fields: &FieldErrors) -> String {
    let each: Vec<String> = fields
        .iter()
        .map(|(field, why)| format!("{field}: {why}"))
        .collect();
    format!("invalid fields: {}", each.join("; "))
}

impl ApiError {
    /// What a database error answers: 400 or 409 when the request's values are at fault,
    /// otherwise 500.
    fn from_database(e: &sqlx::Error, cause: String) -> Self {
        let sqlx::Error::Database(db) = e else {
            return Self::Internal(cause);
        };
        let code = db.code().unwrap_or_default();
        if code.starts_with("22") {
            tracing::warn!(target: "blockfill::api", sqlstate = %code, error = %db, "the database refused a value of the request");
            Self::BadRequest(format!("invalid input: {}", db.message()))
        } else if code == "23505" {
            tracing::warn!(target: "blockfill::api", sqlstate = %code, error = %db, "a concurrent request created the same record");
            Self::Conflict("it already exists (a concurrent request created it)".into())
        } else {
            Self::Internal(cause)
        }
    }
}

impl From<DbErr> for ApiError {
    fn from(e: DbErr) -> Self {
        match &e {
            DbErr::Conn(RuntimeErr::SqlxError(inner))
            | DbErr::Exec(RuntimeErr::SqlxError(inner))
            | DbErr::Query(RuntimeErr::SqlxError(inner)) => {
                Self::from_database(inner, format!("database: {e}"))
            }
            _ => Self::Internal(format!("database: {e}")),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self::from_database(&e, format!("database: {e}"))
    }
}

impl From<crate::scheduler::SchedulerError> for ApiError {
    fn from(e: crate::scheduler::SchedulerError) -> Self {
        use crate::scheduler::SchedulerError;
        match e {
            SchedulerError::Database(inner) => inner.into(),
            SchedulerError::Orm(inner) => inner.into(),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        match e {
            JsonRejection::JsonDataError(e) => Self::Unprocessable(e.body_text()),
            other => Self::BadRequest(other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        Self::BadRequest(e.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        if e.status().is_client_error() {
            Self::BadRequest(e.body_text())
        } else {
            Self::Internal(format!("path parameters: {}", e.body_text()))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use axum::http::StatusCode;
    use sea_orm::{DbErr, RuntimeErr, sqlx};

    use super::ApiError;

    /// A database error with a SQLSTATE, as PostgreSQL would send it.
    #[derive(Debug, thiserror::Error)]
    #[error("{message}")]
    struct Refused {
        code: &'static str,
        message: &'static str,
    }

    impl sqlx::error::DatabaseError for Refused {
        fn message(&self) -> &str {
            self.message
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.code))
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    fn refused(code: &'static str, message: &'static str) -> sqlx::Error {
        sqlx::Error::Database(Box::new(Refused { code, message }))
    }

    #[test]
    fn data_exceptions_answer_400_unique_violations_409_and_the_rest_500() {
        let cases = [
            ("22021", StatusCode::BAD_REQUEST),
            ("22P05", StatusCode::BAD_REQUEST),
            ("22003", StatusCode::BAD_REQUEST),
            ("23505", StatusCode::CONFLICT),
            ("23503", StatusCode::INTERNAL_SERVER_ERROR),
            ("40001", StatusCode::INTERNAL_SERVER_ERROR),
            ("XX000", StatusCode::INTERNAL_SERVER_ERROR),
        ];
        for (code, status) in cases {
            let direct = ApiError::from(refused(code, "refused"));
            assert_eq!(direct.status(), status, "sqlx error {code}");
            let through_orm = ApiError::from(DbErr::Query(RuntimeErr::SqlxError(
                refused(code, "refused").into(),
            )));
            assert_eq!(through_orm.status(), status, "sea-orm error {code}");
            let through_scheduler = ApiError::from(crate::scheduler::SchedulerError::Database(
                refused(code, "refused"),
            ));
            assert_eq!(through_scheduler.status(), status, "scheduler error {code}");
        }
        assert_eq!(
            ApiError::from(sqlx::Error::PoolTimedOut).status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[tokio::test]
    async fn invalid_fields_answer_422_naming_each_field_and_keep_the_error_line() {
        use axum::response::IntoResponse;

        let e = ApiError::InvalidFields(super::FieldErrors::from([
            (
                "min_workers".to_owned(),
                "must not exceed max_workers (3)".to_owned(),
            ),
            (
                "batch_size".to_owned(),
                "must be between 1 and 10000 (got 0)".to_owned(),
            ),
        ]));
        let response = e.into_response();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let bytes = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .expect("a body");
        let body: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
        assert_eq!(
            body,
            serde_json::json!({
                "error": "invalid fields: batch_size: must be between 1 and 10000 (got 0); min_workers: must not exceed max_workers (3)",
                "code": "invalid_fields",
                "fields": {
                    "min_workers": "must not exceed max_workers (3)",
                    "batch_size": "must be between 1 and 10000 (got 0)",
                },
            })
        );
    }

    #[test]
    fn a_data_exception_says_what_the_database_refused() {
        let e = ApiError::from(refused(
            "22021",
            "invalid byte sequence for encoding \"UTF8\": 0x00",
        ));
        assert_eq!(
            e.to_string(),
            "invalid input: invalid byte sequence for encoding \"UTF8\": 0x00"
        );
    }
}
