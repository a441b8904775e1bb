//! An error the upstream reports after it has answered 200 — mid-stream, or
//! in a non-stream reply's body — passed on in the shape the client expects
//! from that dialect but with our words: the provider's free text can name
//! OpenRouter's own pages ("Add more using https://openrouter.ai/credits"),
//! its own account or its internals, and `metadata` carries the provider's
//! raw error. Only `message` changes and `metadata` goes; every other value
//! (codes, types, ids, `finish_reason`, `sequence_number`) is kept, so
//! clients read it as before (the JSON is written again: key order may change).

use super::errors::{status_of_anthropic_type, status_of_code};
use super::Dialect;
use crate::error::GatewayError;
use serde_json::{json, Value};

/// Replaces the upstream error's text in `reply` (a stream event's data or a
/// whole reply); whether there was one.
pub fn redact_upstream_error(dialect: Dialect, reply: &mut Value) -> bool {
    let nested = reply.get("error").is_some_and(|e| !e.is_null());
    let error = match dialect {
        // Chat: `error: {code, message, metadata}` (the code a status, or a
        // string such as `server_error`); Anthropic: `error: {type, message}`.
        Dialect::Chat | Dialect::Messages if nested => reply.get_mut("error"),
        // Responses: `response.failed` carries it in `response.error`; an
        // `error` event carries `code` and `message` itself.
        Dialect::Responses if reply.pointer("/response/error").is_some_and(|e| !e.is_null()) => reply.pointer_mut("/response/error"),
        Dialect::Responses if nested => reply.get_mut("error"),
        Dialect::Responses if reply.get("type").and_then(Value::as_str) == Some("error") => Some(&mut *reply),
        _ => None,
    };
    let Some(error) = error else { return false };
    if !error.is_object() {
        // A bare string or number: only our words, in the envelope's shape.
        *error = json!({"code": 502});
    }
    let Value::Object(error) = error else { unreachable!("made an object above") };
    let code = error.get("code");
    let status = match code.and_then(Value::as_u64) {
        Some(status) => u16::try_from(status).unwrap_or(502),
        None if dialect == Dialect::Messages => status_of_anthropic_type(error.get("type").and_then(Value::as_str).unwrap_or_default()),
        None => status_of_code(code.and_then(Value::as_str).unwrap_or_default()),
    };
    error.insert("message".into(), Value::String(message_for(status)));
    error.remove("metadata");
    true
}

/// What the client is told of an upstream failure with `status` after a 200.
fn message_for(status: u16) -> String {
    match status {
        429 => "The model provider is rate limiting this model: retry shortly, or use another model.".into(),
        400..=499 => GatewayError::UpstreamRejected { status }.message(),
        _ => "The model provider failed while answering: retry, or use another model.".into(),
    }
}

/// The event's own lines but its data, then the new data.
pub(super) fn rebuilt(event: &[u8], data: &Value) -> Vec<u8> {
    let text = String::from_utf8_lossy(event);
    let mut out: String = text.lines().filter(|l| !l.is_empty() && !l.starts_with("data:")).map(|l| format!("{l}\n")).collect();
    out.push_str(&format!("data: {data}\n\n"));
    out.into_bytes()
}
