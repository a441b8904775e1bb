//! Stripe fixtures for the payment tests: events shaped as Stripe sends them,
//! Checkout Sessions created through the gateway, paid users.

use crate::{start, Stack, TestUser};
use serde_json::{json, Value};

/// The billing settings the payment tests expect.
pub const PAYMENTS_VARS: [(&str, &str); 4] =
    [("BILLING_TEST_FAULTS", "1"), ("SUBSCRIPTION_PRICE_ID", "price_monthly"), ("SUBSCRIPTION_CREDIT_USD", "20"), ("INTRO_CREDIT_USD", "1.5")];

/// A stack with the billing settings the payment tests expect.
pub fn payments_stack() -> Stack {
    start(&PAYMENTS_VARS)
}

pub fn id(prefix: &str) -> String {
    dexto_shared::ids::new_id(prefix)
}

pub fn session_event(kind: &str, session: &str, user: &str, cents: i64, paid: bool, pi: &str) -> Value {
    json!({"id": id("evt_"), "object": "event", "type": kind, "data": {"object": {
        "id": session, "object": "checkout.session", "amount_total": cents, "currency": "usd",
        "client_reference_id": user, "metadata": {"user_id": user}, "mode": "payment", "livemode": false,
        "payment_status": if paid { "paid" } else { "unpaid" }, "payment_intent": pi, "customer": null}}})
}

/// A Checkout Session created through the gateway for `user` (as the CLI does).
pub fn checkout(s: &Stack, user: &str, cents: i64) -> String {
    let token = s.session_token(user, "buyer@example.com");
    let r = s.call("POST", "/api/billing/checkout-session", &token, Some(json!({"credits_usd": cents as f64 / 100.0})));
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["checkout_session_id"].as_str().unwrap().to_string()
}

pub fn balance(s: &Stack, user: &str) -> i64 {
    s.user(user)["balance_micros"].as_i64().unwrap()
}

pub fn paid_user(s: &Stack, cents: i64) -> (TestUser, String, String) {
    let u = s.new_user("0");
    let (cs, pi) = (checkout(s, &u.id, cents), id("pi_"));
    let r = s.webhook(&session_event("checkout.session.completed", &cs, &u.id, cents, true, &pi), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    (u, cs, pi)
}

pub fn paid_user_into(s: &Stack, user: &str, cents: i64) {
    let r = s.webhook(&session_event("checkout.session.completed", &checkout(s, user, cents), user, cents, true, &id("pi_")), &[]);
    assert_eq!(r.json()["outcome"], "credited", "{}", r.body);
}

pub fn charge_event(kind: &str, pi: &str, extra: Value) -> Value {
    let mut object = json!({"id": id("ch_"), "object": "charge", "payment_intent": pi, "currency": "usd"});
    for (k, v) in extra.as_object().unwrap() {
        object[k] = v.clone();
    }
    json!({"id": id("evt_"), "type": kind, "data": {"object": object}})
}
