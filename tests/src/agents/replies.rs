//! Canned replies in each dialect, the least a real client accepts as an
//! answer (observed with the pinned clients; docs/agent-clients.md):
//! Anthropic Messages (JSON, or SSE `message_start` … `message_stop`) for
//! Claude Code and the Anthropic SDK; OpenAI Responses (JSON, or SSE ending in
//! `response.completed`; Codex prints only a message delivered by
//! `response.output_item.done`) for Codex and the OpenAI SDK.

use super::recorder::Recorded;
use serde_json::{json, Value};

/// Token counts every canned reply reports.
pub const INPUT_TOKENS: u64 = 12;
pub const OUTPUT_TOKENS: u64 = 4;

enum Dialect {
    Anthropic,
    Responses,
}

fn dialect(path: &str) -> Option<Dialect> {
    let path = path.split('?').next().unwrap_or("");
    match path {
        "/v1/messages" => Some(Dialect::Anthropic),
        "/v1/responses" => Some(Dialect::Responses),
        _ => None,
    }
}

/// (status, content type, body) answering `request` with `text`.
pub fn success(request: &Recorded, text: &str) -> (u16, &'static str, String) {
    let stream = request.body["stream"] == true;
    let model = request.body["model"].as_str().unwrap_or("unknown");
    match (dialect(&request.path), stream) {
        (Some(Dialect::Anthropic), false) => (200, "application/json", anthropic_message(model, text).to_string()),
        (Some(Dialect::Anthropic), true) => (200, "text/event-stream", anthropic_stream(model, text)),
        (Some(Dialect::Responses), false) => (200, "application/json", response(model, text).to_string()),
        (Some(Dialect::Responses), true) => (200, "text/event-stream", responses_stream(model, text)),
        (None, _) => failure(request, 404),
    }
}

/// (status, content type, body): `status` in the path's error envelope.
pub fn failure(request: &Recorded, status: u16) -> (u16, &'static str, String) {
    let message = format!("recorder answers {status}");
    let body = match dialect(&request.path) {
        Some(Dialect::Anthropic) => {
            let kind = match status {
                401 => "authentication_error",
                402 => "billing_error",
                403 => "permission_error",
                404 => "not_found_error",
                429 => "rate_limit_error",
                529 => "overloaded_error",
                400..=499 => "invalid_request_error",
                _ => "api_error",
            };
            json!({"type": "error", "error": {"type": kind, "message": message}})
        }
        _ => json!({"error": {"message": message, "type": "error", "code": status.to_string()}}),
    };
    (status, "application/json", body.to_string())
}

fn sse(events: &[(&str, Value)]) -> String {
    events.iter().map(|(name, data)| format!("event: {name}\ndata: {data}\n\n")).collect()
}

fn anthropic_message(model: &str, text: &str) -> Value {
    json!({
        "id": "msg_recorded", "type": "message", "role": "assistant", "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": OUTPUT_TOKENS},
    })
}

fn anthropic_stream(model: &str, text: &str) -> String {
    let mut start = anthropic_message(model, "");
    start["content"] = json!([]);
    start["stop_reason"] = Value::Null;
    start["usage"]["output_tokens"] = json!(1);
    sse(&[
        ("message_start", json!({"type": "message_start", "message": start})),
        ("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})),
        ("ping", json!({"type": "ping"})),
        ("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}})),
        ("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
        ("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": OUTPUT_TOKENS}})),
        ("message_stop", json!({"type": "message_stop"})),
    ])
}

fn output_message(text: &str) -> Value {
    json!({
        "id": "msg_recorded", "type": "message", "status": "completed", "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    })
}

fn response(model: &str, text: &str) -> Value {
    json!({
        "id": "resp_recorded", "object": "response", "created_at": 1_700_000_000, "status": "completed", "model": model,
        "output": [output_message(text)],
        "usage": {
            "input_tokens": INPUT_TOKENS, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": OUTPUT_TOKENS, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS,
        },
    })
}

fn responses_stream(model: &str, text: &str) -> String {
    let done = response(model, text);
    let mut started = done.clone();
    started["status"] = json!("in_progress");
    started["output"] = json!([]);
    started["usage"] = Value::Null;
    let item = output_message(text);
    let mut item_started = item.clone();
    item_started["status"] = json!("in_progress");
    item_started["content"] = json!([]);
    let part = &item["content"][0];
    let at = json!({"item_id": "msg_recorded", "output_index": 0, "content_index": 0});
    let events: Vec<(&str, Value)> = vec![
        ("response.created", json!({"response": started})),
        ("response.in_progress", json!({"response": started})),
        ("response.output_item.added", json!({"output_index": 0, "item": item_started})),
        ("response.content_part.added", merge(&at, json!({"part": {"type": "output_text", "text": "", "annotations": []}}))),
        ("response.output_text.delta", merge(&at, json!({"delta": text}))),
        ("response.output_text.done", merge(&at, json!({"text": text}))),
        ("response.content_part.done", merge(&at, json!({"part": part}))),
        ("response.output_item.done", json!({"output_index": 0, "item": item})),
        ("response.completed", json!({"response": done})),
    ];
    let numbered: Vec<(&str, Value)> = events
        .into_iter()
        .enumerate()
        .map(|(seq, (name, data))| (name, merge(&json!({"type": name, "sequence_number": seq}), data)))
        .collect();
    sse(&numbered)
}

fn merge(base: &Value, extra: Value) -> Value {
    let mut out = base.clone();
    if let (Some(out), Value::Object(extra)) = (out.as_object_mut(), extra) {
        out.extend(extra);
    }
    out
}
