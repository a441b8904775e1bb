//! The upstream exchange of a held request, run entirely inside
//! `ctx.wait_until`: a client that disconnects cancels its handler, but not
//! this task, so the call is still settled (or its hold released) and a
//! stream is still drained and billed. The handler only waits for the response
//! to hand to the client.

use crate::config::Config;
use crate::metering::{Bill, Outcome, Settled};
use crate::{streaming, upstream};
use dexto_shared::error::GatewayError;
use dexto_shared::http::{now_ms, REQUEST_ID_HEADER};
use dexto_shared::openrouter_keys;
use dexto_shared::usage::UpstreamUsage;
use dexto_shared::wallet_client::WalletClient;
use futures::channel::oneshot;
use serde_json::Value;
use worker::{Context, Env, Headers, Response};

type Reply = oneshot::Sender<Result<Response, GatewayError>>;

/// Starts the exchange and waits for the client's response.
pub async fn start(ctx: &Context, env: Env, config: Config, body: Vec<u8>, bill: Bill, wallet: WalletClient) -> Result<Response, GatewayError> {
    let (tx, rx) = oneshot::channel();
    ctx.wait_until(run(env, config, body, bill, wallet, tx));
    rx.await.unwrap_or_else(|_| Err(GatewayError::Internal("exchange ended without a reply".into())))
}

async fn run(env: Env, config: Config, body: Vec<u8>, bill: Bill, wallet: WalletClient, reply: Reply) {
    let upstream = match send_with_user_key(&env, &config, &bill.caller.user_id, &body).await {
        Ok(resp) if resp.status_code() < 400 => resp,
        Ok(mut resp) => {
            let status = resp.status_code();
            let retry_after = resp.headers().get("Retry-After").ok().flatten().and_then(|v| v.parse().ok());
            let _ = resp.bytes().await; // drain; the upstream's text is not shown to clients
            release(&wallet, &bill.request_id).await;
            dexto_shared::log::event("chat.upstream_error", serde_json::json!({"request_id": bill.request_id, "upstream_status": status}));
            let _ = reply.send(Err(GatewayError::from_upstream_status(status, retry_after)));
            return;
        }
        Err(e) => {
            release(&wallet, &bill.request_id).await;
            let _ = reply.send(Err(e));
            return;
        }
    };
    if bill.stream {
        match streaming::start(upstream, &bill) {
            Ok((response, pipe)) => {
                let _ = reply.send(Ok(response));
                streaming::pump(pipe, bill, wallet).await;
            }
            Err(e) => {
                release(&wallet, &bill.request_id).await;
                let _ = reply.send(Err(e));
            }
        }
    } else {
        complete(upstream, bill, wallet, reply).await;
    }
}

/// Sends with the user's own upstream key; if the upstream refuses that key
/// (rotated elsewhere since this isolate cached it), re-reads it once.
async fn send_with_user_key(env: &Env, config: &Config, user_id: &str, body: &[u8]) -> Result<Response, GatewayError> {
    let key = openrouter_keys::key_for(env, user_id).await?;
    let resp = upstream::send_chat(config, &key, body).await?;
    if resp.status_code() != 401 {
        return Ok(resp);
    }
    openrouter_keys::forget(user_id);
    let fresh = openrouter_keys::key_for(env, user_id).await?;
    if fresh.expose() == key.expose() {
        return Ok(resp);
    }
    upstream::send_chat(config, &fresh, body).await
}

async fn release(wallet: &WalletClient, request_id: &str) {
    if let Err(e) = wallet.release(request_id).await {
        // The hold expires on its own (HOLD_TTL_SECONDS); nothing is charged.
        dexto_shared::log::event("hold.release_failed", serde_json::json!({"request_id": request_id, "error": format!("{e:?}")}));
    }
}

/// Non-streaming: read the whole upstream body, price it, reply with the bill
/// in headers, then settle (the hold keeps the money reserved until then).
async fn complete(mut upstream: Response, bill: Bill, wallet: WalletClient, reply: Reply) {
    let status = upstream.status_code();
    let Ok(body) = upstream.bytes().await else {
        // Connection lost before the body: nothing was delivered, nothing is charged.
        release(&wallet, &bill.request_id).await;
        let _ = reply.send(Err(GatewayError::UpstreamUnavailable));
        return;
    };
    let json: Option<Value> = serde_json::from_slice(&body).ok();
    let outcome = Outcome {
        usage: json.as_ref().and_then(|j| j.get("usage")).and_then(UpstreamUsage::from_json),
        output_bytes: json.as_ref().map(output_bytes).unwrap_or(0),
        generation_id: json.as_ref().and_then(|j| j.get("id")).and_then(Value::as_str).map(str::to_string),
        cancelled: false,
        upstream_status: status,
    };
    let charge = bill.price(&outcome);
    // Balance after this request as of its hold: exact unless other requests of
    // the same user settle in between.
    let settled = Settled { charge, balance: Some(bill.balance_at_hold.saturating_sub(charge.user_price)) };
    let response = bill_response(body, status, &bill, &settled);
    let _ = reply.send(response); // a client that has gone is still billed below
    bill.settle(&wallet, &outcome, charge).await;
}

fn bill_response(body: Vec<u8>, status: u16, bill: &Bill, settled: &Settled) -> Result<Response, GatewayError> {
    let headers = Headers::new();
    let set = |k: &str, v: &str| headers.set(k, v).map_err(|_| GatewayError::Internal("headers".into()));
    set("content-type", "application/json")?;
    set(REQUEST_ID_HEADER, &bill.request_id)?;
    set("X-Dexto-Cost-USD", &settled.charge.user_price.usd_fixed())?;
    set("X-Dexto-Cost-Cents", &settled.charge.user_price.cents_exact())?;
    if let Some(balance) = settled.balance {
        set("X-Dexto-Credits-Remaining", &balance.whole_cents_floor().to_string())?;
    }
    if let Some(remaining) = bill.rate_limit_remaining {
        set("X-Dexto-RateLimit-Remaining", &remaining.to_string())?;
    }
    set("Server-Timing", &format!("hold;dur={}, total;dur={}", bill.hold_ms, now_ms() - bill.started_ms))?;
    Ok(Response::from_bytes(body).map_err(|_| GatewayError::Internal("response".into()))?.with_status(status).with_headers(headers))
}

fn output_bytes(json: &Value) -> usize {
    json.get("choices")
        .and_then(Value::as_array)
        .map(|choices| choices.iter().filter_map(|c| c.pointer("/message/content").and_then(Value::as_str)).map(str::len).sum())
        .unwrap_or(0)
}
