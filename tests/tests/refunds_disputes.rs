//! Money going back after a payment: refunds (cumulative, out of order, on
//! invoice payments, on payments the gateway never saw) and disputes (freeze
//! while any is open, won or lost, late redeliveries) through the real stack.

use integration_tests::stripe_fixtures::*;
use integration_tests::Stack;
use serde_json::json;
use std::sync::OnceLock;

fn stack() -> &'static Stack {
    static S: OnceLock<Stack> = OnceLock::new();
    S.get_or_init(payments_stack)
}

#[test]
fn refunds_debit_what_is_new_and_leave_debt_recorded() {
    let s = stack();
    let (u, _, pi) = paid_user(s, 1000);
    // Spend some first: a full refund then leaves a recorded debt.
    let r = s.chat(&u.key, &json!({"model": "openai/gpt-4o", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}));
    assert_eq!(r.status, 200);
    let spent = s.settled_user(&u.id, 1)["ledger_totals"]["debits_micros"].as_i64().unwrap();
    let charge = id("ch_");
    let refund = |cumulative: i64| {
        let mut e = charge_event("charge.refunded", &pi, json!({"amount_refunded": cumulative}));
        e["data"]["object"]["id"] = json!(charge);
        e
    };
    let partial = refund(400);
    s.webhook(&partial, &[]);
    s.webhook(&partial, &[]);
    assert_eq!(balance(s, &u.id), 10_000_000 + spent - 4_000_000);
    s.webhook(&refund(1000), &[]);
    let user = s.user(&u.id);
    assert_eq!(user["balance_micros"], spent, "negative: the spend is owed");
    assert!(spent < 0);
    let kinds: Vec<&str> = user["recent_ledger"].as_array().unwrap().iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "refund").count(), 2);
    assert_eq!(user["ledger_totals"]["net_micros"], user["balance_micros"]);
    assert_eq!(s.chat(&u.key, &json!({"model": "openai/gpt-4o", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})).status, 402);
}

#[test]
fn disputes_freeze_the_wallet_until_won() {
    let s = stack();
    let (u, cs, pi) = paid_user(s, 1000);
    let chat = json!({"model": "openai/gpt-4o", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    let dispute = |kind: &str, status: &str| json!({"id": id("evt_"), "type": kind, "data": {"object": {"id": "dp_1", "object": "dispute", "payment_intent": pi, "amount": 1000, "status": status}}});
    s.webhook(&dispute("charge.dispute.created", "needs_response"), &[]);
    let frozen = s.chat(&u.key, &chat);
    // 403, not 402: the CLI turns every 402 into "buy credit", which cannot help here.
    assert_eq!(frozen.status, 403);
    assert_eq!(frozen.json()["error"]["code"], "WALLET_FROZEN");
    let message = frozen.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("dispute") && message.contains("credit is kept") && !message.contains("Balance: $0.00"), "{message}");
    assert!(frozen.json()["error"].get("balance").is_none(), "no (wrong) balance for the CLI to show");
    assert_eq!(s.user(&u.id)["payments"][0]["status"], "disputed");
    assert_eq!(s.user(&u.id)["payments"][0]["id"], cs.as_str());
    s.webhook(&dispute("charge.dispute.closed", "won"), &[]);
    assert_eq!(s.chat(&u.key, &chat).status, 200);

    let (u2, _, pi2) = paid_user(s, 1000);
    let lost = |kind: &str, status: &str| json!({"id": id("evt_"), "type": kind, "data": {"object": {"id": "dp_2", "object": "dispute", "payment_intent": pi2, "amount": 1000, "status": status}}});
    s.webhook(&lost("charge.dispute.created", "needs_response"), &[]);
    s.webhook(&lost("charge.dispute.closed", "lost"), &[]);
    s.webhook(&lost("charge.dispute.closed", "lost"), &[]);
    assert_eq!(balance(s, &u2.id), 0, "the disputed credit was taken back once");
}

#[test]
fn refunds_of_invoice_payments_apply_and_unknown_payments_stop_retrying() {
    let s = stack();
    let u = s.new_user("0");
    let (sub, pi) = (id("sub_"), id("pi_"));
    let invoice = json!({"id": id("evt_"), "type": "invoice.paid", "data": {"object": {
        "id": id("in_"), "object": "invoice", "customer": "cus_1", "subscription": sub, "payment_intent": pi,
        "amount_paid": 2000, "currency": "usd", "billing_reason": "subscription_create",
        "subscription_details": {"metadata": {"user_id": u.id}},
        "lines": {"data": [{"price": {"id": "price_monthly"}}]}}}});
    assert_eq!(s.webhook(&invoice, &[]).json()["outcome"], "granted");
    let r = s.webhook(&charge_event("charge.refunded", &pi, json!({"amount_refunded": 2000})), &[]);
    assert_eq!((r.status, r.json()["outcome"].as_str()), (200, Some("refunded")), "{}", r.body);
    assert_eq!(balance(s, &u.id), 0, "the subscription's refund takes its credit back");

    // An invoice that charged more than the credit it granted ($25 for $20,
    // tax say): its refunds take back the credit's share, never the price.
    let (taxed, sub, pi) = (s.new_user("1"), id("sub_"), id("pi_"));
    let invoice = json!({"id": id("evt_"), "type": "invoice.paid", "data": {"object": {
        "id": id("in_"), "object": "invoice", "customer": "cus_2", "subscription": sub, "payment_intent": pi,
        "amount_paid": 2500, "currency": "usd", "billing_reason": "subscription_create",
        "subscription_details": {"metadata": {"user_id": taxed.id}},
        "lines": {"data": [{"price": {"id": "price_monthly"}}]}}}});
    assert_eq!(s.webhook(&invoice, &[]).json()["outcome"], "granted");
    assert_eq!(balance(s, &taxed.id), 21_000_000);
    let charge = id("ch_");
    let refund = |cumulative: i64| {
        let mut e = charge_event("charge.refunded", &pi, json!({"amount_refunded": cumulative}));
        e["data"]["object"]["id"] = json!(charge);
        e
    };
    s.webhook(&refund(500), &[]);
    assert_eq!(balance(s, &taxed.id), 17_000_000, "$5 of $25 returned: a fifth of the $20 credit");
    s.webhook(&refund(2500), &[]);
    assert_eq!(balance(s, &taxed.id), 1_000_000, "all of it: the $20 credit, not $25");

    // A refund of a payment the gateway never saw: retried while it may still
    // arrive, then acknowledged for an operator instead of failing for days.
    let stranger = id("pi_");
    let fresh = charge_event("charge.refunded", &stranger, json!({"amount_refunded": 500}));
    assert!(s.webhook(&fresh, &[]).status >= 500, "Stripe should retry a recent one");
    let mut old = charge_event("charge.refunded", &stranger, json!({"amount_refunded": 500}));
    old["created"] = json!(integration_tests::now_ms() / 1000 - 2 * 24 * 3600);
    let r = s.webhook(&old, &[]);
    assert_eq!((r.status, r.json()["outcome"].as_str()), (200, Some("needs_review")), "{}", r.body);
    let audit = s.d1(&format!("SELECT action FROM audit_log WHERE subject = '{}' ORDER BY action", old["id"].as_str().unwrap()));
    let actions: Vec<&str> = audit.iter().filter_map(|r| r["action"].as_str()).collect();
    assert_eq!(actions, ["stripe.charge.refunded", "stripe.unmatched_event"], "the event, and the finding for an operator");
}

#[test]
fn a_dispute_created_again_after_it_closed_does_not_freeze_the_wallet() {
    let s = stack();
    let (u, _, pi) = paid_user(s, 1000);
    let chat = json!({"model": "openai/gpt-4o", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    let created = json!({"id": id("evt_"), "type": "charge.dispute.created", "data": {"object": {"id": "dp_late", "object": "dispute", "payment_intent": pi, "amount": 1000, "status": "needs_response"}}});
    let closed = json!({"id": id("evt_"), "type": "charge.dispute.closed", "data": {"object": {"id": "dp_late", "object": "dispute", "payment_intent": pi, "amount": 1000, "status": "won"}}});
    s.webhook(&created, &[]);
    assert_eq!(s.chat(&u.key, &chat).status, 403, "frozen while open");
    s.webhook(&closed, &[]);
    assert_eq!(s.chat(&u.key, &chat).status, 200, "won: unfrozen");
    // Stripe redelivers the old `created` (and a copy of it under a new event id).
    let r = s.webhook(&created, &[]);
    assert_eq!((r.status, r.json()["outcome"].as_str()), (200, Some("duplicate")), "{}", r.body);
    let mut copy = created.clone();
    copy["id"] = json!(id("evt_"));
    assert_eq!(s.webhook(&copy, &[]).json()["outcome"], "dispute_already_closed");
    assert_eq!(s.chat(&u.key, &chat).status, 200, "a closed dispute stays closed whatever arrives late");
    assert_eq!(s.user(&u.id)["payments"][0]["status"], "paid");
}

#[test]
fn out_of_order_refunds_never_give_money_back() {
    let s = stack();
    let (u, _, pi) = paid_user(s, 1000);
    let charge = id("ch_");
    let refund = |cumulative: i64| {
        let mut e = charge_event("charge.refunded", &pi, json!({"amount_refunded": cumulative}));
        e["data"]["object"]["id"] = json!(charge);
        e
    };
    s.webhook(&refund(500), &[]);
    s.webhook(&refund(300), &[]); // an older event delivered late
    assert_eq!(balance(s, &u.id), 5_000_000);
    let before_known = charge_event("charge.refunded", &id("pi_"), json!({"amount_refunded": 100}));
    assert_eq!(s.webhook(&before_known, &[]).status, 500, "unknown payment intent: Stripe retries later");
}

#[test]
fn the_wallet_stays_frozen_while_any_dispute_is_open() {
    let s = stack();
    let (u, _, pi1) = paid_user(s, 1000);
    let pi2 = id("pi_");
    let r = s.webhook(&session_event("checkout.session.completed", &checkout(s, &u.id, 1000), &u.id, 1000, true, &pi2), &[]);
    assert_eq!(r.json()["outcome"], "credited");
    let dispute = |kind: &str, dp: &str, pi: &str, status: &str| {
        json!({"id": id("evt_"), "type": kind, "data": {"object": {"id": dp, "object": "dispute", "payment_intent": pi, "amount": 1000, "status": status}}})
    };
    let chat = json!({"model": "openai/gpt-4o", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    s.webhook(&dispute("charge.dispute.created", "dp_a", &pi1, "needs_response"), &[]);
    s.webhook(&dispute("charge.dispute.created", "dp_b", &pi2, "needs_response"), &[]);
    s.webhook(&dispute("charge.dispute.closed", "dp_a", &pi1, "warning_closed"), &[]);
    assert_eq!(s.chat(&u.key, &chat).status, 403, "dp_b is still open");
    assert_eq!(balance(s, &u.id), 20_000_000, "an inquiry closed with a warning takes nothing");
    s.webhook(&dispute("charge.dispute.closed", "dp_b", &pi2, "won"), &[]);
    assert_eq!(s.chat(&u.key, &chat).status, 200);
}

/// A restart projects the outbox entries not yet dropped again (no-ops for
/// their ledger rows): a top-up's `paid` must not undo the `disputed` the
/// billing Worker wrote since. Its own stack: it is restarted.
#[test]
fn a_payment_projected_again_after_a_restart_keeps_its_later_status() {
    let s = payments_stack();
    let (u, _, pi) = paid_user(&s, 1000);
    let dispute = json!({"id": id("evt_"), "type": "charge.dispute.created", "data": {"object": {"id": id("dp_"), "object": "dispute", "payment_intent": pi, "amount": 1000, "status": "needs_response"}}});
    assert_eq!(s.webhook(&dispute, &[]).status, 200);
    let before = s.user(&u.id);
    assert_eq!(before["payments"][0]["status"], "disputed");
    let entries = before["ledger_totals"]["entries"].as_i64().expect("entries");
    let s = s.restart(&PAYMENTS_VARS);
    // The next balance change's pass projects the top-up's entry again with it.
    s.credit(&u.id, "0.5");
    let user = s.eventually_user(&u.id, "the credit projected", |u| u["ledger_totals"]["entries"].as_i64() == Some(entries + 1));
    assert_eq!(user["payments"][0]["status"], "disputed", "{:#}", user["payments"]);
}
