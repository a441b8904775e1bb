//! Creating Stripe Checkout Sessions for credit top-ups. The amount is decided
//! here (bounds, whole cents) and again from what Stripe reports when it is
//! paid — never from anything the client sends back later.

use crate::config::BillingConfig;
use crate::ApiResult;
use dexto_shared::error::GatewayError;
use dexto_shared::http::{json_object, now_ms, ok_json};
use dexto_shared::ids::new_id;
use dexto_shared::stripe::{checkout_amount_cents, form_encode, PACKS_USD};
use dexto_shared::url_query::redirect_allowed;
use serde_json::{json, Value};
use worker::{Env, Request};

/// The dashboard's top-up page (dexto-dashboard), where Checkout returns.
const BILLING_PAGE: &str = "/dashboard/settings/billing";

pub enum Flavor {
    /// `POST /api/billing/checkout-session` `{"credits_usd", "return_url"?}` (CLI 1.6.25+).
    Cli,
    /// `POST /api/stripe/create-checkout-session` `{"credits_usd"}` — one of the packs (plan).
    Plan,
}

/// Where Checkout (or the billing portal) sends the browser back: the
/// client's `return_url` / `cancel_url` if on an allowed origin, else the
/// dashboard's billing page on the origin that was called — in production
/// the API's, locally `npm run dev`'s — which waits for the webhook.
pub fn return_urls(req: &Request, config: &BillingConfig, body: &Value) -> Result<(String, String), GatewayError> {
    // Our own origin (the dashboard is served here) and the configured ones.
    let own = dexto_shared::url_query::origin(&req.inner().url());
    let mut origins = config.return_origins.clone();
    origins.extend(own.clone());
    let own = own.unwrap_or_default();
    let success_default = config.success_url.clone().unwrap_or_else(|| format!("{own}{BILLING_PAGE}?session_id={{CHECKOUT_SESSION_ID}}"));
    let cancel_default = config.cancel_url.clone().unwrap_or_else(|| format!("{own}{BILLING_PAGE}"));
    let url_field = |name: &str, default: &str| match body.get(name).and_then(Value::as_str) {
        Some(u) if redirect_allowed(u, &origins) => Ok(u.to_string()),
        Some(_) => Err(GatewayError::BadRequest(format!("`{name}` must be a URL on one of: {}.", config.return_origins.join(", ")))),
        None => Ok(default.to_string()),
    };
    Ok((url_field("return_url", &success_default)?, url_field("cancel_url", &cancel_default)?))
}

pub async fn create(req: &mut Request, env: &Env, flavor: Flavor) -> ApiResult {
    let user = dexto_shared::session::authenticate(req.headers(), env).await?;
    let config = BillingConfig::from_env(env);
    let body = json_object(req).await?;
    let requested = body.get("credits_usd").or_else(|| body.get("amount_usd")).cloned().unwrap_or(Value::Null);
    let cents = checkout_amount_cents(&requested, config.min_usd, config.max_usd).map_err(GatewayError::BadRequest)?;
    if matches!(flavor, Flavor::Plan) && (cents % 100 != 0 || !PACKS_USD.contains(&(cents / 100))) {
        return Err(GatewayError::BadRequest(format!("`credits_usd` must be one of the packs {PACKS_USD:?}.")));
    }
    let (success, cancel) = return_urls(req, &config, &body)?;
    if config.secret_key.is_empty() {
        return Err(GatewayError::Internal("STRIPE_SECRET_KEY not configured".into()));
    }
    let credit_micros = cents * 10_000;
    let form = form_encode(&[
        ("mode", "payment".into()),
        ("line_items[0][price_data][currency]", "usd".into()),
        ("line_items[0][price_data][unit_amount]", cents.to_string()),
        ("line_items[0][price_data][product_data][name]", format!("Dexto credits (${}.{:02})", cents / 100, cents % 100)),
        ("line_items[0][quantity]", "1".into()),
        ("success_url", success),
        ("cancel_url", cancel),
        ("client_reference_id", user.id.clone()),
        ("metadata[user_id]", user.id.clone()),
        ("metadata[credit_micros]", credit_micros.to_string()),
        ("payment_intent_data[metadata][user_id]", user.id.clone()),
    ]);
    // A client retry with the same Idempotency-Key gets the same session.
    let idempotency = dexto_shared::http::idempotency_key(req).unwrap_or_else(|| new_id("chk_"));
    let session = crate::stripe_api::post(&config, "/v1/checkout/sessions", &form, &format!("{}:{idempotency}", user.id)).await?;
    let (Some(id), Some(url)) = (session.get("id").and_then(Value::as_str), session.get("url").and_then(Value::as_str)) else {
        return Err(GatewayError::UpstreamUnavailable);
    };
    dexto_shared::db::run_idempotent(
        &dexto_shared::db::database(env)?,
        "INSERT INTO stripe_transactions (id, user_id, kind, amount_minor, currency, credit_micros, status, created_at, updated_at)
         VALUES (?1, ?2, 'checkout', ?3, 'usd', ?4, 'pending', ?5, ?5) ON CONFLICT(id) DO NOTHING",
        &[id.into(), user.id.as_str().into(), (cents as f64).into(), (credit_micros as f64).into(), (now_ms() as f64).into()],
    )
    .await?;
    dexto_shared::log::event("billing.checkout_created", json!({"user_id": user.id, "session_id": id, "amount_cents": cents}));
    ok_json(200, &json!({"checkout_url": url, "checkout_session_id": id, "sessionUrl": url, "sessionId": id}))
}
