//! `POST /chat/completions`: deterministic completions priced exactly from
//! the catalogue, streamed or not, with the faults of `faults.rs` applied.

use crate::catalogue::ModelSpec;
use crate::faults::{aborted_response, injected_status_response, Faults};
use crate::generation::Generation;
use crate::money::Usd;
use crate::util::{bearer, error_response, iso8601, json_response, now_ms, now_secs, unauthorized};
use crate::{App, GenerationId};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Extension;
use serde::Serialize;
use serde_json::{json, Value};
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

mod request;
mod routing;
mod stream;
use request::{count_prompt, message_texts, pick_model, requested_cap};
use routing::Route;
use stream::run_stream;

const DEFAULT_COMPLETION_TOKENS: u64 = 8;
const KEEPALIVE: &str = ": OPENROUTER PROCESSING\n\n";
/// Lets hyper flush frames already handed over before we break the
/// connection, so the client really sees N frames then a drop.
const FLUSH_GRACE: Duration = Duration::from_millis(50);

/// Everything about the answer, fixed before any byte is sent.
struct Plan {
    id: String,
    model: &'static ModelSpec,
    created: u64,
    started_ms: u64,
    /// The caller's bearer, for charging mock-issued keys.
    token: String,
    prompt_tokens: u64,
    completion_tokens: u64,
    finish_reason: &'static str,
    faults: Faults,
    /// The provider routing chose and its price multiple.
    route: Route,
}

struct Costs {
    prompt: Usd,
    completion: Usd,
    /// The provider's charge.
    upstream: Usd,
    /// What OpenRouter bills the key: the upstream charge, or a 5% fee (BYOK).
    charged: Usd,
}

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

impl Plan {
    fn costs(&self, completion_tokens: u64) -> Costs {
        let prompt = self.model.prompt_price().times(self.prompt_tokens).times(self.route.factor);
        let completion = self.model.completion_price().times(completion_tokens).times(self.route.factor);
        let upstream = prompt + completion;
        let charged = if self.faults.byok {
            upstream.ratio(5, 100)
        } else {
            upstream
        };
        Costs {
            prompt,
            completion,
            upstream,
            charged,
        }
    }

    fn usage(&self, completion_tokens: u64) -> Usage {
        let c = self.costs(completion_tokens);
        let with_cost = !self.faults.no_cost;
        Usage {
            prompt_tokens: self.prompt_tokens,
            completion_tokens,
            total_tokens: self.prompt_tokens + completion_tokens,
            cost: with_cost.then_some(c.charged),
            is_byok: self.faults.byok,
            prompt_tokens_details: json!({ "cached_tokens": 0, "cache_write_tokens": 0 }),
            completion_tokens_details: json!({ "reasoning_tokens": 0 }),
            cost_details: with_cost.then_some(CostDetails {
                upstream_inference_cost: c.upstream,
                upstream_inference_prompt_cost: c.prompt,
                upstream_inference_completions_cost: c.completion,
            }),
        }
    }

    fn text(&self, tokens: u64) -> String {
        (0..tokens).map(|i| self.token(i)).collect()
    }

    /// Token `i`'s text, padded to `pad` bytes when asked (the first one is
    /// `image_bytes` long when asked).
    fn token(&self, i: u64) -> String {
        if let (0, Some(n)) = (i, self.faults.image_bytes) {
            return "A".repeat(n as usize);
        }
        let mut t = token_text(i);
        if let Some(pad) = self.faults.pad {
            while (t.len() as u64) < pad {
                t.push('.');
            }
        }
        t
    }

    fn chunk(&self, choices: Value, error: Option<Value>, usage: Option<Usage>) -> Chunk<'_> {
        Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: self.model.id,
            provider: self.route.provider,
            error,
            choices,
            usage,
        }
    }

    /// Records the generation and bills the caller's key (if mock-issued).
    /// Cancelled/dropped requests are billed in full, like a provider that
    /// cannot stop mid-generation.
    fn finish(
        &self,
        app: &App,
        completion_tokens: u64,
        finish_reason: &str,
        streamed: bool,
        cancelled: bool,
    ) {
        let c = self.costs(completion_tokens);
        let byok = self.faults.byok;
        app.keys
            .charge(&self.token, c.charged, byok.then_some(c.upstream));
        let elapsed = now_ms().saturating_sub(self.started_ms);
        app.generations.insert(Generation {
            id: self.id.clone(),
            model: self.model.id.to_string(),
            created_at: iso8601(self.started_ms),
            provider_name: self.route.provider,
            origin: String::new(),
            streamed,
            cancelled,
            finish_reason: finish_reason.to_string(),
            native_finish_reason: finish_reason.to_string(),
            tokens_prompt: self.prompt_tokens,
            tokens_completion: completion_tokens,
            native_tokens_prompt: self.prompt_tokens,
            native_tokens_completion: completion_tokens,
            native_tokens_reasoning: 0,
            total_cost: c.charged,
            usage: c.charged,
            upstream_inference_cost: c.upstream,
            is_byok: byok,
            cache_discount: None,
            latency: elapsed,
            generation_time: elapsed,
        });
    }
}

fn token_text(i: u64) -> String {
    format!("tok{i} ")
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

pub async fn completions(
    State(app): State<Arc<App>>,
    Extension(GenerationId(id)): Extension<GenerationId>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(token) = bearer(&headers) else {
        return unauthorized();
    };
    // Like OpenRouter: a key it issued and then deleted or disabled is refused.
    if app.keys.refuses(token) {
        return error_response(401, "User not found.", None);
    }
    let req: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return error_response(400, "Invalid JSON in request body", None),
    };
    let mut faults = Faults::from_header(&headers);
    message_texts(&req).iter().for_each(|t| faults.apply_markers(t));
    // The answer runs as a task of its own: as at OpenRouter, a caller that
    // goes away (a gateway restarting mid-request) stops neither the
    // generation nor its billing on the key.
    let answer = tokio::spawn(answer(app, id, token.to_string(), req, faults));
    answer.await.unwrap_or_else(|_| error_response(500, "Mock answer failed", None))
}

async fn answer(app: Arc<App>, id: String, token: String, req: Value, faults: Faults) -> Response {
    let texts = message_texts(&req);
    // Faults come before validation: a test asking for a 503 wants a 503.
    if let Some(ms) = faults.delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if let Some(resp) = injected_status_response(&faults) {
        return resp;
    }
    if faults.no_content {
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = StatusCode::NO_CONTENT;
        return resp;
    }
    let model = match pick_model(&req) {
        Ok(m) => m,
        Err(resp) => return resp,
    };
    let route = match routing::route(&req, model) {
        Ok(r) => r,
        Err(resp) => return resp,
    };

    let prompt_tokens = count_prompt(&req, &texts, &faults);
    let wanted = faults.tokens.unwrap_or(DEFAULT_COMPLETION_TOKENS);
    let (completion_tokens, finish_reason) = match requested_cap(&req) {
        Some(cap) if cap < wanted && !faults.ignore_max => (cap, "length"),
        _ => (wanted, "stop"),
    };
    let plan = Plan {
        id,
        model,
        created: now_secs(),
        started_ms: now_ms(),
        token,
        prompt_tokens,
        completion_tokens,
        finish_reason,
        faults,
        route,
    };

    if req.get("stream").and_then(Value::as_bool).unwrap_or(false) {
        let (tx, mut rx) = mpsc::channel::<Result<Bytes, io::Error>>(1);
        let hide_generation = plan.faults.hide_generation;
        tokio::spawn(run_stream(app, plan, tx));
        let body = Body::from_stream(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)));
        let mut resp = Response::new(body);
        let h = resp.headers_mut();
        if hide_generation {
            h.insert(crate::HIDE_GENERATION, HeaderValue::from_static("1"));
        }
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        return resp;
    }

    if plan.faults.drop_after.is_some() {
        plan.finish(
            &app,
            plan.completion_tokens,
            plan.finish_reason,
            false,
            true,
        );
        return aborted_response();
    }
    let n = plan.completion_tokens;
    let body = Completion {
        id: &plan.id,
        object: "chat.completion",
        created: plan.created,
        model: plan.model.id,
        provider: plan.route.provider,
        system_fingerprint: "fp_mock",
        choices: json!([{
            "index": 0,
            "message": { "role": "assistant", "content": plan.text(n) },
            "finish_reason": plan.finish_reason,
            "native_finish_reason": plan.finish_reason,
            "logprobs": null,
        }]),
        usage: (!plan.faults.no_usage).then(|| plan.usage(n)),
    };
    let resp = json_response(StatusCode::OK, &body);
    plan.finish(&app, n, plan.finish_reason, false, false);
    resp
}
