//! API errors: 4xx answers say what to fix; 5xx answers stay generic and the cause is logged.

use axum::{
    Json,
    extract::rejection::{JsonRejection, QueryRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;

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
    /// 503: this instance cannot take the request (a standby, or a store is away).
    #[error("{0}")]
    Unavailable(String),
    /// 500: our fault; details are logged, not returned.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(cause) = &self {
            tracing::error!(target: "blockfill::api", cause, "internal error");
        }
        (self.status(), Json(json!({ "error": self.to_string() }))).into_response()
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Internal(format!("database: {e}"))
    }
}

impl From<sea_orm::sqlx::Error> for ApiError {
    fn from(e: sea_orm::sqlx::Error) -> Self {
        Self::Internal(format!("database: {e}"))
    }
}

impl From<crate::scheduler::SchedulerError> for ApiError {
    fn from(e: crate::scheduler::SchedulerError) -> Self {
        Self::Internal(e.to_string())
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
