//! A stand-in for the slice of Stripe's API the gateway calls: creating
//! Checkout Sessions (`POST /v1/checkout/sessions`, form-encoded, secret key
//! as Bearer). Honours `Idempotency-Key` like Stripe: the same key replays the
//! first response; the same key with other parameters is a 400.

use crate::util;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct Stripe {
    /// Idempotency key → (request body, response).
    idempotent: Mutex<HashMap<String, (Bytes, Value)>>,
}

fn stripe_error(status: u16, message: &str) -> Response {
    util::json_response(StatusCode::from_u16(status).unwrap(), &json!({"error": {"type": "invalid_request_error", "message": message}}))
}

pub async fn create_checkout_session(State(app): State<Arc<crate::App>>, headers: HeaderMap, body: Bytes) -> Response {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    if !auth.starts_with("Bearer sk_") {
        return stripe_error(401, "Invalid API Key provided.");
    }
    let idem = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_string);
    if let Some(key) = &idem {
        if let Some((first_body, resp)) = app.stripe.idempotent.lock().unwrap().get(key) {
            if *first_body != body {
                return stripe_error(400, "Keys for idempotent requests can only be used with the same parameters they were first used with.");
            }
            return util::json_response(StatusCode::OK, resp);
        }
    }
    let form = util::parse_form(&body);
    let amount: i64 = form.get("line_items[0][price_data][unit_amount]").and_then(|v| v.parse().ok()).unwrap_or(0);
    let quantity: i64 = form.get("line_items[0][quantity]").and_then(|v| v.parse().ok()).unwrap_or(1);
    let metadata: Map<String, Value> = form
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("metadata[").and_then(|r| r.strip_suffix(']')).map(|name| (name.to_string(), json!(v))))
        .collect();
    let id = format!("cs_test_{}", app.ids_hex(24));
    let resp = json!({
        "id": id, "object": "checkout.session", "mode": form.get("mode"),
        // The mock's own hosted page (stripe_checkout.rs), on the host the caller used.
        "url": format!("http://{}/c/pay/{id}", headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1")),
        "amount_total": amount * quantity, "currency": form.get("line_items[0][price_data][currency]"),
        "client_reference_id": form.get("client_reference_id"), "metadata": metadata,
        "success_url": form.get("success_url"), "cancel_url": form.get("cancel_url"),
        "payment_status": "unpaid", "status": "open", "livemode": false,
    });
    if let Some(key) = idem {
        app.stripe.idempotent.lock().unwrap().insert(key, (body, resp.clone()));
    }
    app.checkout.remember(&resp);
    util::json_response(StatusCode::OK, &resp)
}
