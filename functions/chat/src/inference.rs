//! A model call in any API dialect — `POST /v1/chat/completions` (OpenAI
//! Chat), `/v1/messages` (Anthropic Messages), `/v1/responses` (OpenAI
//! Responses): authenticate, read the body into the one `ChatRequest`
//! (`dialects`), quote; then the wallet object of the user owns the rest
//! (hold, upstream call, reply, settlement: `wallet/exchange.rs`), told the
//! dialect by the terms. Storage on the critical path before the upstream
//! call: the isolate caches (D1 only when cold) and the one wallet-object call
//! that also makes the upstream call.

use crate::config::Config;
use crate::metering::ClientMeta;
use crate::{allowed, catalogue};
use dexto_shared::auth::{authenticate, KeyLookup};
use dexto_shared::catalogue::ModelInfo;
use dexto_shared::chat_request::{RequestError, MAX_BODY_BYTES};
use dexto_shared::dialects::{model_aliases, Dialect};
use dexto_shared::error::GatewayError;
use dexto_shared::hold::Quote;
use dexto_shared::money::Micros;
use dexto_shared::http::{clock_ms, now_ms, rejected_in, ERROR_CODE_HEADER};
use dexto_shared::phases::Phases;
use dexto_shared::ids::new_id;
use dexto_shared::provider_routing::{bound_routing, PriceCeiling};
use dexto_shared::wallet::{ExchangeRequest, ExchangeTerms};
use dexto_shared::wallet_client::WalletClient;
use worker::{Context, Env, Headers, Request, Response, Result};

pub async fn handle(mut req: Request, env: Env, ctx: Context, dialect: Dialect) -> Result<Response> {
    let request_id = new_id("req_");
    let started = now_ms();
    let mut known = Known::default();
    match run(&mut req, &env, &ctx, &request_id, started, dialect, &mut known).await {
        Ok(resp) => {
            // A refusal answered by the wallet object (402, 403, 429, upstream
            // errors) is counted by the code its error response names in a
            // header; no body is read, successes and streams pass untouched.
            if resp.status_code() >= 400 {
                let code = resp.headers().get(ERROR_CODE_HEADER).ok().flatten();
                crate::error_counts::count(&env, &ctx, resp.status_code(), code.as_deref().unwrap_or("error"));
            }
            Ok(resp)
        }
        Err(err) => {
            // Refused before the wallet: who and what as far as it got.
            let latency = now_ms() - started;
            crate::metrics::refused(&env, &known.user_id, &request_id, &known.model, &err, latency);
            crate::error_counts::count(&env, &ctx, err.status(), err.code());
            let context = serde_json::json!({"user_id": known.user_id, "key_id": known.key_id, "model": known.model, "latency_ms": latency});
            rejected_in(dialect, &err, &request_id, context)
        }
    }
}

/// What a request is known to be so far (empty until learnt): its refusal's
/// log line and metrics name them.
#[derive(Default)]
struct Known {
    user_id: String,
    key_id: String,
    model: String,
}

async fn run(req: &mut Request, env: &Env, ctx: &Context, request_id: &str, started_ms: i64, dialect: Dialect, known: &mut Known) -> std::result::Result<Response, GatewayError> {
    let mut phases = Phases::start(clock_ms());
    // No key at all: the call may be paid with x402 where it is configured.
    let keyless = match crate::x402::carries_no_key(req.headers(), dialect) {
        true => crate::x402::Keyless::from_env(env).await,
        false => None,
    };
    let keyed = match keyless {
        Some(_) => None,
        None => Some(authenticate(&auth_headers(req.headers(), dialect), env, KeyLookup::Cached, "gateway:use").await?),
    };
    if let Some(caller) = &keyed {
        (known.user_id, known.key_id) = (caller.user_id.clone(), caller.key_id.clone());
    }
    phases.lap("auth", clock_ms());
    let body = dexto_shared::http::read_body(req, MAX_BODY_BYTES).await?;
    phases.lap("body", clock_ms());
    let chat = dialect.read(&body).map_err(|e| match e {
        RequestError::TooLarge => GatewayError::PayloadTooLarge { limit_bytes: MAX_BODY_BYTES },
        RequestError::Invalid(msg) => GatewayError::BadRequest(msg),
    })?;
    known.model = chat.model.clone();
    // Anthropic clients name models by Anthropic's ids, which the reader
    // resolved to the catalogue's (model_aliases.rs): that id is priced, held
    // for and forwarded.
    let body = match dialect {
        Dialect::Messages => model_aliases::with_model(&body, &chat.model),
        _ => body,
    };
    let config = Config::from_env(env);
    // Unknown or not allowed: refused here, before any hold or upstream call.
    // Every model the upstream may serve (the requested one and OpenRouter
    // `models` fallbacks) must be known and allowed; the hold covers the
    // priciest, and a charge without a reported cost is priced at it.
    let allow = allowed::current(env, &config).await?;
    let catalogue = catalogue::current(env, &config, ctx).await?;
    let mut models = Vec::new();
    for id in std::iter::once(&chat.model).chain(&chat.fallbacks) {
        if keyed.as_ref().is_some_and(|c| !c.may_use(id)) {
            return Err(GatewayError::Forbidden(format!("This API key may not use `{id}` (its allowed models are set on the key).")));
        }
        let info = catalogue.get(id).filter(|_| allow.permits(id)).ok_or_else(|| GatewayError::ModelNotFound(id.clone()))?;
        models.push((info, allow.markup_for(&info.id, config.markup)));
    }
    // The caller's plan may restrict models (plan_models.rs; a keyless
    // caller's once its payment names its account, below).
    if let Some(caller) = &keyed {
        crate::plan_models::check(env, &config, &caller.user_id, std::iter::once(&chat.model).chain(&chat.fallbacks)).await?;
    }
    // Provider routing may pick a dearer provider: bound it at the upstream
    // (`provider.max_price`) and hold for that bound (provider_routing.rs).
    // Only then are the models copied, to price them at the ceiling.
    let ceiling = chat.routing.then(|| PriceCeiling::of(models.iter().map(|(m, _)| *m)));
    let routed: Vec<ModelInfo> = ceiling.iter().flat_map(|c| models.iter().map(move |(m, _)| c.price(m))).collect();
    let priced: Vec<(&ModelInfo, _)> = match ceiling {
        Some(_) => routed.iter().zip(&models).map(|(m, (_, markup))| (m, *markup)).collect(),
        None => models,
    };
    let body = match &ceiling {
        Some(c) => bound_routing(&body, c),
        None => body,
    };
    let quote = Quote::for_request(&chat, &priced, config.output_floor).map_err(GatewayError::BadRequest)?;
    // A charge without a reported cost is priced at the priciest model the
    // upstream may serve (the one whose worst case sets the hold).
    let (pricing_model, markup) = priced[quote.priciest()];
    // A keyless call pays for its hold with x402 before anything else; the
    // offer it was refused with is for that hold.
    let (caller, payment, offered) = match (keyed, &keyless) {
        (Some(caller), _) => (caller, None, None),
        (None, Some(keyless)) => {
            let hold = quote.hold_for(quote.ceiling());
            match crate::x402::authorize(req.headers(), env, keyless, hold).await {
                Ok(paid) => (paid.caller, Some(paid.payment), Some((keyless, hold))),
                Err(GatewayError::PaymentRefused { code, message }) => return offer_again(keyless, hold, req, code, &message, request_id),
                Err(e) => return Err(e),
            }
        }
        (None, None) => return Err(GatewayError::MissingAuth),
    };
    // A keyless caller is known once its payment names the account it books
    // on (an address linked to a user books on that user): that account's
    // plan restricts its models too, before any hold.
    if payment.is_some() {
        (known.user_id, known.key_id) = (caller.user_id.clone(), caller.key_id.clone());
        crate::plan_models::check(env, &config, &caller.user_id, std::iter::once(&chat.model).chain(&chat.fallbacks)).await?;
    }
    let client = ClientMeta::from_headers(req.headers());
    // Test hooks (DEXTO_TEST_HOOKS=1 only): an owner that dies, a clock moved on.
    let hooks = config.test_hooks;
    let hook = |name: &str| hooks.then(|| req.headers().get(name).ok().flatten()).flatten().and_then(|v| v.parse::<i64>().ok());
    let die_after_events = hook("X-Dexto-Test-Die-After-Events").map(|n| n as u64);
    let fail_settlement = hook("X-Dexto-Test-Fail-Settlement") == Some(1);
    phases.lap("quote", clock_ms());
    let exchange = ExchangeRequest {
        clock_offset_ms: hook("X-Dexto-Test-Now-Offset-Ms").unwrap_or(0),
        now_ms: started_ms,
        ttl_ms: config.hold_ttl_ms,
        limit_fields: chat.limit_fields,
        key_rate_limit: caller.rate_limit_per_minute,
        terms: ExchangeTerms {
            request_id: request_id.to_string(),
            user_id: caller.user_id.clone(),
            key_id: caller.key_id.clone(),
            model: ModelInfo { id: chat.model.clone(), ..pricing_model.clone() },
            markup_bps: markup.bps(),
            prompt_estimate: chat.prompt_estimate,
            stream: chat.stream,
            started_ms,
            hold: Default::default(),
            prompt_memo: None,
            session_id: client.session_id,
            client_source: client.source,
            client_version: client.version,
            dialect,
            x402: payment,
        },
        quote,
        die_after_events,
        fail_settlement,
        phases,
        sent_at_ms: now_ms(),
        upstream_headers: passed_on(req.headers(), dialect),
        free_limits: crate::plan_models::free_limits(env, &config).await,
    };
    let resp = WalletClient::for_user(env, &caller.user_id)?.exchange(&exchange, &body).await?;
    match offered {
        // The wallet refused the payment (replayed, or its payer owes a
        // failed settlement): answered with the offer, like every refusal of one.
        Some((keyless, hold)) if resp.status_code() == 402 => {
            let code = resp.headers().get(ERROR_CODE_HEADER).ok().flatten().unwrap_or_else(|| "x402_refused".into());
            let mut resp = resp;
            let body: serde_json::Value = resp.json().await.unwrap_or_default();
            let message = body["error"]["message"].as_str().unwrap_or("This payment cannot pay for this request.").to_string();
            offer_again(keyless, hold, req, &code, &message, request_id)
        }
        _ => Ok(resp),
    }
}

fn offer_again(keyless: &crate::x402::Keyless, hold: Micros, req: &Request, code: &str, message: &str, request_id: &str) -> std::result::Result<Response, GatewayError> {
    crate::x402::payment_required(keyless, hold, &req.inner().url(), code, message, request_id).map_err(|e| GatewayError::Internal(format!("402: {e}")))
}

/// The headers to authenticate: a Messages client may send its key as
/// `x-api-key` (Anthropic's SDKs and `ANTHROPIC_API_KEY`) instead of a bearer token.
pub fn auth_headers(headers: &Headers, dialect: Dialect) -> Headers {
    if dialect != Dialect::Messages || headers.has("Authorization").unwrap_or(false) {
        return headers.clone();
    }
    match headers.get("x-api-key").ok().flatten() {
        Some(key) => {
            let h = Headers::new();
            let _ = h.set("Authorization", &format!("Bearer {}", key.trim()));
            h
        }
        _ => headers.clone(),
    }
}

/// Client headers the upstream must see as sent: the Messages API version
/// and beta features (OpenRouter passes them to Anthropic).
fn passed_on(headers: &Headers, dialect: Dialect) -> Vec<(String, String)> {
    if dialect != Dialect::Messages {
        return Vec::new();
    }
    ["anthropic-version", "anthropic-beta"].iter().filter_map(|name| Some((name.to_string(), headers.get(name).ok().flatten()?))).collect()
}
