//! `POST /exchange` on the wallet object: the whole life of a chat request
//! after validation. Admission (checks + hold, one synchronous turn), the
//! upstream call made by this object itself — so pending I/O keeps it alive
//! after the client and the chat Worker are gone (platform-facts: compatibility
//! date ≥ 2026-10-01) — the reply, and the settlement, all in one place.
//! What survives the object's own death is the hold, its terms and the
//! generation id: `sweep.rs` settles those.

use super::held::Exchange;
use super::{pipe, Admission, WalletDO};
use crate::config::Config;
use crate::metering::Outcome;
use crate::upstream;
use dexto_shared::dialects::{redact_upstream_error, set_output_limit};
use dexto_shared::error::GatewayError;
use dexto_shared::http::{clock_ms, error_response, now_ms, rejected_in};
use dexto_shared::openrouter_keys;
use dexto_shared::wallet::{unframe, ExchangeRequest};
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use worker::{Response, Result};

/// The largest non-streamed upstream reply the object buffers (the same as
/// the largest stream event: one image in base64). Beyond it the reply is
/// dropped, the client gets a 502 saying to stream, and the sweep bills the
/// call from the upstream's generation record.
pub const MAX_REPLY_BYTES: usize = dexto_shared::sse::MAX_EVENT_BYTES;

pub async fn handle(wallet: &WalletDO, framed: Vec<u8>) -> Result<Response> {
    let Some((req, body)) = unframe(&framed) else {
        return error_response(&GatewayError::Internal("malformed exchange frame".into()), None); // chat's envelope: the frame did not say
    };
    let request_id = req.terms.request_id.clone();
    match run(wallet, &req, body).await {
        Ok(resp) => Ok(resp),
        Err(err) => {
            let latency = now_ms() - req.terms.started_ms;
            crate::metrics::refused(&wallet.ledger.env, &req.terms.user_id, &request_id, &req.terms.model.id, &err, latency);
            let context = serde_json::json!({"user_id": req.terms.user_id, "key_id": req.terms.key_id, "model": req.terms.model.id, "latency_ms": latency});
            rejected_in(req.terms.dialect, &err, &request_id, context)
        }
    }
}

fn internal(e: worker::Error) -> GatewayError {
    GatewayError::Internal(format!("wallet: {e}"))
}

async fn run(wallet: &WalletDO, req: &ExchangeRequest, body: &[u8]) -> std::result::Result<Response, GatewayError> {
    let mut phases = req.phases.clone();
    phases.record("hop", (now_ms() - req.sent_at_ms) as f64);
    phases.resume(clock_ms());
    wallet.ensure_wallet(&req.terms.user_id).await.map_err(internal)?;
    let now = now_ms() + req.clock_offset_ms;
    let (terms, max_tokens, clamped, balance, rate_limit_remaining, prompt_bound) = match wallet.admit(req, now).map_err(internal)? {
        Admission::Refused(e) => return Err(e),
        Admission::Held { terms, max_tokens, clamped, balance, rate_limit_remaining, prompt_bound } => (terms, max_tokens, clamped, balance, rate_limit_remaining, prompt_bound),
    };
    let ledger = wallet.ledger.clone();
    if req.fail_settlement {
        ledger.failing_settlements.borrow_mut().insert(terms.request_id.clone());
    }
    let ex = Exchange {
        ledger: ledger.clone(),
        terms,
        max_tokens,
        clamped,
        balance_at_hold: balance,
        rate_limit_remaining,
        hold_ms: now_ms() - req.terms.started_ms,
        ttl_ms: req.ttl_ms,
        // Set by the chat Worker only when DEXTO_TEST_HOOKS=1.
        die_after_events: req.die_after_events,
        phases: RefCell::new(phases),
        generation_noted: Rc::new(Cell::new(false)),
        prompt_bound,
    };
    ex.lap("admit");
    // The sweep must come by if this object dies with the exchange open.
    if let Err(e) = ledger.arm(now + req.ttl_ms).await {
        dexto_shared::log::event("wallet.alarm_failed", serde_json::json!({"request_id": ex.terms.request_id, "error": e.to_string()}));
    }
    ex.lap("arm");

    if ex.terms.x402.is_some() {
        if let Err(e) = super::x402_settle::cover_upstream_limit(&ledger, &ex.terms.user_id).await {
            ex.release();
            return Err(e);
        }
        ex.lap("limit");
    }
    let forwarded = set_output_limit(ex.terms.dialect, body, req.limit_fields, req.quote.asked, max_tokens);
    let config = Config::from_env(&ledger.env);
    let call = upstream::Call { dialect: ex.terms.dialect, body: &forwarded, headers: &req.upstream_headers };
    let upstream = match send_with_user_key(&ledger, &config, &ex.terms.user_id, &call).await {
        Ok(resp) if resp.status_code() < 400 => resp,
        Ok(mut resp) => {
            let status = resp.status_code();
            let retry_after = resp.headers().get("Retry-After").ok().flatten().and_then(|v| v.parse().ok());
            let _ = resp.bytes().await; // drain; the upstream's text is not shown to clients
            ex.release();
            dexto_shared::log::event("chat.upstream_error", serde_json::json!({"request_id": ex.terms.request_id, "upstream_status": status}));
            return Err(GatewayError::from_upstream_status(status, retry_after));
        }
        Err(e) => {
            ex.release();
            return Err(e);
        }
    };
    ex.lap("upstream");
    // Recorded for the sweep only while the exchange outlasts the turn that
    // reads the reply (streams: after the first bytes went out; non-stream:
    // `awaiting_reply`), so the id costs no commit of its own on the way to
    // the client ("Who settles a hold", generation id).
    let named = upstream.headers().get("X-Generation-Id").ok().flatten();
    if ex.terms.stream {
        pipe::start(upstream, ex, named)
    } else {
        complete(upstream, ex, named).await
    }
}

/// Sends with the user's own upstream key; if the upstream refuses that key
/// (rotated elsewhere since this isolate cached it), re-reads it once.
async fn send_with_user_key(ledger: &super::ledger::Ledger, config: &Config, user_id: &str, call: &upstream::Call<'_>) -> std::result::Result<Response, GatewayError> {
    let env = &ledger.env;
    let key = openrouter_keys::key_for(env, user_id).await?;
    let resp = upstream::send(config, &key, call, &ledger.deadlines).await?;
    if resp.status_code() != 401 {
        return Ok(resp);
    }
    openrouter_keys::forget(user_id);
    let fresh = openrouter_keys::key_for(env, user_id).await?;
    if fresh.expose() == key.expose() {
        return Ok(resp);
    }
    upstream::send(config, &fresh, call, &ledger.deadlines).await
}

/// Non-streaming: read the whole upstream body (at most `MAX_REPLY_BYTES`),
/// settle, reply with the bill.
async fn complete(mut upstream: Response, ex: Exchange, named: Option<String>) -> std::result::Result<Response, GatewayError> {
    let status = upstream.status_code();
    let body = match awaiting_reply(read_reply(&mut upstream), &ex, named.as_deref()).await {
        Ok(body) => body,
        Err(Reply::Lost) => {
            // Connection lost before the body: nothing was delivered, nothing is charged.
            ex.release();
            return Err(GatewayError::UpstreamUnavailable);
        }
        Err(Reply::TooLarge(head)) => {
            // The upstream has generated (and billed) it: the sweep settles the
            // call from its generation record, as if this owner had died.
            if let Some(id) = named.or_else(|| first_id(&head).map(|id| ex.terms.dialect.generation_id(&id))) {
                ex.note_generation(&id);
            }
            ex.leave_to_sweep().await;
            dexto_shared::log::event("chat.reply_too_large", serde_json::json!({"request_id": ex.terms.request_id, "limit_bytes": MAX_REPLY_BYTES}));
            return Err(GatewayError::UpstreamResponseTooLarge { limit_bytes: MAX_REPLY_BYTES });
        }
    };
    ex.lap("read");
    let mut json: Option<Value> = serde_json::from_slice(&body).ok();
    let (usage, generation_id, output_bytes) = json.as_ref().map(|j| ex.terms.dialect.read_reply(j)).unwrap_or_default();
    // An error the upstream reports inside its 200 goes out in our words.
    let redacted = json.as_mut().is_some_and(|reply| redact_upstream_error(ex.terms.dialect, reply));
    let body = match (redacted, &json) {
        (true, Some(reply)) => serde_json::to_vec(reply).unwrap_or_default(),
        _ => body,
    };
    let outcome = Outcome { usage, output_bytes, generation_id, cancelled: false, upstream_status: status };
    ex.lap("parse");
    let (charge, balance) = ex.settle(&outcome, serde_json::json!({"max_tokens": ex.max_tokens}));
    // A keyless call's payment is settled before the reply, which carries the receipt.
    let receipt = match &ex.terms.x402 {
        Some(payment) => super::x402_settle::settle_now(&ex.ledger, &payment.reference).await,
        None => None,
    };
    let internal = |_| GatewayError::Internal("response".into());
    let headers = ex.headers().map_err(internal)?;
    if let Some(receipt) = receipt {
        let value = serde_json::to_value(&receipt).map_err(|_| GatewayError::Internal("receipt".into()))?;
        headers.set(dexto_shared::x402::PAYMENT_RESPONSE_HEADER, &dexto_shared::x402::encode_header(&value)).map_err(internal)?;
    }
    headers.set("content-type", "application/json").map_err(internal)?;
    headers.set("X-Dexto-Cost-USD", &charge.user_price.usd_fixed()).map_err(internal)?;
    headers.set("X-Dexto-Cost-Cents", &charge.user_price.cents_exact()).map_err(internal)?;
    // The balance right after this settlement (exact: settled in this object).
    let remaining = balance.unwrap_or(ex.balance_at_hold.saturating_sub(charge.user_price));
    headers.set("X-Dexto-Credits-Remaining", &remaining.whole_cents_floor().to_string()).map_err(internal)?;
    Ok(Response::from_bytes(body).map_err(internal)?.with_status(status).with_headers(headers))
}

/// How long a non-stream reply may take after its headers before its
/// generation id is recorded for the sweep. OpenRouter sends a non-stream
/// reply's headers with its body, so the reply is nearly always read (and
/// settled, with the id) first; an object that dies in this window leaves a
/// hold without an id, settled like one that died before the headers.
const NOTE_GENERATION_AFTER_MS: i64 = 100;

/// Reads the reply; records the generation id if that takes longer than
/// `NOTE_GENERATION_AFTER_MS` (a deadline on the object's one timer).
async fn awaiting_reply<T>(read: impl std::future::Future<Output = T>, ex: &Exchange, id: Option<&str>) -> T {
    let Some(id) = id else {
        return read.await;
    };
    let note = ex.generation_noter(id);
    let _deadline = ex.ledger.deadlines.at(now_ms() + NOTE_GENERATION_AFTER_MS, note);
    read.await
}

enum Reply {
    Lost,
    /// Beyond `MAX_REPLY_BYTES`; the first bytes read.
    TooLarge(Vec<u8>),
}

/// The upstream reply's bytes, read as they arrive and never past the cap.
async fn read_reply(upstream: &mut Response) -> std::result::Result<Vec<u8>, Reply> {
    use futures::StreamExt;
    let declared = upstream.headers().get("content-length").ok().flatten().and_then(|v| v.trim().parse::<usize>().ok());
    if declared.is_some_and(|len| len <= MAX_REPLY_BYTES) {
        // Framed to its declared length: one native read instead of one
        // round trip through a stream reader per chunk.
        return read_whole(upstream).await.map_err(|_| Reply::Lost);
    }
    let Ok(mut stream) = upstream.stream() else {
        return Ok(Vec::new()); // no body at all
    };
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| Reply::Lost)?;
        if body.len() + chunk.len() > MAX_REPLY_BYTES {
            body.truncate(4096);
            return Err(Reply::TooLarge(body));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The whole body by the runtime's own `arrayBuffer()` (workers-rs reads a
/// fetched body chunk by chunk through a Rust stream).
async fn read_whole(upstream: &Response) -> Result<Vec<u8>> {
    use worker::{js_sys::Uint8Array, wasm_bindgen_futures::JsFuture, web_sys, ResponseBody};
    match upstream.body() {
        ResponseBody::Stream(stream) => {
            let whole = web_sys::Response::new_with_opt_readable_stream(Some(stream))?;
            Ok(Uint8Array::new(&JsFuture::from(whole.array_buffer()?).await?).to_vec())
        }
        ResponseBody::Body(bytes) => Ok(bytes.clone()),
        ResponseBody::Empty => Ok(Vec::new()),
    }
}

/// The generation id at the head of a completion body (`{"id":"gen-…",…`),
/// for an upstream that sent no `X-Generation-Id` header.
fn first_id(head: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(head);
    let rest = &text[text.find("\"id\"")? + 4..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start().strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_string()).filter(|id| !id.is_empty())
}

