//! The audit trail of the access layer: what a mutation request was ([`Trail`]), a short summary
//! of its body ([`summarize`], URLs redacted), and the row recorded after the answer ([`record`]).
//! A failure to record is logged at error; the answer stays as it was.

use std::net::IpAddr;

use axum::{
    body::Body,
    http::{Method, StatusCode},
    response::Response,
};
use blockfill_activities::{
    redact_url,
    store::audit::{self, AuditRecord},
};
use sea_orm::sqlx::PgPool;
use serde_json::Value;

use super::Caller;

/// Most characters of a summary.
const SUMMARY_CHARS: usize = 2_048;
/// Most bytes of an error answer read for its `code`.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// What the audit row of a request says, filled in as the request is handled.
#[derive(Debug, Clone)]
pub(super) struct Trail {
    pub(super) method: Method,
    pub(super) route: Option<String>,
    pub(super) path: String,
    pub(super) client: Option<IpAddr>,
    pub(super) caller: Option<Caller>,
    pub(super) summary: Option<String>,
}

/// A body as the audit log shows it: its JSON, compact, every URL redacted, at most
/// [`SUMMARY_CHARS`] characters; `None` when empty.
pub(super) fn summarize(body: &[u8]) -> Option<String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(mut json) => {
            redact_urls(&mut json);
            json.to_string()
        }
        Err(_) => format!("<{} bytes, not JSON>", body.len()),
    };
    Some(trim(&text, SUMMARY_CHARS))
}

/// Replaces every string that holds a URL (`scheme://…`) with its redacted form.
fn redact_urls(value: &mut Value) {
    match value {
        Value::String(s) if s.contains("://") => *s = redact_url(s),
        Value::Array(items) => items.iter_mut().for_each(redact_urls),
        Value::Object(fields) => fields.values_mut().for_each(redact_urls),
        _ => {}
    }
}

fn trim(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// The result code of an answer without a JSON `code`: by its status.
fn code_for(status: StatusCode) -> String {
    match status.as_u16() {
        400 => "bad_request".into(),
        401 => "unauthorized".into(),
        403 => "forbidden".into(),
        404 => "not_found".into(),
        405 => "method_not_allowed".into(),
        408 => "timeout".into(),
        409 => "conflict".into(),
        413 => "payload_too_large".into(),
        415 => "unsupported_media_type".into(),
        422 => "unprocessable".into(),
        429 => "rate_limited".into(),
        503 => "unavailable".into(),
        500..=599 => "internal".into(),
        other => format!("http_{other}"),
    }
}

/// Records `trail` with `response`'s status and result code (`ok`, or the error's `code`), then
/// answers `response` unchanged.
pub(super) async fn record(pool: &PgPool, trail: Trail, response: Response) -> Response {
    let status = response.status();
    let (parts, body) = response.into_parts();
    let (result, body) = if status.is_success() || status.is_redirection() {
        ("ok".to_owned(), body)
    } else {
        match axum::body::to_bytes(body, ERROR_BODY_LIMIT).await {
            Ok(bytes) => {
                let code = serde_json::from_slice::<Value>(&bytes)
                    .ok()
                    .and_then(|json| json["code"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| code_for(status));
                (code, Body::from(bytes))
            }
            Err(_) => (code_for(status), Body::empty()),
        }
    };
    let caller = trail.caller.as_ref();
    let row = AuditRecord {
        key_id: caller.and_then(|c| c.key_id.clone()),
        auth: caller.map_or("none", |c| c.auth.as_str()).to_owned(),
        role: caller.map(|c| c.role.as_str().to_owned()),
        method: trail.method.to_string(),
        route: trail.route,
        path: trail.path,
        summary: trail.summary,
        status: i32::from(status.as_u16()),
        result,
        client_address: trail.client.map(|ip| ip.to_string()),
    };
    if let Err(e) = audit::record(pool, &row).await {
        tracing::error!(target: "blockfill::api::audit", error = %e, method = %row.method, path = %row.path, status = row.status, "cannot record the audit row of a request");
    }
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_redact_urls_and_stay_short() {
        let body = br#"{"name":"a","rpc_urls":["https://rpc.example/v2/SECRETKEY",{"url":"https://user:pw@x.example"}]}"#;
        let summary = summarize(body).expect("a summary");
        assert!(!summary.contains("SECRETKEY"), "{summary}");
        assert!(!summary.contains("pw@"), "{summary}");
        assert!(summary.contains("https://rpc.example/…"), "{summary}");

        let long = format!(r#"{{"name":"{}"}}"#, "x".repeat(5_000));
        let summary = summarize(long.as_bytes()).expect("a summary");
        assert_eq!(summary.chars().count(), SUMMARY_CHARS + 1);
        assert!(summary.ends_with('…'));

        assert_eq!(summarize(b""), None);
        assert_eq!(
            summarize(b"not json").as_deref(),
            Some("<8 bytes, not JSON>")
        );
    }
}
