//! `GET /v1/keys`, `POST /v1/keys`, `DELETE /v1/keys/{id}` (admin) and `GET /v1/whoami` (any
//! caller): API keys and who the caller is. A key's secret is answered once, by the `POST`
//! that creates it; lists never show it.

use axum::{
    Extension, Json, Router,
    extract::{State, rejection::JsonRejection},
    http::StatusCode,
    routing::{delete, get},
};
use blockfill_activities::store::api_keys::{self, AccessRole, ApiKey, ApiKeyError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    ApiContext, ApiError, ErrorBody, FieldErrors,
    access::Caller,
    params::{PathParam, Text},
};

pub(super) fn router() -> Router<ApiContext> {
    Router::new()
        .route("/v1/keys", get(list).post(create))
        .route("/v1/keys/{id}", delete(revoke))
        .route("/v1/whoami", get(whoami))
}

/// Most characters of a key's name.
const NAME_CHARS: usize = 100;

/// A key as the API shows it (never its secret).
pub type KeyView = ApiKey;

/// Body of `POST /v1/keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateKey {
    /// Who or what the key is for (1 to 100 characters).
    #[schema(value_type = String, example = "dashboard")]
    name: Text,
    /// `viewer`, `operator` or `admin`.
    #[schema(value_type = String, example = "operator")]
    role: Text,
}

/// Answer of `POST /v1/keys`: the key, and its token (shown this once).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedKeyView {
    /// The key.
    #[serde(flatten)]
    pub key: KeyView,
    /// `bfk_<id>_<secret>`: send as `Authorization: Bearer <token>`. It cannot be shown again.
    pub token: String,
}

/// Answer of `GET /v1/whoami`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WhoamiView {
    /// `key`, `loopback` (no key exists yet, loopback client) or `insecure`
    /// (`--insecure-no-auth`).
    pub auth: String,
    /// The key's id, if the caller sent one.
    pub key_id: Option<String>,
    /// The key's name, if the caller sent one.
    pub name: Option<String>,
    /// The role the caller acts with.
    pub role: AccessRole,
}

impl From<ApiKeyError> for ApiError {
    fn from(e: ApiKeyError) -> Self {
        match e {
            ApiKeyError::Database(e) => e.into(),
            other => Self::Internal(other.to_string()),
        }
    }
}

/// A key name: 1 to [`NAME_CHARS`] characters, not only blanks.
fn check_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if name.chars().count() > NAME_CHARS {
        return Err(format!("must be at most {NAME_CHARS} characters"));
    }
    Ok(())
}

#[utoipa::path(
    get,
    path = "/v1/keys",
    tag = "access",
    responses(
        (status = 200, description = "Every key, revoked ones included (never a secret)", body = Vec<KeyView>, example = json!([{"id": "bfk_3f2a9c1d4e5b", "name": "dashboard", "role": "operator", "created_at": "2026-12-03T10:00:00Z", "last_used_at": null, "revoked_at": null}])),
    ),
)]
pub(super) async fn list(State(ctx): State<ApiContext>) -> Result<Json<Vec<KeyView>>, ApiError> {
    Ok(Json(api_keys::list(&ctx.app.pool).await?))
}

#[utoipa::path(
    post,
    path = "/v1/keys",
    tag = "access",
    request_body(content = CreateKey, example = json!({"name": "dashboard", "role": "operator"})),
    responses(
        (status = 201, description = "The key and its token, shown this once", body = CreatedKeyView, example = json!({"id": "bfk_3f2a9c1d4e5b", "name": "dashboard", "role": "operator", "created_at": "2026-12-03T10:00:00Z", "last_used_at": null, "revoked_at": null, "token": "bfk_3f2a9c1d4e5b_<64 hex>"})),
        (status = 400, description = "The body is not JSON", body = ErrorBody, example = json!(super::openapi::examples::error("bad_request", "Failed to parse the request body as JSON"))),
        (status = 422, description = "A field is invalid", body = ErrorBody, example = json!({"error": "invalid fields: role: must be viewer, operator or admin, not \"root\"", "code": "invalid_fields", "fields": {"role": "must be viewer, operator or admin, not \"root\""}})),
    ),
)]
pub(super) async fn create(
    State(ctx): State<ApiContext>,
    body: Result<Json<CreateKey>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedKeyView>), ApiError> {
    let Json(body) = body?;
    let mut errors = FieldErrors::new();
    if let Err(why) = check_name(body.name.as_str()) {
        errors.insert("name".into(), why);
    }
    let role = body.role.as_str().parse::<AccessRole>();
    if role.is_err() {
        errors.insert(
            "role".into(),
            format!(
                "must be viewer, operator or admin, not {:?}",
                body.role.as_str()
            ),
        );
    }
    let (true, Ok(role)) = (errors.is_empty(), role) else {
        return Err(ApiError::InvalidFields(errors));
    };
    let created = api_keys::create(&ctx.app.pool, body.name.as_str().trim(), role).await?;
    ctx.access.forget_cached_keys();
    tracing::info!(target: "blockfill::api", key_id = %created.key.id, role = %role, "API key created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedKeyView {
            key: created.key,
            token: created.token,
        }),
    ))
}

#[utoipa::path(
    delete,
    path = "/v1/keys/{id}",
    tag = "access",
    params(("id" = String, Path, description = "Key id", example = "bfk_3f2a9c1d4e5b")),
    responses(
        (status = 200, description = "The key, revoked (repeating it changes nothing)", body = KeyView, example = json!({"id": "bfk_3f2a9c1d4e5b", "name": "dashboard", "role": "operator", "created_at": "2026-12-03T10:00:00Z", "last_used_at": null, "revoked_at": null})),
        (status = 404, description = "No such key", body = ErrorBody, example = json!(super::openapi::examples::error("not_found", "no API key bfk_000000000000"))),
    ),
)]
pub(super) async fn revoke(
    State(ctx): State<ApiContext>,
    PathParam(id): PathParam<Text>,
) -> Result<Json<KeyView>, ApiError> {
    let key = api_keys::revoke(&ctx.app.pool, id.as_str())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no API key {id}")))?;
    ctx.access.forget_cached_keys();
    tracing::info!(target: "blockfill::api", key_id = %key.id, "API key revoked");
    Ok(Json(key))
}

#[utoipa::path(
    get,
    path = "/v1/whoami",
    tag = "access",
    responses(
        (status = 200, description = "Who the caller is and the role it acts with", body = WhoamiView, example = json!({"auth": "key", "key_id": "bfk_3f2a9c1d4e5b", "name": "dashboard", "role": "operator"})),
    ),
)]
pub(super) async fn whoami(
    caller: Option<Extension<Caller>>,
) -> Result<Json<WhoamiView>, ApiError> {
    let Extension(caller) = caller
        .ok_or_else(|| ApiError::Internal("whoami answered outside the access layer".into()))?;
    Ok(Json(WhoamiView {
        auth: caller.auth.as_str().to_owned(),
        key_id: caller.key_id,
        name: caller.key.map(|k| k.name),
        role: caller.role,
    }))
}
