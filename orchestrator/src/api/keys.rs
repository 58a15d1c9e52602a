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

use super::{
    ApiContext, ApiError, FieldErrors,
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    name: Text,
    role: Text,
}

/// Answer of `POST /v1/keys`: the key, and its token (shown this once).
#[derive(Debug, Serialize, Deserialize)]
pub struct CreatedKeyView {
    /// The key.
    #[serde(flatten)]
    pub key: KeyView,
    /// `bfk_<id>_<secret>`: send as `Authorization: Bearer <token>`. It cannot be shown again.
    pub token: String,
}

/// Answer of `GET /v1/whoami`.
#[derive(Debug, Serialize, Deserialize)]
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

async fn list(State(ctx): State<ApiContext>) -> Result<Json<Vec<KeyView>>, ApiError> {
    Ok(Json(api_keys::list(&ctx.app.pool).await?))
}

async fn create(
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

async fn revoke(
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

async fn whoami(caller: Option<Extension<Caller>>) -> Result<Json<WhoamiView>, ApiError> {
    let Extension(caller) = caller
        .ok_or_else(|| ApiError::Internal("whoami answered outside the access layer".into()))?;
    Ok(Json(WhoamiView {
        auth: caller.auth.as_str().to_owned(),
        key_id: caller.key_id,
        name: caller.key.map(|k| k.name),
        role: caller.role,
    }))
}
