//! Stripe payments through the real stack: checkout sessions against a local
//! Stripe API, webhooks signed exactly as Stripe signs them; paid sessions
//! credit exactly once whatever the delivery pattern; subscription grants, the
//! intro credit. Refunds and disputes: refunds_disputes.rs.

use dexto_shared::stripe::sign;
use integration_tests::stripe_fixtures::*;
use integration_tests::Stack;
use serde_json::{json, Value};
use std::sync::OnceLock;

fn stack() -> &'static Stack {
    static S: OnceLock<Stack> = OnceLock::new();
    S.get_or_init(payments_stack)
}

#[test]
fn checkout_sessions_are_created_with_stripe() {
    let s = stack();
    let sub = id("u-");
    let token = s.session_token(&sub, "buyer@example.com");
    let r = s.call("POST", "/api/billing/checkout-session", &token, Some(json!({"credits_usd": 25, "return_url": "https://dexto.ai/done"})));
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    let cs = body["checkout_session_id"].as_str().unwrap().to_string();
    assert!(cs.starts_with("cs_test_") && body["checkout_url"].as_str().unwrap().contains(&cs));
    let call = &integration_tests::get(&format!("{}/__mock/requests?contains=client_reference_id%3D{sub}", s.mock)).json()["requests"][0];
    assert_eq!(call["authorization"], "Bearer sk_test_mock");
    let form = call["body"].as_str().unwrap();
    for field in ["mode=payment", "unit_amount%5D=2500", &format!("client_reference_id={sub}"), "success_url=https%3A%2F%2Fdexto.ai%2Fdone"] {
        assert!(form.contains(field), "{field} in {form}");
    }
    let pending = &s.user(&sub)["payments"][0];
    assert_eq!((pending["id"].as_str(), pending["status"].as_str(), pending["amount_minor"].as_i64(), pending["credit_micros"].as_i64()), (Some(cs.as_str()), Some("pending"), Some(2500), Some(25_000_000)));

    // A return_url elsewhere than the configured origins is refused (no open redirect).
    for evil in ["http://localhost.evil.tld/x", "https://dexto.ai.evil.tld/", "https://dexto.ai@evil.tld/", "https://evil.tld/"] {
        let r = s.call("POST", "/api/billing/checkout-session", &token, Some(json!({"credits_usd": 25, "return_url": evil})));
        assert_eq!(r.status, 400, "{evil}: {}", r.body);
        assert!(r.json()["error"]["message"].as_str().unwrap().contains("https://dexto.ai"), "{}", r.body);
    }

    // Without a return_url, Checkout returns to the dashboard on the origin
    // that was called (locally: this stack, not dexto.ai).
    let plain = s.call("POST", "/api/billing/checkout-session", &token, Some(json!({"credits_usd": 5})));
    assert_eq!(plain.status, 200, "{}", plain.body);
    let plain_id = plain.json()["checkout_session_id"].as_str().unwrap().to_string();
    let sessions = integration_tests::get(&format!("{}/__mock/requests?contains=client_reference_id%3D{sub}", s.mock)).json();
    let form = sessions["requests"].as_array().unwrap().last().unwrap()["body"].as_str().unwrap().to_string();
    let back = dexto_shared::url_query::encode(&format!("{}/dashboard/settings/billing", s.base));
    assert!(form.contains(&format!("success_url={back}%3Fsession_id%3D%7BCHECKOUT_SESSION_ID%7D")), "{form}");
    assert!(form.contains(&format!("cancel_url={back}&")) || form.ends_with(&format!("cancel_url={back}")), "{form}");
    assert!(!plain_id.is_empty());

    // The plan's endpoint sells packs only; bounds are enforced on both.
    assert!(s.call("POST", "/api/stripe/create-checkout-session", &token, Some(json!({"credits_usd": 50}))).json()["sessionUrl"].is_string());
    for (path, amount) in [("/api/stripe/create-checkout-session", json!(30)), ("/api/billing/checkout-session", json!(4)), ("/api/billing/checkout-session", json!(501)), ("/api/billing/checkout-session", json!("lots"))] {
        assert_eq!(s.call("POST", path, &token, Some(json!({"credits_usd": amount}))).status, 400, "{path} {amount}");
    }
    // A retried request with the same Idempotency-Key gets the same session.
    let auth = format!("Bearer {token}");
    let retry = |_: u8| {
        integration_tests::post(&format!("{}/api/billing/checkout-session", s.base), &[("Authorization", &auth), ("Idempotency-Key", "retry-1")], br#"{"credits_usd":10}"#).json()["checkout_session_id"].clone()
    };
    assert_eq!(retry(1), retry(2));
    assert_eq!(s.call("POST", "/api/billing/checkout-session", "", Some(json!({"credits_usd": 10}))).status, 401);
}

#[test]
fn the_signature_matrix_rejects_without_side_effects() {
    let s = stack();
    let u = s.new_user("0");
    let event = session_event("checkout.session.completed", &checkout(s, &u.id, 1000), &u.id, 1000, true, &id("pi_"));
    let body = event.to_string();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let good = sign(body.as_bytes(), &s.webhook_secret, now);
    let other_v1 = sign(body.as_bytes(), "whsec_wrong", now).split_once(",v1=").unwrap().1.to_string();
    let reserialised = serde_json::to_string_pretty(&event).unwrap();
    let cases: Vec<(&str, Option<String>, &[u8])> = vec![
        ("malformed header", Some("t=abc,v1".into()), body.as_bytes()),
        ("only v0", Some(good.replace("v1=", "v0=")), body.as_bytes()),
        ("wrong secret", Some(sign(body.as_bytes(), "whsec_wrong", now)), body.as_bytes()),
        ("301 s old", Some(sign(body.as_bytes(), &s.webhook_secret, now - 301)), body.as_bytes()),
        ("body re-serialised", Some(good.clone()), reserialised.as_bytes()),
        ("missing header", None, body.as_bytes()),
    ];
    for (name, sig, payload) in cases {
        let r = s.webhook_raw(payload, sig.as_deref(), &[]);
        assert_eq!(r.status, 400, "{name}: {}", r.body);
    }
    assert_eq!(balance(s, &u.id), 0, "nothing was credited");
    let mixed = format!("t={now},v1={other_v1},v1={}", good.split_once(",v1=").unwrap().1);
    assert_eq!(s.webhook_raw(body.as_bytes(), Some(&mixed), &[]).status, 200, "one good and one bad v1");
    assert_eq!(balance(s, &u.id), 10_000_000);
}

#[test]
fn one_credit_per_session_however_it_is_delivered() {
    let s = stack();
    let u = s.new_user("0");
    let (cs, pi) = (checkout(s, &u.id, 2500), id("pi_"));
    let event = session_event("checkout.session.completed", &cs, &u.id, 2500, true, &pi);
    for _ in 0..20 {
        assert_eq!(s.webhook(&event, &[]).status, 200);
    }
    std::thread::scope(|scope| {
        for _ in 0..10 {
            scope.spawn(|| assert_eq!(s.webhook(&event, &[]).status, 200));
        }
    });
    // The other event type for the same session is a replay too.
    let other = session_event("checkout.session.async_payment_succeeded", &cs, &u.id, 2500, true, &pi);
    assert_eq!(s.webhook(&other, &[]).json()["outcome"], "already_credited");
    let user = s.user(&u.id);
    assert_eq!(user["balance_micros"], 25_000_000);
    assert_eq!(user["ledger_totals"]["entries"], 1);
    let tx = &user["payments"][0];
    assert_eq!((tx["id"].as_str(), tx["status"].as_str(), tx["payment_intent"].as_str(), tx["credit_micros"].as_i64()), (Some(cs.as_str()), Some("paid"), Some(pi.as_str()), Some(25_000_000)));
    let sql = format!("SELECT COUNT(*) AS n FROM processed_webhook_events WHERE event_id = '{}'", event["id"].as_str().unwrap());
    s.d1_until(&sql, |rows| rows.first().is_some_and(|r| r["n"] == 1)); // the dedupe record, written in the credit's batch
}

#[test]
fn unpaid_sessions_wait_for_async_success_and_failures_are_marked() {
    let s = stack();
    let u = s.new_user("0");
    let (cs, pi) = (checkout(s, &u.id, 1000), id("pi_"));
    let r = s.webhook(&session_event("checkout.session.completed", &cs, &u.id, 1000, false, &pi), &[]);
    assert_eq!(r.json()["outcome"], "awaiting_payment");
    assert_eq!(balance(s, &u.id), 0);
    s.webhook(&session_event("checkout.session.async_payment_succeeded", &cs, &u.id, 1000, true, &pi), &[]);
    s.webhook(&session_event("checkout.session.async_payment_succeeded", &cs, &u.id, 1000, true, &pi), &[]);
    assert_eq!(balance(s, &u.id), 10_000_000);

    let failed = checkout(s, &u.id, 1000);
    s.webhook(&session_event("checkout.session.async_payment_failed", &failed, &u.id, 1000, false, &id("pi_")), &[]);
    assert_eq!(balance(s, &u.id), 10_000_000);
    // Currencies we do not sell credit nothing (and are left for review).
    let mut eur = session_event("checkout.session.completed", &checkout(s, &u.id, 1000), &u.id, 1000, true, &id("pi_"));
    eur["data"]["object"]["currency"] = json!("eur");
    assert_eq!(s.webhook(&eur, &[]).json()["outcome"], "needs_review");
    assert_eq!(balance(s, &u.id), 10_000_000);
    assert_eq!(s.webhook(&json!({"id": id("evt_"), "type": "customer.created", "data": {"object": {}}}), &[]).json()["outcome"], "ignored");
}

#[test]
fn a_crash_before_the_credit_leaves_no_dedupe_record_so_redelivery_credits() {
    let s = stack();
    let u = s.new_user("0");
    let event = session_event("checkout.session.completed", &checkout(s, &u.id, 2000), &u.id, 2000, true, &id("pi_"));
    let crashed = s.webhook(&event, &[("X-Test-Fault", "crash-before-credit")]);
    assert_eq!(crashed.status, 500);
    assert_eq!(balance(s, &u.id), 0);
    let seen = s.d1(&format!("SELECT COUNT(*) AS n FROM processed_webhook_events WHERE event_id = '{}'", event["id"].as_str().unwrap()));
    assert_eq!(seen[0]["n"], 0, "a dedupe record without its credit would lose the money");
    assert_eq!(s.webhook(&event, &[]).json()["outcome"], "credited");
    assert_eq!(s.webhook(&event, &[]).json()["outcome"], "already_credited");
    assert_eq!(balance(s, &u.id), 20_000_000);
}

#[test]
fn a_crash_after_the_credit_then_redelivery_credits_once() {
    let s = stack();
    let u = s.new_user("0");
    let event = session_event("checkout.session.completed", &checkout(s, &u.id, 5000), &u.id, 5000, true, &id("pi_"));
    let crashed = s.webhook(&event, &[("X-Test-Fault", "crash-after-credit")]);
    assert_eq!(crashed.status, 500, "Stripe sees a failure and will redeliver");
    let redelivered = s.webhook(&event, &[]);
    assert_eq!(redelivered.json()["outcome"], "already_credited");
    let user = s.user(&u.id);
    assert_eq!((user["balance_micros"].as_i64(), user["ledger_totals"]["entries"].as_i64()), (Some(50_000_000), Some(1)));
}

#[test]
fn topped_up_credit_pays_for_chat_at_once_and_moves_the_upstream_limit() {
    let s = stack();
    let u = s.new_user("0");
    let chat = json!({"model": "openai/gpt-4o", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(s.chat(&u.key, &chat).status, 402);
    paid_user_into(s, &u.id, 1000);
    assert_eq!(s.chat(&u.key, &chat).status, 200);
    let sql = format!("SELECT upstream_hash FROM upstream_keys WHERE user_id = '{}' AND status = 'active'", u.id);
    let hash = s.d1_until(&sql, |rows| rows.first().is_some_and(|r| r["upstream_hash"].is_string()))[0]["upstream_hash"].as_str().unwrap().to_string();
    let key = |_: &Value| {
        let r = integration_tests::get_with(&format!("{}/keys/{hash}", s.mock), &[("Authorization", &format!("Bearer {}", mock_openrouter::DEFAULT_MANAGEMENT_KEY))]);
        r.json()["data"]["limit"].as_f64().unwrap_or(0.0) >= 10.0
    };
    s.eventually_user(&u.id, "upstream limit ≥ $10", key);
}

#[test]
fn subscription_invoices_grant_monthly_credit_until_cancelled() {
    let s = stack();
    let u = s.new_user("0");
    let sub = id("sub_");
    let invoice = |price: &str| json!({"id": id("evt_"), "type": "invoice.paid", "data": {"object": {
        "id": id("in_"), "object": "invoice", "customer": "cus_1", "subscription": sub,
        "amount_paid": 2000, "currency": "usd", "billing_reason": "subscription_cycle",
        "subscription_details": {"metadata": {"user_id": u.id}},
        "lines": {"data": [{"price": {"id": price}}]}}}});
    let first = invoice("price_monthly");
    for _ in 0..5 {
        s.webhook(&first, &[]);
    }
    assert_eq!(balance(s, &u.id), 20_000_000);
    assert_eq!(s.webhook(&invoice("price_other"), &[]).json()["outcome"], "ignored");
    let mut trial = invoice("price_monthly");
    trial["data"]["object"]["amount_paid"] = json!(0);
    assert_eq!(s.webhook(&trial, &[]).json()["outcome"], "ignored", "a $0 trial invoice grants nothing");
    let mut proration = invoice("price_monthly");
    proration["data"]["object"]["billing_reason"] = json!("subscription_update");
    assert_eq!(s.webhook(&proration, &[]).json()["outcome"], "ignored", "proration invoices grant nothing");
    let mut euro = invoice("price_monthly");
    euro["data"]["object"]["currency"] = json!("eur");
    assert_eq!(s.webhook(&euro, &[]).json()["outcome"], "needs_review", "a currency we do not sell in grants nothing");
    let mut short = invoice("price_monthly");
    short["data"]["object"]["amount_paid"] = json!(500);
    assert_eq!(s.webhook(&short, &[]).json()["outcome"], "needs_review", "never more credit than was paid");
    assert_eq!(balance(s, &u.id), 20_000_000);
    s.webhook(&invoice("price_monthly"), &[]);
    assert_eq!(balance(s, &u.id), 40_000_000, "the next month's invoice grants again");
    s.webhook(&json!({"id": id("evt_"), "type": "customer.subscription.deleted", "data": {"object": {"id": sub, "object": "subscription"}}}), &[]);
    assert_eq!(s.webhook(&invoice("price_monthly"), &[]).json()["outcome"], "subscription_canceled");
    assert_eq!(balance(s, &u.id), 40_000_000);
}

#[test]
fn the_intro_credit_is_granted_once_per_user_and_balance_is_served() {
    let s = stack();
    let sub = id("u-");
    let token = s.session_token(&sub, "new@example.com");
    for _ in 0..3 {
        assert_eq!(s.call("POST", "/api/provision", &token, Some(json!({}))).status, 200);
    }
    assert_eq!(s.call("POST", "/keys/provision", &token, Some(json!({"name": "Dexto CLI Key"}))).status, 200);
    let user = s.user(&sub);
    assert_eq!(user["balance_micros"], 1_500_000);
    assert_eq!(user["recent_ledger"][0]["kind"], "intro_credit");
    assert_eq!(user["ledger_totals"]["entries"], 1);
    let b = s.call("GET", "/api/billing/balance", &token, None);
    assert_eq!(b.status, 200, "{}", b.body);
    assert_eq!(b.json()["credits_usd"], 1.5);
}

#[test]
fn only_top_ups_the_gateway_created_are_credited() {
    let s = stack();
    let u = s.new_user("0");
    // A paid session nobody created through the gateway (a Payment Link, say).
    let foreign = s.webhook(&session_event("checkout.session.completed", &id("cs_test_"), &u.id, 5000, true, &id("pi_")), &[]);
    assert_eq!(foreign.json()["outcome"], "needs_review");
    // A session created for another user cannot be redirected to this one.
    let other = s.new_user("0");
    let theirs = checkout(s, &other.id, 1000);
    assert_eq!(s.webhook(&session_event("checkout.session.completed", &theirs, &u.id, 1000, true, &id("pi_")), &[]).json()["outcome"], "needs_review");
    // Subscriptions bought through Checkout are paid by invoices, not as top-ups.
    let mut sub = session_event("checkout.session.completed", &checkout(s, &u.id, 1000), &u.id, 1000, true, &id("pi_"));
    sub["data"]["object"]["mode"] = json!("subscription");
    assert_eq!(s.webhook(&sub, &[]).json()["outcome"], "not_a_top_up");
    assert_eq!((balance(s, &u.id), balance(s, &other.id)), (0, 0));
}
