//! Stripe's API with the secret key (`STRIPE_API_BASE`): form-encoded POSTs
//! with an `Idempotency-Key`, GETs, and list pagination (`limit`,
//! `starting_after`, `has_more`). Errors are logged by status and Stripe's
//! error type only: never the key, the URL or Stripe's message.

use crate::config::BillingConfig;
use dexto_shared::error::GatewayError;
use dexto_shared::stripe::form_encode;
use serde_json::{json, Value};
use worker::{Fetch, Headers, Method, Request, RequestInit};

/// Objects per list page (Stripe's maximum).
pub const PAGE_LIMIT: usize = 100;
/// List pages a reconciliation run reads per list: bounds the run.
pub const MAX_PAGES: usize = 20;

/// `POST path` with a form body; the same `idempotency_key` replays the first answer.
pub async fn post(config: &BillingConfig, path: &str, form: &str, idempotency_key: &str) -> Result<Value, GatewayError> {
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(form.into()));
    let (status, body) = send(config, path, init, &[("Content-Type", "application/x-www-form-urlencoded"), ("Idempotency-Key", idempotency_key)]).await?;
    ok(status, body, path)
}

/// `GET path`: the object, or None if Stripe does not know it (404).
pub async fn get(config: &BillingConfig, path: &str) -> Result<Option<Value>, GatewayError> {
    let mut init = RequestInit::new();
    init.with_method(Method::Get);
    let (status, body) = send(config, path, init, &[]).await?;
    if status == 404 {
        return Ok(None);
    }
    ok(status, body, path).map(Some)
}

/// Every object of a list (`path` with `params`), newest first as Stripe
/// orders them, at most `max_pages` pages; the flag says whether more were left.
pub async fn list(config: &BillingConfig, path: &str, params: &[(&str, String)], max_pages: usize) -> Result<(Vec<Value>, bool), GatewayError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..max_pages {
        let mut query: Vec<(&str, String)> = params.to_vec();
        query.push(("limit", PAGE_LIMIT.to_string()));
        if let Some(a) = &after {
            query.push(("starting_after", a.clone()));
        }
        let page = get(config, &format!("{path}?{}", form_encode(&query))).await?.ok_or(GatewayError::UpstreamUnavailable)?;
        let data = page.get("data").and_then(Value::as_array).cloned().unwrap_or_default();
        after = data.last().and_then(|o| o.get("id")).and_then(Value::as_str).map(str::to_string);
        out.extend(data);
        let more = page.get("has_more").and_then(Value::as_bool).unwrap_or(false);
        if !more || after.is_none() {
            return Ok((out, false));
        }
    }
    Ok((out, true))
}

async fn send(config: &BillingConfig, path: &str, mut init: RequestInit, extra: &[(&str, &str)]) -> Result<(u16, Value), GatewayError> {
    if config.secret_key.is_empty() {
        return Err(GatewayError::Internal("STRIPE_SECRET_KEY not configured".into()));
    }
    let headers = Headers::new();
    let set = |k: &str, v: &str| headers.set(k, v).map_err(|e| GatewayError::Internal(e.to_string()));
    set("Authorization", &format!("Bearer {}", config.secret_key))?;
    for (k, v) in extra {
        set(k, v)?;
    }
    init.with_headers(headers);
    let req = Request::new_with_init(&format!("{}{path}", config.api_base), &init).map_err(|e| GatewayError::Internal(e.to_string()))?;
    let mut resp = Fetch::Request(req).send().await.map_err(|_| GatewayError::UpstreamUnavailable)?;
    let status = resp.status_code();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

fn ok(status: u16, body: Value, path: &str) -> Result<Value, GatewayError> {
    if status == 200 {
        return Ok(body);
    }
    // The path without its query (ids and cursors are not secret, but short is enough).
    let endpoint = path.split('?').next().unwrap_or_default();
    dexto_shared::log::event("billing.stripe_error", json!({"status": status, "endpoint": endpoint, "type": body.pointer("/error/type")}));
    Err(if status >= 500 { GatewayError::UpstreamUnavailable } else { GatewayError::Internal(format!("stripe status {status}")) })
}
