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

fn decode(s: &str) -> String {
    let bytes = s.replace('+', " ").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or(""), 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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
    let form: HashMap<String, String> =
        std::str::from_utf8(&body).unwrap_or("").split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (decode(k), decode(v))).collect();
    let amount: i64 = form.get("line_items[0][price_data][unit_amount]").and_then(|v| v.parse().ok()).unwrap_or(0);
    let quantity: i64 = form.get("line_items[0][quantity]").and_then(|v| v.parse().ok()).unwrap_or(1);
    let metadata: Map<String, Value> = form
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("metadata[").and_then(|r| r.strip_suffix(']')).map(|name| (name.to_string(), json!(v))))
        .collect();
    let id = format!("cs_test_{}", app.ids_hex(24));
    let resp = json!({
        "id": id, "object": "checkout.session", "mode": form.get("mode"),
        "url": format!("https://checkout.stripe.com/c/pay/{id}"),
        "amount_total": amount * quantity, "currency": form.get("line_items[0][price_data][currency]"),
        "client_reference_id": form.get("client_reference_id"), "metadata": metadata,
        "success_url": form.get("success_url"), "cancel_url": form.get("cancel_url"),
        "payment_status": "unpaid", "status": "open", "livemode": false,
    });
    if let Some(key) = idem {
        app.stripe.idempotent.lock().unwrap().insert(key, (body, resp.clone()));
    }
    util::json_response(StatusCode::OK, &resp)
}
