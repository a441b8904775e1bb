//! The generation routes, in the three dialects OpenRouter speaks:
//! `/chat/completions` (OpenAI Chat Completions), `/messages` (Anthropic
//! Messages) and `/responses` (OpenAI Responses, stateless).
//!
//! One core serves them all: the key check, the faults of `faults.rs`, the
//! model and provider, the prompt count and output ceiling, the price, the
//! streaming loop and the generation record are decided here, once. A dialect
//! ([`Wire`]) only reads its request into an [`Ask`] and writes the answer,
//! its errors and its stream events in its own shapes.

use crate::faults::{aborted_response, injected_error, Faults};
use crate::util::bearer;
use crate::{App, GenerationId};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{post, MethodRouter};
use axum::Extension;
use serde_json::Value;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

mod chat;
mod messages;
mod plan;
mod prompt;
mod responses;
mod routing;
mod stream;
use plan::Plan;
use prompt::{pick_model, Ask};

/// Output tokens when neither the request's ceiling nor `tokens=N` says otherwise.
const DEFAULT_COMPLETION_TOKENS: u64 = 8;

/// The API a generation request speaks, known from its path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Chat,
    Messages,
    Responses,
}

impl Dialect {
    pub fn from_path(path: &str) -> Option<Dialect> {
        let path = path.split('?').next().unwrap_or(path);
        if path.ends_with("/chat/completions") {
            Some(Dialect::Chat)
        } else if path.ends_with("/messages") {
            Some(Dialect::Messages)
        } else if path.ends_with("/responses") {
            Some(Dialect::Responses)
        } else {
            None
        }
    }

    /// As the request log writes it.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Chat => "chat",
            Dialect::Messages => "messages",
            Dialect::Responses => "responses",
        }
    }

    fn wire(self) -> &'static dyn Wire {
        match self {
            Dialect::Chat => &chat::Chat,
            Dialect::Messages => &messages::Messages,
            Dialect::Responses => &responses::Responses,
        }
    }
}

/// A request turned down before anything is generated.
pub struct Refusal {
    pub status: u16,
    pub message: String,
}

impl Refusal {
    pub fn new(status: u16, message: impl Into<String>) -> Refusal {
        Refusal { status, message: message.into() }
    }
}

/// What differs between dialects: reading the request, and writing the
/// answer, its errors and its stream events. Everything else is the core's.
trait Wire: Sync {
    /// The caller's key: `Authorization: Bearer` unless the dialect has more.
    fn key<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        bearer(headers)
    }
    /// The request's texts, tools, turns, output ceiling and `stream` flag.
    fn read<'a>(&self, req: &'a Value) -> Ask<'a>;
    /// Checks of the dialect's own (run after faults: a test asking for a 503 wants a 503).
    fn validate(&self, _req: &Value) -> Result<(), Refusal> {
        Ok(())
    }
    /// An error response in the dialect's envelope, with `status`.
    fn error(&self, status: u16, message: &str, metadata: Option<Value>) -> Response;
    /// The whole answer, not streamed.
    fn reply(&self, plan: &Plan) -> Response;
    /// Stream events before the first token.
    fn opening(&self, plan: &Plan) -> String;
    /// The stream event carrying token `i`.
    fn delta(&self, plan: &Plan, i: u64) -> String;
    /// The mid-stream error after `sent` tokens (the 200 is already out).
    fn failure(&self, plan: &Plan, sent: u64) -> String;
    /// A non-stream answer that failed after `sent` tokens: OpenRouter
    /// answers 200 with the error in the body once the model has started
    /// (docs "Errors"). None where the dialect has no such reply.
    fn failed_reply(&self, _plan: &Plan, _sent: u64) -> Option<Response> {
        None
    }
    /// Stream events after the last token (usage, end markers).
    fn closing(&self, plan: &Plan) -> String;
}

/// `POST` handler serving `dialect`.
pub fn route(dialect: Dialect) -> MethodRouter<Arc<App>> {
    post(
        move |State(app): State<Arc<App>>,
              Extension(GenerationId(id)): Extension<GenerationId>,
              headers: HeaderMap,
              body: Bytes| serve(dialect.wire(), app, id, headers, body),
    )
}

async fn serve(wire: &'static dyn Wire, app: Arc<App>, id: String, headers: HeaderMap, body: Bytes) -> Response {
    let Some(token) = wire.key(&headers) else {
        return wire.error(401, "No auth credentials found", None);
    };
    // Like OpenRouter: a key it issued and then deleted or disabled is refused.
    if app.keys.refuses(token) {
        return wire.error(401, "User not found.", None);
    }
    // Like OpenRouter (when the switch is on): a key whose limit is spent.
    if app.runtime.get().enforce_key_limits && app.keys.spent_out(token) {
        return wire.error(402, "Key limit exceeded: raise this key's limit to continue.", None);
    }
    let req: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return wire.error(400, "Invalid JSON in request body", None),
    };
    let mut faults = Faults::from_header(&headers);
    wire.read(&req).texts.iter().for_each(|t| faults.apply_markers(t));
    // The answer runs as a task of its own: as at OpenRouter, a caller that
    // goes away (a gateway restarting mid-request) stops neither the
    // generation nor its billing on the key.
    let answer = tokio::spawn(answer(wire, app, id, token.to_string(), req, faults));
    answer.await.unwrap_or_else(|_| wire.error(500, "Mock answer failed", None))
}

async fn answer(wire: &'static dyn Wire, app: Arc<App>, id: String, token: String, req: Value, faults: Faults) -> Response {
    // Faults come before validation: a test asking for a 503 wants a 503.
    if let Some(ms) = faults.delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if let Some(e) = injected_error(&faults) {
        return e.headers(wire.error(e.status, e.message, Some(e.metadata.clone())));
    }
    if faults.no_content {
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = StatusCode::NO_CONTENT;
        return resp;
    }
    let (plan, streamed) = match plan(wire, &req, id, token, faults) {
        Ok(p) => p,
        Err(r) => return wire.error(r.status, &r.message, None),
    };
    if streamed {
        return stream_response(wire, app, plan);
    }
    if plan.faults.drop_after.is_some() {
        plan.finish(&app, plan.completion_tokens, plan.finish_reason(), false, true);
        return aborted_response();
    }
    let sent = plan.faults.error_after.map(|k| k.min(plan.completion_tokens));
    if let Some(resp) = sent.and_then(|sent| wire.failed_reply(&plan, sent)) {
        plan.finish(&app, sent.unwrap_or_default(), "error", false, false);
        return resp;
    }
    let resp = wire.reply(&plan);
    plan.finish(&app, plan.completion_tokens, plan.finish_reason(), false, false);
    match plan.faults.body_delay_ms {
        Some(ms) => body_later(resp, Duration::from_millis(ms)).await,
        None => resp,
    }
}

/// The reply's headers now, a newline, and its body `delay` later (no
/// `content-length`: the body's end is the connection's).
async fn body_later(resp: Response, delay: Duration) -> Response {
    let (mut parts, body) = resp.into_parts();
    let json = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    let (tx, mut rx) = mpsc::channel::<Result<Bytes, io::Error>>(2);
    tokio::spawn(async move {
        let _ = tx.send(Ok(Bytes::from_static(b"\n"))).await;
        tokio::time::sleep(delay).await;
        let _ = tx.send(Ok(json)).await;
    });
    Response::from_parts(parts, Body::from_stream(futures::stream::poll_fn(move |cx| rx.poll_recv(cx))))
}

/// Fixes the whole answer: model, provider, prompt count, and how many
/// tokens come back (`tokens=N` or 8, cut to the request's ceiling unless
/// the provider is told to ignore it). Also says whether to stream.
fn plan(wire: &dyn Wire, req: &Value, id: String, token: String, faults: Faults) -> Result<(Plan, bool), Refusal> {
    wire.validate(req)?;
    let model = pick_model(req)?;
    let route = routing::route(req, model)?;
    let ask = wire.read(req);
    let wanted = faults.tokens.unwrap_or(DEFAULT_COMPLETION_TOKENS);
    let (completion_tokens, capped) = match ask.cap {
        Some(cap) if cap < wanted && !faults.ignore_max => (cap, true),
        _ => (wanted, false),
    };
    let plan = Plan {
        id,
        model,
        created: crate::util::now_secs(),
        started_ms: crate::util::now_ms(),
        token,
        prompt_tokens: ask.prompt_tokens(&faults),
        completion_tokens,
        capped,
        faults,
        route,
    };
    Ok((plan, ask.stream))
}

/// An SSE response whose events the stream task writes one by one.
fn stream_response(wire: &'static dyn Wire, app: Arc<App>, plan: Plan) -> Response {
    let (tx, mut rx) = mpsc::channel::<Result<Bytes, io::Error>>(1);
    let hide_generation = plan.faults.hide_generation;
    tokio::spawn(stream::run(wire, app, plan, tx));
    let body = Body::from_stream(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    if hide_generation {
        h.insert(crate::HIDE_GENERATION, HeaderValue::from_static("1"));
    }
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// One SSE event: `event:` line (when the dialect names its events) and `data:`.
fn sse(event: Option<&str>, data: &impl serde::Serialize) -> String {
    let json = serde_json::to_string(data).expect("event serialises");
    match event {
        Some(name) => format!("event: {name}\ndata: {json}\n\n"),
        None => format!("data: {json}\n\n"),
    }
}
