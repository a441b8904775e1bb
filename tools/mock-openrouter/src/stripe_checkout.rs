//! A stand-in for Stripe's hosted Checkout page, so a browser can buy credit
//! against the local stack: `GET /c/pay/{id}` shows the session's amount and
//! a Pay button; paying marks the session paid, redirects to its
//! `success_url` (with `{CHECKOUT_SESSION_ID}` filled in, as Stripe does) and
//! delivers a signed `checkout.session.completed` event to the webhook
//! endpoint set by `PUT /__mock/stripe/webhook {"url","secret","hold"?}`.
//! With `hold: true` events queue until `POST /__mock/stripe/deliver`, so a
//! test can see the page wait for the webhook.

use crate::util;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct Checkout {
    webhook: Mutex<Option<Webhook>>,
    held: Mutex<Vec<String>>,
}

#[derive(Clone)]
struct Webhook {
    url: String,
    secret: String,
    hold: bool,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

pub async fn page(State(app): State<Arc<crate::App>>, Path(id): Path<String>) -> Response {
    let Some(session) = crate::stripe::session(&app, &id) else {
        return util::error_response(404, "No such checkout session", None);
    };
    let cents = session["amount_total"].as_i64().unwrap_or(0);
    Html(format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Mock Stripe Checkout</title></head><body>
<h1>Pay ${}.{:02} (mock Stripe)</h1><form method="post" action="/c/pay/{id}"><button id="pay" type="submit">Pay</button></form>
<p><a id="cancel" href="{cancel}">Cancel</a></p></body></html>"#,
        cents / 100,
        cents % 100,
        id = esc(&id),
        cancel = esc(session["cancel_url"].as_str().unwrap_or("/")),
    ))
    .into_response()
}

pub async fn pay(State(app): State<Arc<crate::App>>, Path(id): Path<String>) -> Response {
    let Some(session) = crate::stripe::mark_paid(&app, &id, None) else {
        return util::error_response(404, "No such checkout session", None);
    };
    let event = json!({"id": format!("evt_mock_{}", app.ids_hex(16)), "object": "event", "type": "checkout.session.completed",
        "created": util::now_secs(), "data": {"object": session}}).to_string();
    let hook = app.checkout.webhook.lock().unwrap().clone();
    match hook {
        Some(h) if h.hold => app.checkout.held.lock().unwrap().push(event),
        Some(h) => drop(tokio::spawn(deliver(h, event))),
        None => {}
    }
    let to = session["success_url"].as_str().unwrap_or("/").replace("{CHECKOUT_SESSION_ID}", &id);
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

/// `PUT /__mock/stripe/webhook`
pub async fn configure(State(app): State<Arc<crate::App>>, body: Bytes) -> Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or_default();
    let (Some(url), Some(secret)) = (v["url"].as_str(), v["secret"].as_str()) else {
        return util::error_response(400, "url and secret are required", None);
    };
    *app.checkout.webhook.lock().unwrap() = Some(Webhook { url: url.into(), secret: secret.into(), hold: v["hold"].as_bool().unwrap_or(false) });
    util::json_response(StatusCode::OK, &json!({"ok": true}))
}

/// `POST /__mock/stripe/deliver`: sends every held event; answers their statuses.
pub async fn deliver_held(State(app): State<Arc<crate::App>>) -> Response {
    let events: Vec<String> = std::mem::take(&mut *app.checkout.held.lock().unwrap());
    let Some(hook) = app.checkout.webhook.lock().unwrap().clone() else { return util::error_response(400, "no webhook configured", None) };
    let mut statuses = Vec::new();
    for e in events {
        statuses.push(deliver(hook.clone(), e).await);
    }
    util::json_response(StatusCode::OK, &json!({"delivered": statuses}))
}

/// Signs as Stripe does (the gateway's own `stripe::sign`, the exact inverse
/// of what the webhook verifies) and posts.
async fn deliver(hook: Webhook, payload: String) -> u16 {
    let signature = dexto_shared::stripe::sign(payload.as_bytes(), &hook.secret, util::now_secs() as i64);
    util::http_post(&hook.url, &[("Stripe-Signature", &signature), ("Content-Type", "application/json")], payload.into_bytes()).await
}
