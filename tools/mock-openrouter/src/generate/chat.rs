//! OpenAI Chat Completions as OpenRouter serves it (`/chat/completions`):
//! `messages` in, a `chat.completion` (or `chat.completion.chunk` frames
//! ending in `data: [DONE]`) out, usage with OpenRouter's `cost`, errors in
//! OpenRouter's `{"error":{"code","message","metadata"}}` envelope.

use super::plan::Plan;
use super::prompt::{call_bytes, text_parts, Ask};
use super::{sse, Wire};
use crate::money::Usd;
use crate::util::{error_response, json_response};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use serde_json::{json, Value};

pub struct Chat;

#[derive(Serialize)]
struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cost: Option<Usd>,
    is_byok: bool,
    prompt_tokens_details: Value,
    completion_tokens_details: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    cost_details: Option<CostDetails>,
}

#[derive(Serialize)]
struct CostDetails {
    upstream_inference_cost: Usd,
    upstream_inference_prompt_cost: Usd,
    upstream_inference_completions_cost: Usd,
}

/// Typed (not `json!`) so `Usd` amounts are written exactly.
#[derive(Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'static str,
    provider: &'static str,
    system_fingerprint: &'static str,
    choices: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'static str,
    provider: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Value>,
    choices: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

fn usage(plan: &Plan, completion_tokens: u64) -> Usage {
    let c = plan.costs(completion_tokens);
    let with_cost = plan.reports_cost();
    Usage {
        prompt_tokens: plan.prompt_tokens,
        completion_tokens,
        total_tokens: plan.prompt_tokens + completion_tokens,
        cost: with_cost.then_some(c.charged),
        is_byok: plan.faults.byok,
        prompt_tokens_details: json!({ "cached_tokens": 0, "cache_write_tokens": 0 }),
        completion_tokens_details: json!({ "reasoning_tokens": 0 }),
        cost_details: with_cost.then_some(CostDetails {
            upstream_inference_cost: c.upstream,
            upstream_inference_prompt_cost: c.prompt,
            upstream_inference_completions_cost: c.completion,
        }),
    }
}

fn chunk(plan: &Plan, choices: Value, error: Option<Value>, usage: Option<Usage>) -> String {
    let chunk = Chunk {
        id: &plan.id,
        object: "chat.completion.chunk",
        created: plan.created,
        model: plan.model.id,
        provider: plan.route.provider,
        error,
        choices,
        usage,
    };
    sse(None, &chunk)
}

/// A provider's failure as OpenRouter passes it on (the provider's own words
/// and its raw error in `metadata`).
fn provider_error() -> Value {
    let metadata = json!({ "provider_name": "MockProvider", "raw": "{\"detail\":\"worker 10.0.0.7 crashed\"}" });
    json!({ "code": 502, "message": crate::faults::MID_STREAM_ERROR, "metadata": metadata })
}

/// A non-stream answer of `n` tokens.
fn completion<'a>(plan: &'a Plan, n: u64, finish: &str, error: Option<Value>, usage: Option<Usage>) -> Completion<'a> {
    Completion {
        id: &plan.id,
        object: "chat.completion",
        created: plan.created,
        model: plan.model.id,
        provider: plan.route.provider,
        system_fingerprint: "fp_mock",
        choices: json!([{
            "index": 0,
            "message": { "role": "assistant", "content": plan.text(n) },
            "finish_reason": finish,
            "native_finish_reason": finish,
            "logprobs": null,
        }]),
        error,
        usage,
    }
}

fn choice(delta: Value, finish_reason: Option<&str>) -> Value {
    json!({
        "index": 0,
        "delta": delta,
        "finish_reason": finish_reason,
        "native_finish_reason": finish_reason,
        "logprobs": null,
    })
}

impl Wire for Chat {
    /// Texts are message contents (strings and `text` parts); earlier tool
    /// calls count by their names and arguments.
    fn read<'a>(&self, req: &'a Value) -> Ask<'a> {
        let mut ask = Ask::new(req, &["max_completion_tokens", "max_tokens"]);
        let messages = req.get("messages").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
        for m in messages {
            ask.texts.extend(text_parts(m.get("content"), &["text"]));
            let calls = m.get("tool_calls").and_then(Value::as_array).into_iter().flatten();
            ask.call_bytes += calls.map(|c| call_bytes(c, &["/function/name", "/function/arguments"])).sum::<usize>();
        }
        ask.turns = messages.len() as u64;
        ask
    }

    fn error(&self, status: u16, message: &str, metadata: Option<Value>) -> Response {
        error_response(status, message, metadata)
    }

    fn reply(&self, plan: &Plan) -> Response {
        let n = plan.completion_tokens;
        let usage = (!plan.faults.no_usage).then(|| usage(plan, n));
        json_response(StatusCode::OK, &completion(plan, n, plan.finish_reason(), None, usage))
    }

    /// The answer so far, `finish_reason: "error"` and a top-level `error`.
    fn failed_reply(&self, plan: &Plan, sent: u64) -> Option<Response> {
        let usage = plan.faults.error_usage.then(|| usage(plan, sent));
        Some(json_response(StatusCode::OK, &completion(plan, sent, "error", Some(provider_error()), usage)))
    }

    fn opening(&self, _plan: &Plan) -> String {
        String::new()
    }

    fn delta(&self, plan: &Plan, i: u64) -> String {
        let mut delta = json!({ "content": plan.token(i) });
        if i == 0 {
            delta["role"] = json!("assistant");
        }
        // OpenRouter style puts finish_reason on the last content frame and
        // repeats it in the usage frame; OpenAI style sends it separately.
        let last = i + 1 == plan.completion_tokens && !plan.faults.openai_usage;
        chunk(plan, json!([choice(delta, last.then_some(plan.finish_reason()))]), None, None)
    }

    fn failure(&self, plan: &Plan, sent: u64) -> String {
        let error = provider_error();
        let usage = plan.faults.error_usage.then(|| usage(plan, sent));
        let choices = json!([choice(json!({ "content": "" }), Some("error"))]);
        chunk(plan, choices, Some(error), usage)
    }

    /// OpenRouter's usage frame has a one-element `choices` (empty delta,
    /// the finish reason again); `openai_usage=1` sends OpenAI's instead: a
    /// finish frame, then usage with `choices: []`.
    fn closing(&self, plan: &Plan) -> String {
        let usage = (!plan.faults.no_usage).then(|| usage(plan, plan.completion_tokens));
        let last = json!([choice(json!({}), Some(plan.finish_reason()))]);
        let mut out = if plan.faults.openai_usage {
            let usage_frame = usage.map(|u| chunk(plan, json!([]), None, Some(u)));
            chunk(plan, last, None, None) + &usage_frame.unwrap_or_default()
        } else {
            chunk(plan, last, None, usage)
        };
        out.push_str("data: [DONE]\n\n");
        out
    }
}
