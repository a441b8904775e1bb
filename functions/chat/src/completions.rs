//! `POST /v1/chat/completions`: authenticate, validate, price, hold; then the
//! upstream exchange (`exchange.rs`). Storage on the critical path before the
//! upstream call: the isolate caches (D1 only when cold) and exactly one
//! wallet-object call.

use dexto_shared::auth::{authenticate, KeyLookup};
use crate::config::Config;
use crate::metering::{Bill, ClientMeta};
use crate::{allowed, catalogue, exchange};
use dexto_shared::billing::hold_amount;
use dexto_shared::chat_request::{ChatRequest, RequestError, MAX_BODY_BYTES};
use dexto_shared::error::GatewayError;
use dexto_shared::http::{error_response, now_ms};
use dexto_shared::ids::new_id;
use dexto_shared::wallet::{HoldOutcome, HoldRequest};
use dexto_shared::wallet_client::WalletClient;
use worker::{Context, Env, Request, Response, Result};

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
    // Every model the upstream may serve (the requested one and OpenRouter
    // `models` fallbacks) must be known and allowed; the hold covers the
    // priciest, and a charge without a reported cost is priced at it.
    let allow = allowed::current(env, &config).await?;
    let catalogue = catalogue::current(env, &config, ctx).await?;
    let mut priced = Vec::new();
    for id in std::iter::once(&chat.model).chain(&chat.fallbacks) {
        let info = catalogue.get(id).filter(|_| allow.permits(id)).ok_or_else(|| GatewayError::ModelNotFound(id.clone()))?;
        let markup = allow.markup_for(&info.id, config.markup);
        priced.push((hold_amount(&chat, info, markup), info, markup));
    }
    let (hold, pricing_model, markup) = priced.into_iter().max_by_key(|(hold, _, _)| *hold).expect("at least the requested model");
    let model = dexto_shared::catalogue::ModelInfo { id: chat.model.clone(), ..pricing_model.clone() };

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
    exchange::start(ctx, env.clone(), config, body, bill, wallet).await
}
