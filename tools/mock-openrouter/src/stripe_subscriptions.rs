//! Stripe's subscriptions, as far as the gateway's plans use them (shapes of
//! Stripe's API reference, form-encoded, secret key as Bearer):
//! `GET /v1/subscriptions/{id}`, `POST /v1/subscriptions/{id}` (change the
//! item's price with `items[0][id]` + `items[0][price]`, `proration_behavior`,
//! `cancel_at_period_end`; with `payment_behavior=pending_if_incomplete` only
//! the parameters pending updates support — the payment always succeeds, so
//! the change applies at once), and `POST /v1/billing_portal/sessions`
//! (`customer`, `return_url`). Subscriptions come into being out of band,
//! as when a subscription Checkout is paid: `POST /__mock/stripe/subscriptions
//! {"id","customer","price","user_id","current_period_start","current_period_end",
//! "status"?,"cancel_at_period_end"?}` (the same id again: Stripe's state changed).
//! No webhook is sent: the test decides what the gateway hears.

use crate::util;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct Subscriptions {
    by_id: Mutex<HashMap<String, Value>>,
}

fn stripe_error(status: u16, code: &str, message: &str) -> Response {
    util::json_response(StatusCode::from_u16(status).unwrap(), &json!({"error": {"type": "invalid_request_error", "code": code, "message": message}}))
}

fn authorised(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").starts_with("Bearer sk_")
}

fn price(id: &str) -> Value {
    json!({"id": id, "object": "price", "currency": "usd", "recurring": {"interval": "month", "interval_count": 1}})
}

/// `POST /__mock/stripe/subscriptions`
pub async fn create(State(app): State<Arc<crate::App>>, body: Bytes) -> Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or_default();
    let (Some(id), Some(price_id)) = (v["id"].as_str(), v["price"].as_str()) else {
        return util::error_response(400, "id and price are required", None);
    };
    let (start, end) = (v["current_period_start"].as_i64().unwrap_or(0), v["current_period_end"].as_i64().unwrap_or(0));
    let item = json!({"id": format!("si_{}", app.ids_hex(14)), "object": "subscription_item", "price": price(price_id), "quantity": 1,
        "subscription": id, "current_period_start": start, "current_period_end": end});
    let status = v["status"].as_str().unwrap_or("active");
    let sub = json!({"id": id, "object": "subscription", "customer": v["customer"], "status": status, "cancel_at_period_end": v["cancel_at_period_end"].as_bool().unwrap_or(false),
        "metadata": {"user_id": v["user_id"]}, "items": {"object": "list", "data": [item]}, "livemode": false});
    app.subscriptions.by_id.lock().unwrap().insert(id.to_string(), sub.clone());
    util::json_response(StatusCode::OK, &sub)
}

/// `GET /v1/subscriptions/{id}`
pub async fn retrieve(State(app): State<Arc<crate::App>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if !authorised(&headers) {
        return stripe_error(401, "api_key_invalid", "Invalid API Key provided.");
    }
    match app.subscriptions.by_id.lock().unwrap().get(&id) {
        Some(sub) => util::json_response(StatusCode::OK, sub),
        None => stripe_error(404, "resource_missing", &format!("No such subscription: '{id}'")),
    }
}

/// `POST /v1/subscriptions/{id}`
pub async fn update(State(app): State<Arc<crate::App>>, headers: HeaderMap, Path(id): Path<String>, body: Bytes) -> Response {
    if !authorised(&headers) {
        return stripe_error(401, "api_key_invalid", "Invalid API Key provided.");
    }
    let form = util::parse_form(&body);
    // Stripe: "When you use pending_if_incomplete you can only pass the
    // parameters supported by pending updates" (no `cancel_at_period_end`).
    let pending_ok = |k: &str| ["expand", "payment_behavior", "proration_behavior", "proration_date", "billing_cycle_anchor", "trial_end", "trial_from_plan", "add_invoice_items"].contains(&k) || k.starts_with("items[");
    if form.get("payment_behavior").map(String::as_str) == Some("pending_if_incomplete") {
        if let Some(bad) = form.keys().find(|k| !pending_ok(k)) {
            return stripe_error(400, "parameter_unknown", &format!("Received unsupported parameter with payment_behavior=pending_if_incomplete: {bad}"));
        }
    }
    let mut all = app.subscriptions.by_id.lock().unwrap();
    let Some(sub) = all.get_mut(&id) else {
        return stripe_error(404, "resource_missing", &format!("No such subscription: '{id}'"));
    };
    if let Some(new_price) = form.get("items[0][price]") {
        let item = &mut sub["items"]["data"][0];
        if form.get("items[0][id]").map(String::as_str) != item["id"].as_str() {
            return stripe_error(400, "resource_missing", "No such subscription item.");
        }
        item["price"] = price(new_price);
    }
    if let Some(cancel) = form.get("cancel_at_period_end") {
        sub["cancel_at_period_end"] = json!(cancel == "true");
    }
    util::json_response(StatusCode::OK, sub)
}

/// `POST /v1/billing_portal/sessions`
pub async fn portal(State(app): State<Arc<crate::App>>, headers: HeaderMap, body: Bytes) -> Response {
    if !authorised(&headers) {
        return stripe_error(401, "api_key_invalid", "Invalid API Key provided.");
    }
    let form = util::parse_form(&body);
    let Some(customer) = form.get("customer") else {
        return stripe_error(400, "parameter_missing", "Missing required param: customer.");
    };
    let id = format!("bps_{}", app.ids_hex(24));
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    util::json_response(StatusCode::OK, &json!({"id": id, "object": "billing_portal.session", "customer": customer,
        "return_url": form.get("return_url"), "url": format!("http://{host}/p/session/{id}"), "livemode": false}))
}
