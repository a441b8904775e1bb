//! A stand-in for the slice of Stripe's API the gateway calls: creating
//! Checkout Sessions (`POST /v1/checkout/sessions`, form-encoded, secret key
//! as Bearer; honours `Idempotency-Key` like Stripe: the same key replays the
//! first response, the same key with other parameters is a 400), retrieving
//! and listing them (`GET /v1/checkout/sessions[/{id}]`) and listing refunds
//! (`GET /v1/refunds`) and invoices (`GET /v1/invoices`), with Stripe's list
//! shape and cursor pagination.
//!
//! Payments happen out of band here (there is no checkout page): tests pay a
//! session with `POST /__mock/stripe/sessions/{id}/pay` and refund one with
//! `POST /__mock/stripe/refunds`, neither of which sends a webhook — the test
//! decides whether the gateway ever hears of it.

use crate::util;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct Stripe {
    /// Idempotency key → (request body, response).
    idempotent: Mutex<HashMap<String, (Bytes, Value)>>,
    /// Every session and refund, in creation order.
    records: Mutex<Records>,
}

#[derive(Default)]
struct Records {
    sessions: Vec<Value>,
    /// Invoices Stripe holds (subscriptions' periods), as a test made them.
    invoices: Vec<Value>,
    refunds: Vec<Value>,
    /// payment intent → its charge (one charge per paid session here).
    charges: HashMap<String, String>,
}

fn stripe_error(status: u16, message: &str) -> Response {
    util::json_response(StatusCode::from_u16(status).unwrap(), &json!({"error": {"type": "invalid_request_error", "message": message}}))
}

/// Stripe answers 401 without a secret key.
fn authorised(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").starts_with("Bearer sk_")
}

pub async fn create_checkout_session(State(app): State<Arc<crate::App>>, headers: HeaderMap, body: Bytes) -> Response {
    if !authorised(&headers) {
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
        "id": id, "object": "checkout.session", "mode": form.get("mode"), "created": util::now_secs(),
        // The mock's own hosted page (stripe_checkout.rs), on the host the caller used.
        "url": format!("http://{}/c/pay/{id}", headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1")),
        "amount_total": amount * quantity, "currency": form.get("line_items[0][price_data][currency]"),
        "client_reference_id": form.get("client_reference_id"), "metadata": metadata,
        "success_url": form.get("success_url"), "cancel_url": form.get("cancel_url"),
        "payment_status": "unpaid", "status": "open", "payment_intent": null, "livemode": false,
    });
    app.stripe.records.lock().unwrap().sessions.push(resp.clone());
    if let Some(key) = idem {
        app.stripe.idempotent.lock().unwrap().insert(key, (body, resp.clone()));
    }
    util::json_response(StatusCode::OK, &resp)
}

/// `GET /v1/checkout/sessions/{id}`.
pub async fn retrieve_session(State(app): State<Arc<crate::App>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if !authorised(&headers) {
        return stripe_error(401, "Invalid API Key provided.");
    }
    match app.stripe.records.lock().unwrap().sessions.iter().find(|s| s["id"] == id.as_str()) {
        Some(s) => util::json_response(StatusCode::OK, s),
        None => stripe_error(404, &format!("No such checkout.session: '{id}'")),
    }
}

/// `GET /v1/checkout/sessions?created[gte]=&created[lte]=&status=&limit=&starting_after=`.
pub async fn list_sessions(State(app): State<Arc<crate::App>>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let records = app.stripe.records.lock().unwrap().sessions.clone();
    list(&headers, query, "/v1/checkout/sessions", records, &["status"])
}

/// `GET /v1/refunds?created[gte]=&charge=&payment_intent=&limit=&starting_after=`.
pub async fn list_refunds(State(app): State<Arc<crate::App>>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let records = app.stripe.records.lock().unwrap().refunds.clone();
    list(&headers, query, "/v1/refunds", records, &["charge", "payment_intent"])
}

/// `GET /v1/invoices?created[gte]=&status=&limit=&starting_after=`.
pub async fn list_invoices(State(app): State<Arc<crate::App>>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let records = app.stripe.records.lock().unwrap().invoices.clone();
    list(&headers, query, "/v1/invoices", records, &["status", "subscription", "customer"])
}

/// `POST /__mock/stripe/invoices` `{…an invoice object…}`: an invoice Stripe
/// holds (paid, say), whose webhook the test may never deliver.
pub async fn add_invoice(State(app): State<Arc<crate::App>>, body: Bytes) -> Response {
    let invoice: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if !invoice["id"].is_string() || !invoice["created"].is_i64() {
        return stripe_error(400, "an invoice object with `id` and `created` is required");
    }
    app.stripe.records.lock().unwrap().invoices.push(invoice.clone());
    util::json_response(StatusCode::OK, &invoice)
}

/// Stripe's list semantics: newest first (`created` descending, later
/// creations first among equals), `limit` 1..100 (default 10),
/// `starting_after` = the last id of the previous page, `has_more`.
fn list(headers: &HeaderMap, query: Option<String>, url: &str, records: Vec<Value>, equal_filters: &[&str]) -> Response {
    if !authorised(headers) {
        return stripe_error(401, "Invalid API Key provided.");
    }
    let q = util::parse_form(query.as_deref().unwrap_or("").as_bytes());
    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => 10,
        Some(Ok(l)) if (1..=100).contains(&l) => l,
        Some(_) => return stripe_error(400, "Invalid integer: limit must be between 1 and 100."),
    };
    let bound = |name: &str| q.get(&format!("created[{name}]")).and_then(|v| v.parse::<i64>().ok());
    let (gte, gt, lte, lt) = (bound("gte"), bound("gt"), bound("lte"), bound("lt"));
    let mut rows: Vec<(usize, Value)> = records
        .into_iter()
        .enumerate()
        .filter(|(_, r)| {
            let created = r["created"].as_i64().unwrap_or(0);
            gte.is_none_or(|b| created >= b) && gt.is_none_or(|b| created > b) && lte.is_none_or(|b| created <= b) && lt.is_none_or(|b| created < b)
        })
        .filter(|(_, r)| equal_filters.iter().all(|f| q.get(*f).is_none_or(|want| r[*f].as_str() == Some(want.as_str()))))
        .collect();
    rows.sort_by(|(ia, a), (ib, b)| b["created"].as_i64().cmp(&a["created"].as_i64()).then(ib.cmp(ia)));
    let start = match q.get("starting_after") {
        None => 0,
        Some(after) => match rows.iter().position(|(_, r)| r["id"].as_str() == Some(after.as_str())) {
            Some(i) => i + 1,
            None => return stripe_error(400, &format!("No such object: '{after}'")),
        },
    };
    let page: Vec<Value> = rows.iter().skip(start).take(limit).map(|(_, r)| r.clone()).collect();
    let has_more = rows.len() > start + page.len();
    util::json_response(StatusCode::OK, &json!({"object": "list", "url": url, "has_more": has_more, "data": page}))
}

/// `POST /__mock/stripe/sessions/{id}/pay` `{"created"?: unix s}`: the customer
/// pays (no webhook is sent). `created` backdates the session, as if it had
/// been opened then. Answers the session.
pub async fn pay(State(app): State<Arc<crate::App>>, Path(id): Path<String>, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match mark_paid(&app, &id, body.get("created").and_then(Value::as_i64)) {
        Some(session) => util::json_response(StatusCode::OK, &session),
        None => stripe_error(404, &format!("No such checkout.session: '{id}'")),
    }
}

/// A session as Stripe holds it now.
pub(crate) fn session(app: &crate::App, id: &str) -> Option<Value> {
    app.stripe.records.lock().unwrap().sessions.iter().find(|s| s["id"] == id).cloned()
}

/// Completes a session's payment (here or on the hosted page); its new state.
pub(crate) fn mark_paid(app: &crate::App, id: &str, created: Option<i64>) -> Option<Value> {
    let mut records = app.stripe.records.lock().unwrap();
    let index = records.sessions.iter().position(|s| s["id"] == id)?;
    let pi = format!("pi_test_{}", app.ids_hex(24));
    records.charges.insert(pi.clone(), format!("ch_test_{}", app.ids_hex(24)));
    let session = &mut records.sessions[index];
    session["status"] = json!("complete");
    session["payment_status"] = json!("paid");
    session["payment_intent"] = json!(pi);
    if let Some(created) = created {
        session["created"] = json!(created);
    }
    Some(session.clone())
}

/// `POST /__mock/stripe/refunds` `{"payment_intent", "amount", "created"?}`: a
/// refund made in Stripe's dashboard (no webhook is sent). Answers the refund.
pub async fn refund(State(app): State<Arc<crate::App>>, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (Some(pi), Some(amount)) = (body["payment_intent"].as_str(), body["amount"].as_i64().filter(|a| *a > 0)) else {
        return stripe_error(400, "payment_intent and a positive amount are required");
    };
    let mut records = app.stripe.records.lock().unwrap();
    let charge = records.charges.entry(pi.to_string()).or_insert_with(|| format!("ch_test_{}", app.ids_hex(24))).clone();
    let refund = json!({
        "id": format!("re_test_{}", app.ids_hex(24)), "object": "refund", "amount": amount, "currency": "usd",
        "charge": charge, "payment_intent": pi, "status": "succeeded",
        "created": body["created"].as_i64().unwrap_or(util::now_secs() as i64),
    });
    records.refunds.push(refund.clone());
    util::json_response(StatusCode::OK, &refund)
}
