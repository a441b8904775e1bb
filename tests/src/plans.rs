//! Helpers of the plans tests (tests/tests/plans.rs): plans defined through
//! the admin API, Stripe's subscription events in Stripe's shapes, the
//! wallet's two buckets (checked Σ ledger == balance each time they are
//! read), and the period pass with the local test clock.

use crate::stripe_fixtures::id;
use crate::Stack;
use serde_json::{json, Value};

pub const DAY_MS: i64 = 86_400_000;

/// Defines (or redefines) a plan: `included` and `rollover_cap` in USD text.
pub fn define(s: &Stack, id: &str, cents: i64, included: &str, rollover_cap: Option<&str>) -> String {
    let price = format!("price_{id}");
    let r = s.admin("POST", "/admin/plans", Some(json!({"id": id, "name": id, "stripe_price_id": price, "price_cents": cents,
        "included_usd": included, "rollover": rollover_cap.is_some(), "rollover_cap_usd": rollover_cap.unwrap_or("0")})));
    assert_eq!(r.status, 200, "{}", r.body);
    price
}

/// An `invoice.paid` as Stripe sends it for a subscription period (seconds in the line's period).
pub fn invoice_paid(user: &str, sub: &str, price: &str, cents: i64, start_ms: i64, end_ms: i64) -> Value {
    json!({"id": id("evt_"), "object": "event", "type": "invoice.paid", "created": start_ms / 1000, "data": {"object": {
        "id": id("in_"), "object": "invoice", "customer": "cus_plans", "amount_paid": cents, "currency": "usd",
        "billing_reason": "subscription_cycle", "status": "paid",
        "parent": {"type": "subscription_details", "subscription_details": {"subscription": sub, "metadata": {"user_id": user}}},
        "lines": {"data": [{"id": id("il_"), "object": "line_item", "amount": cents, "currency": "usd",
            "pricing": {"type": "price_details", "price_details": {"price": price, "product": "prod_plans"}},
            "period": {"start": start_ms / 1000, "end": end_ms / 1000}}]}}}})
}

pub fn subscription_updated(sub: &str, price: &str, cancel_at_period_end: bool, created_ms: i64) -> Value {
    json!({"id": id("evt_"), "object": "event", "type": "customer.subscription.updated", "created": created_ms / 1000, "data": {"object": {
        "id": sub, "object": "subscription", "status": "active", "cancel_at_period_end": cancel_at_period_end,
        "items": {"data": [{"id": id("si_"), "object": "subscription_item", "price": {"id": price, "object": "price"}}]}}}})
}

pub fn outcome(s: &Stack, event: &Value) -> String {
    let r = s.webhook(event, &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["outcome"].as_str().unwrap_or("").to_string()
}

/// (included, purchased) in micro-USD, after checking Σ ledger == balance per bucket.
pub fn buckets(s: &Stack, user: &str) -> (i64, i64) {
    let u = s.user(user);
    assert_eq!(u["ledger_totals"]["net_micros"], u["balance_micros"], "Σ ledger == balance: {u:#}");
    assert_eq!(u["ledger_totals"]["included_net_micros"], u["included_micros"], "Σ ledger == balance, included: {u:#}");
    let included = u["included_micros"].as_i64().unwrap();
    assert!(included >= 0, "{u:#}");
    (included, u["purchased_micros"].as_i64().unwrap())
}

/// The period pass for `users` as of the test clock (scoped: the tests of
/// this file share a stack and run at once).
pub fn run_periods(s: &Stack, users: &[&str], as_of_ms: i64) -> Value {
    let mut last = Value::Null;
    for user in users {
        last = run_period(s, user, as_of_ms);
    }
    last
}

pub fn run_period(s: &Stack, user: &str, as_of_ms: i64) -> Value {
    let r = s.admin("POST", "/admin/plans/periods", Some(json!({"as_of_ms": as_of_ms, "user_id": user})));
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

pub fn plan_state(s: &Stack, user: &str) -> Value {
    s.user(user)["plan"].clone()
}

pub fn small_chat(s: &Stack, key: &str) {
    let r = s.chat(key, &json!({"model": "openai/gpt-4o-mini", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}));
    assert_eq!(r.status, 200, "{}", r.body);
}

/// The requests the mock Stripe received whose body or path contains `needle`.
pub fn stripe_calls(s: &Stack, needle: &str) -> Vec<Value> {
    let r = crate::get(&format!("{}/__mock/requests?contains={}", s.mock, dexto_shared::url_query::encode(needle)));
    r.json()["requests"].as_array().unwrap().clone()
}

/// The user's reconciliation findings (`GET /admin/reconciliation`).
pub fn findings(s: &Stack, user: &str) -> Vec<Value> {
    let r = crate::get_with(&format!("{}/admin/reconciliation", s.base), &[("Authorization", &format!("Bearer {}", s.admin_token))]);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["data"].as_array().unwrap().iter().filter(|f| f["user_id"] == user).cloned().collect()
}

/// Stripe's state changed out of band (the mock's `/__mock/stripe/*`).
pub fn mock_stripe(s: &Stack, path: &str, body: &Value) -> Value {
    let r = crate::post(&format!("{}{path}", s.mock), &[("Content-Type", "application/json")], body.to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

/// Stripe's `invoice.payment_failed` for the invoice of `paid` (an `invoice.paid` event), created at `created_ms`.
pub fn payment_failed(paid: &Value, created_ms: i64) -> Value {
    let mut invoice = paid["data"]["object"].clone();
    invoice["amount_due"] = invoice["amount_paid"].clone();
    invoice["amount_paid"] = json!(0);
    invoice["status"] = json!("open");
    json!({"id": id("evt_"), "object": "event", "type": "invoice.payment_failed", "created": created_ms / 1000, "data": {"object": invoice}})
}

/// The subscription as Stripe holds it (the mock's `/__mock/stripe/subscriptions`).
pub fn at_stripe(s: &Stack, sub: &str, user: &str, price: &str, status: &str, period_ms: (i64, i64)) {
    let body = json!({"id": sub, "customer": "cus_plans", "price": price, "user_id": user, "status": status,
        "current_period_start": period_ms.0 / 1000, "current_period_end": period_ms.1 / 1000});
    mock_stripe(s, "/__mock/stripe/subscriptions", &body);
}

/// The paid proration invoice of an upgrade from `old` to `new` (price, cents)
/// made at `change_ms` in the period `period_ms`: Stripe credits the unused
/// time at the old price and charges the rest at the new one (rounded down).
pub fn proration_paid(user: &str, sub: &str, old: (&str, i64), new: (&str, i64), change_ms: i64, period_ms: (i64, i64)) -> Value {
    let (left, whole) = ((period_ms.1 - change_ms) as i128, (period_ms.1 - period_ms.0) as i128);
    let part = |cents: i64| (cents as i128 * left / whole) as i64;
    let line = |price: &str, amount: i64| json!({"id": id("il_"), "object": "line_item", "amount": amount, "currency": "usd",
        "pricing": {"type": "price_details", "price_details": {"price": price, "product": "prod_plans"}},
        "parent": {"type": "subscription_item_details", "subscription_item_details": {"subscription": sub, "proration": true}},
        "period": {"start": change_ms / 1000, "end": period_ms.1 / 1000}});
    let mut event = invoice_paid(user, sub, new.0, 0, change_ms, period_ms.1);
    let invoice = &mut event["data"]["object"];
    invoice["billing_reason"] = json!("subscription_update");
    invoice["amount_paid"] = json!(part(new.1) - part(old.1));
    invoice["lines"]["data"] = json!([line(old.0, -part(old.1)), line(new.0, part(new.1))]);
    event["created"] = json!(change_ms / 1000);
    event
}

/// A plan invoice for the period `start_ms..end_ms`, paid through payment
/// intent `pi` (so its refunds and disputes find it), granted.
pub fn grant_paid(s: &Stack, user: &str, sub: &str, price: &str, cents: i64, pi: &str, (start_ms, end_ms): (i64, i64)) {
    let mut paid = invoice_paid(user, sub, price, cents, start_ms, end_ms);
    paid["data"]["object"]["payment_intent"] = json!(pi);
    assert_eq!(outcome(s, &paid), "granted");
}

/// Starts a slow stream (a chunk every 600 ms, up to 1000 tokens held) on
/// `key` and waits until its hold is open; join it for its events.
pub fn slow_call(s: &Stack, user: &str, key: &str, tokens: u32) -> std::thread::JoinHandle<Vec<(String, std::time::Duration)>> {
    let slow = json!({"model": "openai/gpt-4o-mini", "stream": true, "max_tokens": 1000,
        "messages": [{"role": "user", "content": format!("[[mock:tokens={tokens},chunk_delay_ms=600]]")}]});
    let (key, base) = (key.to_string(), s.base.clone());
    let running = std::thread::spawn(move || {
        crate::SseReader::open(&format!("{base}/v1/chat/completions"), &[("Authorization", &format!("Bearer {key}"))], slow.to_string().as_bytes()).collect()
    });
    s.eventually_user(user, "the slow call's hold", |u| u["open_holds"].as_array().is_some_and(|h| h.len() == 1));
    running
}
