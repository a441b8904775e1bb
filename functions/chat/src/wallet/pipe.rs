//! Streaming exchanges: the wallet object reads the upstream itself and
//! forwards each complete SSE event to its readers, each through a bounded
//! pipe (client_pipe.rs: a client that stops reading is cut off once
//! `BUFFER_LIMIT` bytes wait for it, while one event up to
//! `sse::MAX_EVENT_BYTES` — an image in base64 — still passes to one that
//! reads); the upstream is drained and billed either way, and memory per
//! stream stays bounded. At the end the bill goes out as an SSE
//! comment before `[DONE]`:
//! `: dexto-cost usd=0.000123 cents=0.0123 credits_remaining_cents=987 request_id=req_…`

use super::client_pipe::{ClientPipe, BUFFER_LIMIT};
use super::held::Exchange;
use super::replay::{Broadcast, ReplayConfig, Refusal};
use crate::metering::Outcome;
use dexto_shared::error::GatewayError;
use dexto_shared::http::now_ms;
use dexto_shared::money::Micros;
use dexto_shared::dialects::{DialectMeter, StreamFailure};
use dexto_shared::sse::{EventKind, SseSplitter};
use futures::StreamExt;
use worker::{ByteStream, Response};

/// The client's streaming response; the pump runs on in the object. If the
/// stream cannot be set up, nothing was delivered: the hold is released and
/// the request leaves the live set (else every sweep would extend it, and it
/// would count toward the concurrency limit until the object restarts).
pub fn start(mut upstream: Response, ex: Exchange, named: Option<String>) -> Result<Response, GatewayError> {
    let (pipe, reader) = ClientPipe::new();
    let set_up = || -> Result<(ByteStream, Response), GatewayError> {
        let internal = |e: worker::Error| GatewayError::Internal(format!("stream setup: {e}"));
        let headers = ex.headers().map_err(internal)?;
        for (k, v) in [("content-type", "text/event-stream"), ("cache-control", "no-cache")] {
            headers.set(k, v).map_err(internal)?;
        }
        // A reply without a body (a 204) has nothing to stream: the upstream's failure.
        let body = upstream.stream().map_err(|_| GatewayError::UpstreamUnavailable)?;
        Ok((body, Response::from_stream(reader).map_err(internal)?.with_headers(headers)))
    };
    let (body, response) = match set_up() {
        Ok(parts) => parts,
        Err(e) => {
            ex.release();
            dexto_shared::log::event("stream.setup_failed", serde_json::json!({"request_id": ex.terms.request_id, "error": format!("{e:?}")}));
            return Err(e);
        }
    };
    let status = upstream.status_code();
    let ledger = ex.ledger.clone();
    let broadcast = ledger.replays.open(&ex.terms.request_id, pipe.clone(), replay_config(&ledger.env), now_ms());
    ledger.spawn(pump(body, pipe, broadcast, ex, status, named));
    Ok(response)
}

fn replay_config(env: &worker::Env) -> ReplayConfig {
    let var = |name: &str, default: i64| env.var(name).ok().and_then(|v| v.to_string().parse::<i64>().ok()).filter(|n| *n >= 0).unwrap_or(default);
    ReplayConfig { limit_bytes: var("STREAM_REPLAY_BYTES", 1024 * 1024) as usize, retain_ms: var("STREAM_REPLAY_SECONDS", 120) * 1000 }
}

/// A reader for the rest of stream `request_id`, after event `after`
/// (replay.rs); its response carries the stream's headers.
pub fn reattach(ledger: &super::ledger::Ledger, request_id: &str, after: u64) -> Result<Response, GatewayError> {
    let (pipe, reader) = ClientPipe::with_limit(BUFFER_LIMIT + replay_config(&ledger.env).limit_bytes);
    ledger.replays.reattach(request_id, after, pipe, now_ms()).map_err(|refusal| match refusal {
        Refusal::Unknown => GatewayError::NotFound(format!(
            "No stream `{request_id}` is running, or ended in the last few minutes, for this account. Streams resume only on the account that started them."
        )),
        Refusal::Dropped { first_kept } => GatewayError::Conflict(format!(
            "The events after {after} of stream `{request_id}` are no longer kept (the first kept is {first_kept}): send the request again."
        )),
    })?;
    let internal = |e: worker::Error| GatewayError::Internal(format!("reattach: {e}"));
    let headers = worker::Headers::new();
    for (k, v) in [("content-type", "text/event-stream"), ("cache-control", "no-cache"), (dexto_shared::http::REQUEST_ID_HEADER, request_id)] {
        headers.set(k, v).map_err(internal)?;
    }
    Ok(Response::from_stream(reader).map_err(internal)?.with_headers(headers))
}

/// Forwards events as they arrive, keeps the hold alive, records the
/// generation id (the header's once the first bytes are forwarded, else the
/// first event's), then settles and sends the bill.
async fn pump(mut body: ByteStream, pipe: ClientPipe, out: Broadcast, ex: Exchange, status: u16, mut named: Option<String>) {
    let mut splitter = SseSplitter::default();
    let mut meter = DialectMeter::new(ex.terms.dialect);
    let mut interrupted = false;
    let mut done_event = None;
    let mut events = 0u64;
    let mut next_beat = now_ms() + ex.ttl_ms / 2;
    while let Some(chunk) = body.next().await {
        let Ok(bytes) = chunk else {
            interrupted = true;
            break;
        };
        let oversized_before = splitter.oversized();
        for event in splitter.push(&bytes) {
            let known = meter.seen.generation_id.is_some();
            let (kind, event) = meter.observe(event);
            match kind {
                EventKind::Done => done_event = Some(event), // held back: the bill goes out before it
                kind => out.publish(event, kind == EventKind::Comment),
            }
            if !known {
                if let Some(id) = &meter.seen.generation_id {
                    ex.note_generation(&ex.terms.dialect.generation_id(id));
                    // Readers may name the stream by the reply's own id (OpenAI's
                    // Responses contract) or by OpenRouter's generation id.
                    ex.ledger.replays.alias(&ex.terms.request_id, id);
                    if let Some(reply_id) = meter.next_event().1 {
                        ex.ledger.replays.alias(&ex.terms.request_id, reply_id);
                    }
                }
            }
            events += 1;
            if ex.die_after_events == Some(events) {
                // Test hook: the owner dies here. Nothing settles, nothing more is
                // sent; the in-memory state of this "incarnation" is gone.
                ex.ledger.live_remove(&ex.terms.request_id);
                ex.ledger.replays.forget(&ex.terms.request_id);
                out.end(now_ms());
                return;
            }
        }
        if let Some(id) = named.take() {
            ex.note_generation(&id);
        }
        if splitter.oversized() > oversized_before {
            // An event beyond the maximum was skipped: the client's stream
            // would be corrupt. Cut it off; the upstream is still billed.
            out.cut_off();
        }
        if now_ms() >= next_beat {
            ex.heartbeat();
            next_beat = now_ms() + ex.ttl_ms / 2;
        }
    }
    if let Some(tail) = splitter.finish() {
        let (kind, tail) = meter.observe(tail);
        out.publish(tail, kind == EventKind::Comment);
    }

    let outcome = Outcome {
        usage: meter.seen.usage.clone(),
        output_bytes: meter.seen.output_bytes,
        generation_id: meter.seen.generation_id.as_deref().map(|id| ex.terms.dialect.generation_id(id)),
        cancelled: !out.present(),
        upstream_status: status,
    };
    let (peak, cut) = pipe.stats();
    ex.lap("stream");
    let extra = serde_json::json!({"peak_buffered_bytes": peak, "client_cut_off": cut, "max_tokens": ex.max_tokens});
    let (charge, balance) = ex.settle(&outcome, extra);

    if interrupted {
        out.publish(StreamFailure::interrupted().event(ex.terms.dialect, meter.next_event()), false);
    }
    out.publish(cost_comment(&ex.terms.request_id, charge.user_price, balance).into_bytes(), true);
    if let Some(done) = done_event {
        out.publish(done, false);
    }
    out.end(now_ms());
}

fn cost_comment(request_id: &str, price: Micros, balance: Option<Micros>) -> String {
    let remaining = balance.map(|b| b.whole_cents_floor().to_string()).unwrap_or_else(|| "unknown".into());
    format!(
        ": dexto-cost usd={} cents={} credits_remaining_cents={} request_id={}\n\n",
        price.usd_fixed(),
        price.cents_exact(),
        remaining,
        request_id
    )
}
