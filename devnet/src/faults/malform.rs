//! Corrupting the body of an answer (see [`FaultProfile::malform_rate`]): a block's number
//! bumped, its hash removed, its parent hash changed, or the JSON cut short.

use std::sync::atomic::Ordering;

use axum::{
    body::{Body, Bytes},
    http::{HeaderValue, StatusCode, header},
    response::Response,
};
use serde_json::{Map, Value};

#[cfg(doc)]
use super::FaultProfile;
use super::{BODY_LIMIT, FaultInjector, TRUNCATED_ANSWER};

/// Corrupts the body of `response` if it is an HTTP 200 (see [`FaultProfile::malform_rate`]);
/// `choice`, uniform in `0..4`, picks the damage.
pub(super) async fn malform(
    injector: &FaultInjector,
    response: Response,
    choice: usize,
) -> Response {
    if response.status() != StatusCode::OK {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // An answer that cannot be read counts as one that cannot be parsed.
    let bytes = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .unwrap_or_default();
    let (corrupted, kind) = corrupt(&bytes, choice);
    injector.inner.malformed.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(target: "blockfill::faults", kind = kind.name(), "corrupting an answer");
    parts.headers.remove(header::TRANSFER_ENCODING);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(corrupted.len()));
    Response::from_parts(parts, Body::from(corrupted))
}

/// The kinds of damage done to an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Malformation {
    /// A block's `number` (or a log's `blockNumber`) plus one.
    WrongNumber,
    /// A block without `hash`.
    MissingHash,
    /// A block whose `parentHash` has another last hex digit.
    BrokenParent,
    /// The body replaced by [`TRUNCATED_ANSWER`].
    Unparsable,
}

impl Malformation {
    /// The choices for an answer with a block.
    pub(super) const BLOCK: [Malformation; 4] = [
        Malformation::WrongNumber,
        Malformation::MissingHash,
        Malformation::BrokenParent,
        Malformation::Unparsable,
    ];
    /// The choices for an answer with logs (and no block).
    pub(super) const LOGS: [Malformation; 2] =
        [Malformation::WrongNumber, Malformation::Unparsable];

    pub(super) fn name(self) -> &'static str {
        match self {
            Malformation::WrongNumber => "wrong_number",
            Malformation::MissingHash => "missing_hash",
            Malformation::BrokenParent => "broken_parent",
            Malformation::Unparsable => "unparsable",
        }
    }
}

/// The JSON-RPC answer `body` with one thing broken, and what; `choice` (uniform in `0..4`)
/// picks the damage.
pub(super) fn corrupt(body: &[u8], choice: usize) -> (Bytes, Malformation) {
    if let Ok(mut answer) = serde_json::from_slice::<Value>(body)
        && let Some(kind) = damage(&mut answer, choice)
    {
        return (Bytes::from(answer.to_string()), kind);
    }
    (
        Bytes::from_static(TRUNCATED_ANSWER.as_bytes()),
        Malformation::Unparsable,
    )
}

/// Breaks the first block (or else the first logs) in the JSON-RPC `answer` (a response or a
/// batch of them) in the way `choice` picks; `None` when that is [`Malformation::Unparsable`]
/// or there is nothing to break that way.
pub(super) fn damage(answer: &mut Value, choice: usize) -> Option<Malformation> {
    let responses = match answer {
        Value::Array(responses) => responses.as_mut_slice(),
        single => std::slice::from_mut(single),
    };
    let block = responses.iter().position(|response| {
        response
            .get("result")
            .and_then(Value::as_object)
            .is_some_and(|result| result.contains_key("number"))
    });
    if let Some(i) = block {
        let block = responses[i].get_mut("result")?.as_object_mut()?;
        let kind = Malformation::BLOCK[choice % Malformation::BLOCK.len()];
        return corrupt_block(block, kind).then_some(kind);
    }
    let logs = responses
        .iter_mut()
        .find_map(|response| response.get_mut("result")?.as_array_mut())?;
    match Malformation::LOGS[choice % Malformation::LOGS.len()] {
        Malformation::WrongNumber => {
            let log = logs.first_mut()?.as_object_mut()?;
            bump_quantity(log.get_mut("blockNumber")?).then_some(Malformation::WrongNumber)
        }
        _ => None,
    }
}

/// Breaks `block` in the way `kind` says; whether it could.
fn corrupt_block(block: &mut Map<String, Value>, kind: Malformation) -> bool {
    match kind {
        Malformation::WrongNumber => block.get_mut("number").is_some_and(bump_quantity),
        Malformation::MissingHash => block.remove("hash").is_some(),
        Malformation::BrokenParent => {
            block.get_mut("parentHash").is_some_and(|parent| {
                match parent.as_str().and_then(flip_last_hex_digit) {
                    Some(flipped) => {
                        *parent = Value::String(flipped);
                        true
                    }
                    None => false,
                }
            })
        }
        Malformation::Unparsable => false,
    }
}

/// Adds one to a hex quantity (`"0x1f"` becomes `"0x20"`); whether `value` was one.
pub(super) fn bump_quantity(value: &mut Value) -> bool {
    let next = value
        .as_str()
        .and_then(|hex| hex.strip_prefix("0x"))
        .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_hexdigit()))
        .and_then(|digits| u128::from_str_radix(digits, 16).ok())
        .and_then(|n| n.checked_add(1));
    match next {
        Some(next) => {
            *value = Value::String(format!("0x{next:x}"));
            true
        }
        None => false,
    }
}

/// `hex` (`0x` and hex digits) with its last digit changed to the next one (`a` to `b`, `f` to
/// `0`), or `None` if it is not hex.
pub(super) fn flip_last_hex_digit(hex: &str) -> Option<String> {
    let digits = hex.strip_prefix("0x")?;
    let last = digits.chars().last()?;
    let value = last.to_digit(16)?;
    let mut flipped = std::char::from_digit((value + 1) % 16, 16)?;
    if last.is_ascii_uppercase() {
        flipped = flipped.to_ascii_uppercase();
    }
    let mut out = hex[..hex.len() - 1].to_owned();
    out.push(flipped);
    Some(out)
}
