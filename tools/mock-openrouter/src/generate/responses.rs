//! The OpenAI Responses API as OpenRouter serves it (`/responses`):
//! stateless, so `previous_response_id` is refused (the whole conversation
//! goes in `input`) and nothing is stored whatever `store` says; a `response`
//! reply (`resp_` + the generation id) whose usage adds OpenRouter's `cost`;
//! named SSE events, each with a `sequence_number` counting from 0, ending in
//! `response.completed` (or `response.incomplete` when `max_output_tokens`
//! cut the answer, or `response.failed`); errors in OpenRouter's Responses
//! envelope `{"error":{"code","message"},"metadata"}`.

use super::plan::{IoBilling, Plan};
use super::prompt::{call_bytes, text_parts, Ask};
use super::{sse, Refusal, Wire};
use crate::util::json_response;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use serde_json::{json, Value};

pub struct Responses;

/// Content part types whose `text` the model reads.
const TEXT_PARTS: &[&str] = &["input_text", "output_text", "text"];
/// Events before the first delta (`created`, `in_progress`, item and part added).
const OPENING_EVENTS: u64 = 4;

#[derive(Serialize)]
struct Usage {
    input_tokens: u64,
    input_tokens_details: Value,
    output_tokens: u64,
    output_tokens_details: Value,
    total_tokens: u64,
    #[serde(flatten)]
    billing: IoBilling,
}

/// The `response` object, typed so `Usd` amounts are written exactly.
#[derive(Serialize)]
struct ResponseObject {
    id: String,
    object: &'static str,
    created_at: u64,
    model: &'static str,
    status: &'static str,
    error: Value,
    incomplete_details: Value,
    output: Value,
    store: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

#[derive(Serialize)]
struct ResponseEvent {
    r#type: &'static str,
    sequence_number: u64,
    response: ResponseObject,
}

/// The finished answer's status: `completed`, or `incomplete` when the
/// output ceiling cut it.
fn finished(plan: &Plan) -> &'static str {
    if plan.capped {
        "incomplete"
    } else {
        "completed"
    }
}

fn response(plan: &Plan, status: &'static str, output: Value, usage_tokens: Option<u64>) -> ResponseObject {
    let usage = usage_tokens.filter(|_| !plan.faults.no_usage).map(|n| Usage {
        input_tokens: plan.prompt_tokens,
        input_tokens_details: json!({ "cached_tokens": 0 }),
        output_tokens: n,
        output_tokens_details: json!({ "reasoning_tokens": 0 }),
        total_tokens: plan.prompt_tokens + n,
        billing: plan.io_billing(n),
    });
    let incomplete_details = if status == "incomplete" { json!({ "reason": "max_output_tokens" }) } else { Value::Null };
    let error = if status == "failed" { json!({ "code": "server_error", "message": crate::faults::MID_STREAM_ERROR }) } else { Value::Null };
    ResponseObject {
        id: format!("resp_{}", plan.id),
        object: "response",
        created_at: plan.created,
        model: plan.model.id,
        status,
        error,
        incomplete_details,
        output,
        store: false,
        usage,
    }
}

fn item_id(plan: &Plan) -> String {
    format!("msg_{}", plan.id)
}

fn part(text: &str) -> Value {
    json!({ "type": "output_text", "text": text, "annotations": [] })
}

fn item(plan: &Plan, status: &str, content: Value) -> Value {
    json!({ "type": "message", "id": item_id(plan), "status": status, "role": "assistant", "content": content })
}

/// An event about the text part (`output_index` 0, `content_index` 0) with `fields` added.
fn part_event(plan: &Plan, name: &'static str, seq: u64, mut fields: Value) -> String {
    fields["type"] = json!(name);
    fields["sequence_number"] = json!(seq);
    fields["item_id"] = json!(item_id(plan));
    fields["output_index"] = json!(0);
    fields["content_index"] = json!(0);
    sse(Some(name), &fields)
}

fn response_event(name: &'static str, seq: u64, response: ResponseObject) -> String {
    sse(Some(name), &ResponseEvent { r#type: name, sequence_number: seq, response })
}

/// OpenRouter's Responses error code for an HTTP status.
fn error_code(status: u16) -> &'static str {
    match status {
        400 | 413 | 422 => "invalid_prompt",
        429 => "rate_limit_exceeded",
        _ => "server_error",
    }
}

impl Wire for Responses {
    /// Texts are `instructions` and the input: a string, or items whose
    /// content is text parts (`function_call_output` items count their
    /// output; `function_call` items their name and arguments).
    fn read<'a>(&self, req: &'a Value) -> Ask<'a> {
        let mut ask = Ask::new(req, &["max_output_tokens"]);
        let instructions = text_parts(req.get("instructions"), TEXT_PARTS);
        ask.turns = u64::from(!instructions.is_empty());
        ask.texts = instructions;
        match req.get("input") {
            Some(Value::String(s)) => {
                ask.texts.push(s);
                ask.turns += 1;
            }
            Some(Value::Array(items)) => {
                for it in items {
                    ask.turns += 1;
                    match it.get("type").and_then(Value::as_str) {
                        Some("function_call") => ask.call_bytes += call_bytes(it, &["/name", "/arguments"]),
                        Some("function_call_output") => ask.texts.extend(text_parts(it.get("output"), TEXT_PARTS)),
                        _ => ask.texts.extend(text_parts(it.get("content"), TEXT_PARTS)),
                    }
                }
            }
            _ => {}
        }
        ask
    }

    fn validate(&self, req: &Value) -> Result<(), Refusal> {
        if req.get("previous_response_id").is_some_and(|v| !v.is_null()) {
            let message = "previous_response_id is not supported: this API is stateless, send the whole conversation in input";
            return Err(Refusal::new(400, message));
        }
        Ok(())
    }

    fn error(&self, status: u16, message: &str, metadata: Option<Value>) -> Response {
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = json!({ "error": { "code": error_code(status), "message": message }, "metadata": metadata });
        json_response(code, &body)
    }

    fn reply(&self, plan: &Plan) -> Response {
        let n = plan.completion_tokens;
        let output = json!([item(plan, finished(plan), json!([part(&plan.text(n))]))]);
        json_response(StatusCode::OK, &response(plan, finished(plan), output, Some(n)))
    }

    /// `status: "failed"` with the error and what was generated.
    fn failed_reply(&self, plan: &Plan, sent: u64) -> Option<Response> {
        let output = json!([item(plan, "incomplete", json!([part(&plan.text(sent))]))]);
        let usage = plan.faults.error_usage.then_some(sent);
        Some(json_response(StatusCode::OK, &response(plan, "failed", output, usage)))
    }

    fn opening(&self, plan: &Plan) -> String {
        let item_added = json!({ "type": "response.output_item.added", "sequence_number": 2,
            "output_index": 0, "item": item(plan, "in_progress", json!([])) });
        response_event("response.created", 0, response(plan, "in_progress", json!([]), None))
            + &response_event("response.in_progress", 1, response(plan, "in_progress", json!([]), None))
            + &sse(Some("response.output_item.added"), &item_added)
            + &part_event(plan, "response.content_part.added", 3, json!({ "part": part("") }))
    }

    fn delta(&self, plan: &Plan, i: u64) -> String {
        part_event(plan, "response.output_text.delta", OPENING_EVENTS + i, json!({ "delta": plan.token(i) }))
    }

    /// `response.failed`, with the usage of what was sent under `error_usage`.
    fn failure(&self, plan: &Plan, sent: u64) -> String {
        let output = json!([item(plan, "incomplete", json!([part(&plan.text(sent))]))]);
        let usage = plan.faults.error_usage.then_some(sent);
        response_event("response.failed", OPENING_EVENTS + sent, response(plan, "failed", output, usage))
    }

    fn closing(&self, plan: &Plan) -> String {
        let n = plan.completion_tokens;
        let seq = OPENING_EVENTS + n;
        let text = plan.text(n);
        let status = finished(plan);
        let done = item(plan, status, json!([part(&text)]));
        let item_done = json!({ "type": "response.output_item.done", "sequence_number": seq + 2, "output_index": 0, "item": done });
        let last = if plan.capped { "response.incomplete" } else { "response.completed" };
        part_event(plan, "response.output_text.done", seq, json!({ "text": text }))
            + &part_event(plan, "response.content_part.done", seq + 1, json!({ "part": part(&text) }))
            + &sse(Some("response.output_item.done"), &item_done)
            + &response_event(last, seq + 3, response(plan, status, json!([done]), Some(n)))
    }
}
