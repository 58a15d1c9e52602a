//! Who may use the admin API, and the record of what they did: one middleware ([`enforce`])
//! around every route.
//!
//! For a `/v1` request (and the probes with `--protect-probes`) it, in order:
//! 1. **authenticates** ([`Caller`]): `Authorization: Bearer bfk_<id>_<secret>` names an active
//!    key (verified in constant time, cached for at most a second: [`keyring`]); without a key,
//!    `--insecure-no-auth` makes the caller an admin (`auth: insecure`); otherwise, while no
//!    active key exists, a loopback client is an admin (`auth: loopback`, the development
//!    mode) and anyone else is refused; once a key exists, no key is 401;
//! 2. **limits** the rate per key (per client address without a key): over
//!    `--rate-limit-per-key` requests/s (bursts of twice that) answers 429 with `Retry-After`;
//! 3. **authorizes**: the route's role from the one table ([`routes::ROUTES`]), 403 naming the
//!    role needed when the caller's is weaker;
//! 4. runs the request, with `Idempotency-Key` honoured on `POST /v1/backfills`
//!    ([`idempotent`]);
//! 5. **audits** every mutation (any method but GET and HEAD), refused ones included, after
//!    the answer ([`trail`]).
//!
//! The dashboard's assets, `/docs` and `/openapi.json` stay open.

mod idempotent;
mod keyring;
pub mod routes;
mod trail;

use std::{
    net::{IpAddr, SocketAddr},
    num::NonZeroU32,
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::{
    body::Body,
    extract::{ConnectInfo, MatchedPath, Request, State},
    http::{HeaderMap, Method, header},
    middleware::Next,
    response::{IntoResponse as _, Response},
};
use blockfill_activities::store::{
    api_keys::{AccessRole, ApiKey},
    idempotency,
};
use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock as _, DefaultClock},
};
use serde::Serialize;

pub use keyring::CACHE_TTL;
pub use routes::{PROBES, ROUTES, RouteRule};

use super::{ApiContext, ApiError};
use crate::settings::AccessArgs;
use trail::Trail;

/// How a caller was let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// An API key.
    Key,
    /// No key exists yet and the client is on loopback (development mode).
    Loopback,
    /// `--insecure-no-auth`.
    Insecure,
}

impl AuthMode {
    /// The spelling in JSON and the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::Loopback => "loopback",
            Self::Insecure => "insecure",
        }
    }
}

/// Who is making a request (a request extension of every guarded route).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// How it was let in.
    pub auth: AuthMode,
    /// Its key, when it sent one.
    pub key: Option<ApiKey>,
    /// The key's id, if any.
    pub key_id: Option<String>,
    /// The role it acts with.
    pub role: AccessRole,
    /// Its address.
    pub client: Option<IpAddr>,
}

impl Caller {
    /// Whose stored idempotency keys it shares: its key's, or everyone's of its mode.
    fn scope(&self) -> String {
        self.key_id
            .clone()
            .unwrap_or_else(|| self.auth.as_str().to_owned())
    }
}

/// The rate limit's bucket of a request: its key, or its client address.
fn limit_bucket(key_id: Option<&str>, client: Option<IpAddr>) -> String {
    match (key_id, client) {
        (Some(id), _) => format!("key:{id}"),
        (None, Some(ip)) => format!("ip:{ip}"),
        (None, None) => "ip:unknown".to_owned(),
    }
}

/// The access layer's state: its settings, the key cache, the rate limiter.
pub struct Access {
    settings: AccessArgs,
    keyring: keyring::Keyring,
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    last_housekeeping: Mutex<Instant>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// How often limiter buckets and expired idempotency keys are cleaned.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(60);

impl Access {
    /// The access layer for `settings`.
    pub fn new(settings: &AccessArgs) -> Self {
        let limiter = NonZeroU32::new(settings.rate_limit_per_key).map(|rate| {
            let burst = rate.saturating_mul(NonZeroU32::MIN.saturating_add(1));
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Self {
            settings: settings.clone(),
            keyring: keyring::Keyring::default(),
            limiter,
            last_housekeeping: Mutex::new(Instant::now()),
        }
    }

    /// Forgets cached verifications (a key was created or revoked through this orchestrator).
    pub fn forget_cached_keys(&self) {
        self.keyring.forget();
    }

    /// `Err` with whole seconds to wait when `bucket` is over its rate.
    fn check_rate(&self, bucket: &str) -> Result<(), u64> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter
            .check_key(&bucket.to_owned())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
            })
            .map_err(|secs| secs.max(1))
    }

    /// Once a minute: forgets idle limiter buckets and prunes expired idempotency keys.
    fn housekeeping(&self, pool: &sea_orm::sqlx::PgPool) {
        {
            let mut last = self
                .last_housekeeping
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.elapsed() < HOUSEKEEPING_INTERVAL {
                return;
            }
            *last = Instant::now();
        }
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
        }
        let pool = pool.clone();
        tokio::spawn(async move {
            if let Err(e) = idempotency::prune(&pool).await {
                tracing::warn!(target: "blockfill::api", error = %e, "cannot prune expired idempotency keys");
            }
        });
    }

    /// Who sent a request with `headers` from `client`.
    async fn authenticate(
        &self,
        pool: &sea_orm::sqlx::PgPool,
        headers: &HeaderMap,
        client: Option<IpAddr>,
    ) -> Result<Caller, ApiError> {
        let unavailable = |e: blockfill_activities::store::api_keys::ApiKeyError| {
            tracing::error!(target: "blockfill::api", error = %e, "cannot check API keys");
            ApiError::Unavailable("cannot check API keys right now; retry shortly".into())
        };
        if let Some(value) = headers.get(header::AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .map(str::trim)
                .ok_or_else(|| {
                    ApiError::Unauthorized("the Authorization header must be `Bearer <key>`".into())
                })?;
            let key = self
                .keyring
                .verify(pool, token)
                .await
                .map_err(unavailable)?
                .ok_or_else(|| {
                    ApiError::Unauthorized(
                        "the API key is not valid (unknown, revoked or mistyped)".into(),
                    )
                })?;
            return Ok(Caller {
                auth: AuthMode::Key,
                key_id: Some(key.id.clone()),
                role: key.role,
                key: Some(key),
                client,
            });
        }
        let open = |auth| Caller {
            auth,
            key: None,
            key_id: None,
            role: AccessRole::Admin,
            client,
        };
        if self.settings.insecure_no_auth {
            return Ok(open(AuthMode::Insecure));
        }
        if self.keyring.any_active(pool).await.map_err(unavailable)? {
            return Err(ApiError::Unauthorized(
                "this API needs a key: send `Authorization: Bearer <key>` (an admin creates keys with `blockfill keys create --name NAME --role viewer|operator|admin`)".into(),
            ));
        }
        if client.is_some_and(|ip| ip.is_loopback()) {
            return Ok(open(AuthMode::Loopback));
        }
        Err(ApiError::Unauthorized(
            "no API key exists yet, so only loopback clients are answered (development mode); create one on the orchestrator's host with `blockfill keys create --name NAME --role admin` and send it as `Authorization: Bearer <key>`".into(),
        ))
    }
}

/// Whether `path` is guarded under `settings`.
fn guarded(settings: &AccessArgs, path: &str) -> bool {
    path == "/v1" || path.starts_with("/v1/") || (settings.protect_probes && PROBES.contains(&path))
}

/// The access layer: authenticate, limit, authorize, run (idempotently where asked), audit.
pub(super) async fn enforce(
    State(ctx): State<ApiContext>,
    request: Request,
    next: Next,
) -> Response {
    let access = &ctx.access;
    let path = request.uri().path().to_owned();
    if !guarded(&access.settings, &path) {
        return next.run(request).await;
    }
    access.housekeeping(&ctx.app.pool);
    let method = request.method().clone();
    let mutation = method != Method::GET && method != Method::HEAD;
    let mut trail = Trail {
        method,
        route: request
            .extensions()
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_owned())
            .or_else(|| routes::template_for(&path).map(str::to_owned)),
        path,
        client: request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip()),
        caller: None,
        summary: None,
    };
    let response = guard(&ctx, &mut trail, mutation, request, next).await;
    if mutation {
        trail::record(&ctx.app.pool, trail, response).await
    } else {
        response
    }
}

/// Everything but the audit row.
async fn guard(
    ctx: &ApiContext,
    trail: &mut Trail,
    mutation: bool,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    if !mutation {
        // A read keeps its body as it is.
        return match admit(ctx, trail, &parts.headers, &parts.method, &[]).await {
            Ok(caller) => {
                parts.extensions.insert(caller);
                next.run(Request::from_parts(parts, body)).await
            }
            Err(refused) => refused.into_response(),
        };
    }
    // The request body limit layer bounds what is buffered here.
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(e) => {
            return ApiError::BadRequest(format!("cannot read the request body: {e}"))
                .into_response();
        }
    };
    trail.summary = trail::summarize(&body);
    let caller = match admit(ctx, trail, &parts.headers, &parts.method, &body).await {
        Ok(caller) => caller,
        Err(refused) => return refused.into_response(),
    };
    let idempotency_key = if idempotent::applies(&parts.method, trail.route.as_deref()) {
        match parts
            .headers
            .get(idempotent::HEADER)
            .map(idempotent::parse_key)
        {
            Some(Ok(key)) => Some(key),
            Some(Err(refused)) => return refused.into_response(),
            None => None,
        }
    } else {
        None
    };
    parts.extensions.insert(caller.clone());
    let request = Request::from_parts(parts, Body::from(body.clone()));
    match idempotency_key {
        Some(key) => {
            idempotent::run(&ctx.app.pool, &caller.scope(), &key, &body, request, next).await
        }
        None => next.run(request).await,
    }
}

/// Authenticates, limits and authorizes a request (`body`: what decides a body-dependent role);
/// records the caller on `trail`.
async fn admit(
    ctx: &ApiContext,
    trail: &mut Trail,
    headers: &HeaderMap,
    method: &Method,
    body: &[u8],
) -> Result<Caller, ApiError> {
    let access = &ctx.access;
    let caller = match access
        .authenticate(&ctx.app.pool, headers, trail.client)
        .await
    {
        Ok(caller) => caller,
        Err(refused) => {
            // Refused requests are limited per client address.
            access
                .check_rate(&limit_bucket(None, trail.client))
                .map_err(|retry_after_secs| ApiError::RateLimited { retry_after_secs })?;
            return Err(refused);
        }
    };
    trail.caller = Some(caller.clone());
    access
        .check_rate(&limit_bucket(caller.key_id.as_deref(), caller.client))
        .map_err(|retry_after_secs| ApiError::RateLimited { retry_after_secs })?;
    let needed = routes::required_role(method, trail.route.as_deref(), body);
    authorize(&caller, needed, method, trail)?;
    Ok(caller)
}

/// 403 when `caller`'s role is below `needed`.
fn authorize(
    caller: &Caller,
    needed: AccessRole,
    method: &Method,
    trail: &Trail,
) -> Result<(), ApiError> {
    if caller.role >= needed {
        return Ok(());
    }
    let route = trail.route.as_deref().unwrap_or(&trail.path);
    let who = caller
        .key_id
        .as_deref()
        .map_or_else(|| "this caller".to_owned(), |id| format!("key {id}"));
    Err(ApiError::Forbidden {
        message: format!(
            "{method} {route} needs the {needed} role; {who} has {}",
            caller.role
        ),
        required_role: needed.as_str(),
    })
}
