//! Top-ups reconciled with Stripe's records (the billing Worker's hourly cron;
//! here `GET /__scheduled`): the mock plays Stripe's API, and payments and
//! refunds are made there out of band, without a webhook — what a lost
//! webhook looks like. Each drift is reported once however often the cron
//! runs; a lost payment is credited and a lost refund debited through the
//! webhook's own path, so the late webhook changes nothing.

use integration_tests::stripe_fixtures::*;
use integration_tests::{get_with, post, Stack};
use serde_json::{json, Value};
use std::sync::OnceLock;

fn stack() -> &'static Stack {
    static S: OnceLock<Stack> = OnceLock::new();
    S.get_or_init(payments_stack)
}

const KINDS: &[&str] = &["topup_missing", "topup_amount_mismatch", "topup_unknown_to_stripe", "refund_missing"];

/// The user's Stripe findings, newest first.
fn findings(s: &Stack, user: &str) -> Vec<Value> {
    let r = get_with(&format!("{}/admin/reconciliation", s.base), &[("Authorization", &format!("Bearer {}", s.admin_token))]);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["data"].as_array().unwrap().iter().filter(|f| f["user_id"] == user && KINDS.contains(&f["kind"].as_str().unwrap_or(""))).cloned().collect()
}

fn audited(s: &Stack, user: &str) -> usize {
    let r = get_with(&format!("{}/admin/audit?user={user}&action=reconciliation.finding", s.base), &[("Authorization", &format!("Bearer {}", s.admin_token))]);
    r.json()["data"].as_array().unwrap().iter().filter(|e| KINDS.contains(&e["subject"].as_str().unwrap_or(""))).count()
}

fn now_s() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn mock(s: &Stack, path: &str, body: &Value) -> Value {
    let r = post(&format!("{}{path}", s.mock), &[("Content-Type", "application/json")], body.to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

/// The customer pays at Stripe; no webhook is sent. `created` backdates the session.
fn pay_at_stripe(s: &Stack, session: &str, created: Option<i64>) -> Value {
    mock(s, &format!("/__mock/stripe/sessions/{session}/pay"), &json!({"created": created}))
}

/// A refund made in Stripe's dashboard; no webhook is sent.
fn refund_at_stripe(s: &Stack, payment_intent: &str, cents: i64, created: i64) -> Value {
    mock(s, "/__mock/stripe/refunds", &json!({"payment_intent": payment_intent, "amount": cents, "created": created}))
}

#[test]
fn a_paid_session_whose_webhook_never_came_is_credited_once() {
    let s = stack();
    let u = s.new_user("0");
    let (lost, in_flight) = (checkout(s, &u.id, 2500), checkout(s, &u.id, 700));
    let paid = pay_at_stripe(s, &lost, Some(now_s() - 7200));
    let pi = paid["payment_intent"].as_str().unwrap().to_string();
    // Paid a moment ago: its webhook may still be on the way (grace period).
    pay_at_stripe(s, &in_flight, None);
    s.run_cron();
    s.run_cron();

    let found = findings(s, &u.id);
    assert_eq!(found.len(), 1, "once, however often it runs: {found:?}");
    assert_eq!(found[0]["kind"], "topup_missing");
    let d = &found[0]["detail"];
    assert_eq!((d["session_id"].as_str(), d["amount_minor"].as_i64(), d["credit_micros"].as_i64(), d["action"].as_str()), (Some(lost.as_str()), Some(2500), Some(25_000_000), Some("credited")));
    assert_eq!(audited(s, &u.id), 1);
    let user = s.user(&u.id);
    assert_eq!(user["balance_micros"], 25_000_000, "credited exactly what was paid, the session in flight not yet");
    assert_eq!(user["ledger_totals"]["entries"], 1);
    let tx = user["payments"].as_array().unwrap().iter().find(|t| t["id"] == lost.as_str()).unwrap().clone();
    assert_eq!((tx["status"].as_str(), tx["payment_intent"].as_str()), (Some("paid"), Some(pi.as_str())));

    // The webhook turns up after all: a replay, as is any redelivery.
    for kind in ["checkout.session.completed", "checkout.session.async_payment_succeeded"] {
        let r = s.webhook(&session_event(kind, &lost, &u.id, 2500, true, &pi), &[]);
        assert_eq!(r.json()["outcome"], "already_credited", "{}", r.body);
    }
    s.run_cron();
    assert_eq!(balance(s, &u.id), 25_000_000);
    assert_eq!(findings(s, &u.id).len(), 1);
}

#[test]
fn a_refund_made_at_stripe_without_its_webhook_is_debited_once() {
    let s = stack();
    let u = s.new_user("0");
    let cs = checkout(s, &u.id, 2000);
    let pi = pay_at_stripe(s, &cs, None)["payment_intent"].as_str().unwrap().to_string();
    assert_eq!(s.webhook(&session_event("checkout.session.completed", &cs, &u.id, 2000, true, &pi), &[]).json()["outcome"], "credited");
    let refund = refund_at_stripe(s, &pi, 500, now_s() - 7200);
    let charge = refund["charge"].as_str().unwrap().to_string();
    // Another payment, refunded a moment ago: its webhook may be on the way.
    let other = checkout(s, &u.id, 1000);
    let other_pi = pay_at_stripe(s, &other, None)["payment_intent"].as_str().unwrap().to_string();
    assert_eq!(s.webhook(&session_event("checkout.session.completed", &other, &u.id, 1000, true, &other_pi), &[]).json()["outcome"], "credited");
    refund_at_stripe(s, &other_pi, 1000, now_s());
    s.run_cron();
    s.run_cron();

    let found = findings(s, &u.id);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["kind"], "refund_missing");
    let d = &found[0]["detail"];
    assert_eq!((d["charge"].as_str(), d["refunded_minor"].as_i64(), d["applied_micros"].as_i64(), d["debit_micros"].as_i64()), (Some(charge.as_str()), Some(500), Some(0), Some(-5_000_000)));
    assert_eq!(balance(s, &u.id), 25_000_000, "$20 + $10 paid, $5 refunded; the refund in flight not yet");

    // The late webhook (Stripe's cumulative amount) is a replay.
    let late = json!({"id": id("evt_"), "type": "charge.refunded", "data": {"object": {
        "id": charge, "object": "charge", "payment_intent": pi, "currency": "usd", "amount_refunded": 500}}});
    assert_eq!(s.webhook(&late, &[]).json()["outcome"], "already_refunded");
    assert_eq!(balance(s, &u.id), 25_000_000);

    // A second partial refund of the same charge, also lost: only what is new is debited.
    refund_at_stripe(s, &pi, 300, now_s() - 3700);
    s.run_cron();
    s.run_cron();
    let found = findings(s, &u.id);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!((found[0]["detail"]["refunded_minor"].as_i64(), found[0]["detail"]["debit_micros"].as_i64()), (Some(800), Some(-3_000_000)));
    assert_eq!(balance(s, &u.id), 22_000_000);
    assert_eq!(audited(s, &u.id), 2);
}

#[test]
fn credits_stripe_does_not_back_are_reported_once_and_left_to_an_operator() {
    let s = stack();
    let u = s.new_user("0");
    // A session Stripe has open and unpaid, credited by a webhook that says otherwise.
    let unpaid = checkout(s, &u.id, 1500);
    assert_eq!(s.webhook(&session_event("checkout.session.completed", &unpaid, &u.id, 1500, true, &id("pi_")), &[]).json()["outcome"], "credited");
    // A session Stripe has never heard of, recorded and credited here.
    let ghost = id("cs_test_ghost");
    let now_ms = now_s() * 1000;
    s.d1(&format!(
        "INSERT INTO stripe_transactions (id, user_id, kind, amount_minor, currency, credit_micros, status, created_at, updated_at)
         VALUES ('{ghost}', '{}', 'checkout', 1500, 'usd', 15000000, 'pending', {now_ms}, {now_ms})",
        u.id
    ));
    assert_eq!(s.webhook(&session_event("checkout.session.completed", &ghost, &u.id, 1500, true, &id("pi_")), &[]).json()["outcome"], "credited");
    // A paid $20 session credited as $10.
    let short = checkout(s, &u.id, 2000);
    let pi = pay_at_stripe(s, &short, None)["payment_intent"].as_str().unwrap().to_string();
    assert_eq!(s.webhook(&session_event("checkout.session.completed", &short, &u.id, 1000, true, &pi), &[]).json()["outcome"], "credited");
    s.run_cron();
    s.run_cron();

    let found = findings(s, &u.id);
    assert_eq!(found.len(), 3, "each once: {found:?}");
    let by = |kind: &str, session: &str| found.iter().find(|f| f["kind"] == kind && f["detail"]["session_id"] == session).unwrap_or_else(|| panic!("{kind} {session} in {found:?}"));
    assert_eq!(by("topup_unknown_to_stripe", &unpaid)["detail"]["stripe"], json!({"status": "open", "payment_status": "unpaid"}));
    assert_eq!(by("topup_unknown_to_stripe", &ghost)["detail"]["stripe"], "unknown");
    assert_eq!(by("topup_unknown_to_stripe", &ghost)["detail"]["credited_micros"], 15_000_000);
    let d = &by("topup_amount_mismatch", &short)["detail"];
    assert_eq!((d["granted_micros"].as_i64(), d["credited_micros"].as_i64()), (Some(20_000_000), Some(10_000_000)));
    assert_eq!(audited(s, &u.id), 3);
    assert_eq!(balance(s, &u.id), 40_000_000, "reported, not corrected: $15 + $15 + $10 as credited");
}

#[test]
fn a_lost_refund_is_found_even_when_an_older_one_of_the_charge_was_applied() {
    // $10 refunded 8 days ago (its webhook applied), then $5 more refunded
    // without a webhook: the 7-day window holds only the $5 one, which alone
    // looks "covered" by the $10 applied. The charge's whole list decides.
    let s = stack();
    let u = s.new_user("0");
    let cs = checkout(s, &u.id, 3000);
    let pi = pay_at_stripe(s, &cs, Some(now_s() - 9 * 86_400))["payment_intent"].as_str().unwrap().to_string();
    assert_eq!(s.webhook(&session_event("checkout.session.completed", &cs, &u.id, 3000, true, &pi), &[]).json()["outcome"], "credited");
    let old = refund_at_stripe(s, &pi, 1000, now_s() - 8 * 86_400);
    let charge = old["charge"].as_str().unwrap().to_string();
    let applied = json!({"id": id("evt_"), "type": "charge.refunded", "data": {"object": {
        "id": charge, "object": "charge", "payment_intent": pi, "currency": "usd", "amount_refunded": 1000}}});
    assert_eq!(s.webhook(&applied, &[]).status, 200);
    assert_eq!(balance(s, &u.id), 20_000_000);
    refund_at_stripe(s, &pi, 500, now_s() - 7200);
    s.run_cron();
    s.run_cron();

    let found = findings(s, &u.id);
    assert_eq!(found.len(), 1, "{found:?}");
    let d = &found[0]["detail"];
    assert_eq!((found[0]["kind"].as_str(), d["refunded_minor"].as_i64(), d["debit_micros"].as_i64()), (Some("refund_missing"), Some(1500), Some(-5_000_000)));
    assert_eq!(balance(s, &u.id), 15_000_000, "$30 paid, $10 + $5 refunded");
}
