//! `POST /v1/chat/completions`: authenticate, validate, hold, forward, settle.
//! Storage on the critical path before the upstream call: the isolate key cache
//! (D1 only on a cold key) and exactly one wallet-object call.

use dexto_shared::auth::{authenticate, KeyLookup};
use crate::config::Config;
use crate::metering::{Bill, ClientMeta, Outcome, Settled};
use crate::{allowed, catalogue, streaming, upstream};
use dexto_shared::billing::hold_amount;
use dexto_shared::chat_request::{ChatRequest, RequestError, MAX_BODY_BYTES};
use dexto_shared::error::GatewayError;
use dexto_shared::http::{error_response, now_ms, REQUEST_ID_HEADER};
use dexto_shared::ids::new_id;
use dexto_shared::openrouter_keys;
use dexto_shared::usage::UpstreamUsage;
use dexto_shared::wallet::{HoldOutcome, HoldRequest};
use dexto_shared::wallet_client::WalletClient;
use serde_json::Value;
use worker::{Context, Env, Headers, Request, Response, Result};

pub async fn handle(mut req: Request, env: Env, ctx: Context) -> Result<Response> {
    let request_id = new_id("req_");
    match run(&mut req, &env, &ctx, &request_id).await {
        Ok(resp) => Ok(resp),
        Err(err) => {
            let detail = match &err {
                GatewayError::Internal(d) => Some(d.clone()),
                _ => None,
            };
            dexto_shared::log::event(
                "chat.rejected",
                serde_json::json!({"request_id": request_id, "status": err.status(), "code": err.body()["error"]["code"], "detail": detail}),
            );
            error_response(&err, Some(&request_id))
        }
    }
}

async fn run(req: &mut Request, env: &Env, ctx: &Context, request_id: &str) -> std::result::Result<Response, GatewayError> {
    let started_ms = now_ms();
    let caller = authenticate(req.headers(), env, KeyLookup::Cached, "gateway:use").await?;
    let declared_len = req.headers().get("content-length").ok().flatten().and_then(|v| v.parse::<usize>().ok());
    if declared_len.is_some_and(|len| len > MAX_BODY_BYTES) {
        return Err(GatewayError::PayloadTooLarge { limit_bytes: MAX_BODY_BYTES });
    }
    let body = req.bytes().await.map_err(|_| GatewayError::BadRequest("Could not read the request body.".into()))?;
    let chat = ChatRequest::parse(&body).map_err(|e| match e {
        RequestError::TooLarge => GatewayError::PayloadTooLarge { limit_bytes: MAX_BODY_BYTES },
        RequestError::Invalid(msg) => GatewayError::BadRequest(msg),
    })?;
    let config = Config::from_env(env);
    // Unknown or not allowed: refused here, before any hold or upstream call.
    let allow = allowed::current(env, &config).await?;
    if !allow.permits(&chat.model) {
        return Err(GatewayError::ModelNotFound(chat.model.clone()));
    }
    let catalogue = catalogue::current(env, &config, ctx).await?;
    let model = catalogue.get(&chat.model).cloned().ok_or_else(|| GatewayError::ModelNotFound(chat.model.clone()))?;
    let markup = allow.markup_for(&model.id, config.markup);
    let hold = hold_amount(&chat, &model, markup);

    let wallet = WalletClient::for_user(env, &caller.user_id)?;
    let hold_req = HoldRequest {
        request_id: request_id.to_string(),
        user_id: caller.user_id.clone(),
        key_id: caller.key_id.clone(),
        amount: hold,
        ttl_ms: config.hold_ttl_ms,
        now_ms: started_ms,
    };
    let (outcome, rate_limit_remaining) = wallet.hold(&hold_req).await?;
    let balance_at_hold = match outcome {
        HoldOutcome::Held { balance, .. } => balance,
        HoldOutcome::Insufficient { available } => return Err(GatewayError::InsufficientCredits { available }),
        HoldOutcome::KeyRevoked => return Err(GatewayError::InvalidAuth),
        HoldOutcome::UserSuspended => return Err(GatewayError::UserSuspended),
        HoldOutcome::Frozen => return Err(GatewayError::WalletFrozen),
        HoldOutcome::RateLimited { retry_after_secs } => return Err(GatewayError::RateLimited { retry_after_secs }),
    };
    let hold_ms = now_ms() - started_ms;

    let upstream = match send_with_user_key(env, &config, &caller.user_id, &body).await {
        Ok(resp) if resp.status_code() < 400 => resp,
        Ok(mut resp) => {
            let status = resp.status_code();
            let retry_after = resp.headers().get("Retry-After").ok().flatten().and_then(|v| v.parse().ok());
            let _ = resp.bytes().await; // drain; the upstream's text is not shown to clients
            release(&wallet, request_id).await;
            dexto_shared::log::event("chat.upstream_error", serde_json::json!({"request_id": request_id, "upstream_status": status}));
            return Err(GatewayError::from_upstream_status(status, retry_after));
        }
        Err(e) => {
            release(&wallet, request_id).await;
            return Err(e);
        }
    };

    let bill = Bill {
        request_id: request_id.to_string(),
        caller,
        model,
        hold,
        markup,
        prompt_estimate: chat.prompt_estimate,
        stream: chat.stream,
        started_ms,
        client: ClientMeta::from_headers(req.headers()),
        rate_limit_remaining,
        balance_at_hold,
        hold_ms,
    };
    if chat.stream {
        streaming::respond(upstream, bill, wallet, ctx)
    } else {
        complete(upstream, bill, wallet, ctx).await
    }
}

/// Sends with the user's own upstream key; if the upstream refuses that key
/// (rotated elsewhere since this isolate cached it), re-reads it once.
async fn send_with_user_key(env: &Env, config: &Config, user_id: &str, body: &[u8]) -> std::result::Result<Response, GatewayError> {
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

/// Non-streaming: read the whole upstream body, price it, answer with the bill
/// in headers, and settle after the response (`wait_until`): the hold keeps the
/// money reserved until then, so answering first risks nothing.
async fn complete(mut upstream: Response, bill: Bill, wallet: WalletClient, ctx: &Context) -> std::result::Result<Response, GatewayError> {
    let status = upstream.status_code();
    let Ok(body) = upstream.bytes().await else {
        // Connection lost before the body: nothing was delivered, nothing is charged.
        release(&wallet, &bill.request_id).await;
        return Err(GatewayError::UpstreamUnavailable);
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
    let headers = Headers::new();
    let set = |k: &str, v: &str| headers.set(k, v).map_err(|_| GatewayError::Internal("headers".into()));
    set("content-type", "application/json")?;
    set_bill_headers(&set, &bill, &settled)?;
    ctx.wait_until(async move {
        bill.settle(&wallet, &outcome, charge).await;
    });
    Ok(Response::from_bytes(body)
        .map_err(|_| GatewayError::Internal("response".into()))?
        .with_status(status)
        .with_headers(headers))
}

pub fn set_bill_headers(
    set: &dyn Fn(&str, &str) -> std::result::Result<(), GatewayError>,
    bill: &Bill,
    settled: &Settled,
) -> std::result::Result<(), GatewayError> {
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
    Ok(())
}

fn output_bytes(json: &Value) -> usize {
    json.get("choices")
        .and_then(Value::as_array)
        .map(|choices| {
            choices
                .iter()
                .filter_map(|c| c.pointer("/message/content").and_then(Value::as_str))
                .map(str::len)
                .sum()
        })
        .unwrap_or(0)
}
