//! The Anthropic Messages API as OpenRouter serves it (`/messages`): key by
//! `Authorization: Bearer` or `x-api-key`; `max_tokens` required; a
//! `message` reply (`msg_` + the generation id) whose usage adds OpenRouter's
//! `cost`; named SSE events (`message_start`, `content_block_*`, `ping`,
//! `message_delta`, `message_stop`, `error`); errors in Anthropic's
//! `{"type":"error","error":{"type","message"}}` envelope.

use super::plan::{IoBilling, Plan};
use super::prompt::{call_bytes, text_parts, Ask};
use super::{sse, Refusal, Wire};
use crate::util::{bearer, json_response};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;
use serde_json::{json, Value};

pub struct Messages;

#[derive(Serialize)]
struct Usage {
    input_tokens: u64,
    output_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
    #[serde(flatten)]
    billing: IoBilling,
}

/// The `message` object; `U` is full usage in a reply, the opening counts in `message_start`.
#[derive(Serialize)]
struct Message<U: Serialize> {
    id: String,
    r#type: &'static str,
    role: &'static str,
    model: &'static str,
    content: Value,
    stop_reason: Option<&'static str>,
    stop_sequence: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<U>,
}

#[derive(Serialize)]
struct Start<U: Serialize> {
    r#type: &'static str,
    message: Message<U>,
}

#[derive(Serialize)]
struct Delta {
    r#type: &'static str,
    delta: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

fn usage(plan: &Plan, output_tokens: u64) -> Option<Usage> {
    (!plan.faults.no_usage).then(|| Usage {
        input_tokens: plan.prompt_tokens,
        output_tokens,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
        billing: plan.io_billing(output_tokens),
    })
}

fn message<U: Serialize>(plan: &Plan, content: Value, stop_reason: Option<&'static str>, usage: Option<U>) -> Message<U> {
    Message {
        id: format!("msg_{}", plan.id),
        r#type: "message",
        role: "assistant",
        model: plan.model.id,
        content,
        stop_reason,
        stop_sequence: None,
        usage,
    }
}

fn stop_reason(plan: &Plan) -> &'static str {
    if plan.capped {
        "max_tokens"
    } else {
        "end_turn"
    }
}

/// `message_delta`: how the message stopped (`None` before an error) and the final usage.
fn message_delta(plan: &Plan, stop: Option<&'static str>, output_tokens: u64) -> String {
    let delta = json!({ "stop_reason": stop, "stop_sequence": null });
    sse(Some("message_delta"), &Delta { r#type: "message_delta", delta, usage: usage(plan, output_tokens) })
}

/// Anthropic's error type for an HTTP status.
fn error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        408 | 504 | 524 => "timeout_error",
        503 | 529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

fn envelope(status: u16, message: &str) -> Value {
    json!({ "type": "error", "error": { "type": error_type(status), "message": message } })
}

impl Wire for Messages {
    /// Anthropic's SDKs send `x-api-key`; Claude Code with a token sends a bearer.
    fn key<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        let api_key = || headers.get("x-api-key")?.to_str().ok().map(str::trim).filter(|k| !k.is_empty());
        bearer(headers).or_else(api_key)
    }

    /// Texts are `system` and message contents (strings, `text` blocks and
    /// the text of `tool_result` blocks); `tool_use` blocks count by name and input.
    fn read<'a>(&self, req: &'a Value) -> Ask<'a> {
        let mut ask = Ask::new(req, &["max_tokens"]);
        let system = text_parts(req.get("system"), &["text"]);
        ask.turns = u64::from(!system.is_empty());
        ask.texts = system;
        let messages = req.get("messages").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
        for m in messages {
            ask.turns += 1;
            ask.texts.extend(text_parts(m.get("content"), &["text"]));
            let blocks = m.get("content").and_then(Value::as_array).into_iter().flatten();
            for b in blocks {
                match b.get("type").and_then(Value::as_str) {
                    Some("tool_use") => ask.call_bytes += call_bytes(b, &["/name", "/input"]),
                    Some("tool_result") => ask.texts.extend(text_parts(b.get("content"), &["text"])),
                    _ => {}
                }
            }
        }
        ask
    }

    fn validate(&self, req: &Value) -> Result<(), Refusal> {
        if req.get("max_tokens").and_then(Value::as_u64).is_none() {
            return Err(Refusal::new(400, "max_tokens: Field required"));
        }
        if !req.get("messages").is_some_and(Value::is_array) {
            return Err(Refusal::new(400, "messages: Field required"));
        }
        Ok(())
    }

    fn error(&self, status: u16, message: &str, _metadata: Option<Value>) -> Response {
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        json_response(code, &envelope(status, message))
    }

    fn reply(&self, plan: &Plan) -> Response {
        let n = plan.completion_tokens;
        let content = json!([{ "type": "text", "text": plan.text(n) }]);
        json_response(StatusCode::OK, &message(plan, content, Some(stop_reason(plan)), usage(plan, n)))
    }

    /// `message_start` (usage so far: the input), the text block's start, a `ping`.
    fn opening(&self, plan: &Plan) -> String {
        let counts = json!({ "input_tokens": plan.prompt_tokens, "output_tokens": 0,
            "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0 });
        let start = message(plan, json!([]), None, (!plan.faults.no_usage).then_some(counts));
        let block = json!({ "type": "content_block_start", "index": 0, "content_block": { "type": "text", "text": "" } });
        sse(Some("message_start"), &Start { r#type: "message_start", message: start })
            + &sse(Some("content_block_start"), &block)
            + &sse(Some("ping"), &json!({ "type": "ping" }))
    }

    fn delta(&self, plan: &Plan, i: u64) -> String {
        let delta = json!({ "type": "content_block_delta", "index": 0,
            "delta": { "type": "text_delta", "text": plan.token(i) } });
        sse(Some("content_block_delta"), &delta)
    }

    /// An `error` event; with `error_usage`, a `message_delta` first carrying
    /// the usage of what was sent.
    fn failure(&self, plan: &Plan, sent: u64) -> String {
        let usage = if plan.faults.error_usage { message_delta(plan, None, sent) } else { String::new() };
        usage + &sse(Some("error"), &envelope(502, crate::faults::MID_STREAM_ERROR))
    }

    fn closing(&self, plan: &Plan) -> String {
        sse(Some("content_block_stop"), &json!({ "type": "content_block_stop", "index": 0 }))
            + &message_delta(plan, Some(stop_reason(plan)), plan.completion_tokens)
            + &sse(Some("message_stop"), &json!({ "type": "message_stop" }))
    }
}
