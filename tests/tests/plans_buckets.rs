//! The included and purchased buckets under plans (docs/ARCHITECTURE.md,
//! "Plans"): included credit never exceeds the balance, keyless (x402)
//! calls never spend it, and a take-back reaches only its own invoice's
//! credit. Σ ledger == balance per bucket is checked at every read
//! (`plans::buckets`).

use integration_tests::plans::*;
use integration_tests::stripe_fixtures::id;
use integration_tests::{start, Stack};
use serde_json::json;
use std::sync::OnceLock;

fn stack() -> &'static Stack {
    static S: OnceLock<Stack> = OnceLock::new();
    S.get_or_init(|| start(&[("PLAN_TEST_CLOCK", "1"), ("ALLOWED_MODELS_TTL_SECONDS", "0")]))
}

fn admin_move(s: &Stack, user: &str, usd: f64) {
    let r = s.admin("POST", &format!("/admin/users/{user}/credits"), Some(json!({"amount_usd": usd, "idempotency_key": id("move-")})));
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn a_grant_onto_a_debt_pays_the_debt_first_so_the_period_end_never_leaves_the_balance_below_zero() {
    let s = stack();
    let price = define(s, "b-debt", 2000, "20", None);
    let u = s.new_user("0");
    admin_move(s, &u.id, -5.0);
    assert_eq!(buckets(s, &u.id), (0, -5_000_000));
    let now = integration_tests::now_ms() / 1000 * 1000;
    let end = now + DAY_MS;
    assert_eq!(outcome(s, &invoice_paid(&u.id, &id("sub_"), &price, 2000, now - DAY_MS, end)), "granted");
    assert_eq!(buckets(s, &u.id), (15_000_000, 0), "included is within the balance: 5 of the grant paid the debt");
    small_chat(s, &u.key);
    let (left, purchased) = buckets(s, &u.id);
    assert!(left < 15_000_000 && purchased == 0, "{left} {purchased}");
    run_period(s, &u.id, end);
    assert_eq!(buckets(s, &u.id), (0, 0), "the period end takes what was left, never more");
}

#[test]
fn a_purchased_debit_beyond_purchased_credit_takes_the_rest_from_included() {
    let s = stack();
    let price = define(s, "b-debit", 1000, "10", None);
    let u = s.new_user("1");
    let now = integration_tests::now_ms() / 1000 * 1000;
    let end = now + DAY_MS;
    assert_eq!(outcome(s, &invoice_paid(&u.id, &id("sub_"), &price, 1000, now - DAY_MS, end)), "granted");
    admin_move(s, &u.id, -4.0);
    assert_eq!(buckets(s, &u.id), (7_000_000, 0));
    run_period(s, &u.id, end);
    assert_eq!(buckets(s, &u.id), (0, 0));
}

/// The payer's address account once `n` keyless calls are settled and their
/// payments credited (the balance alone does not say: included credit keeps
/// it above zero while a payment is on its way).
fn keyless_settled(s: &Stack, account: &str, n: usize) -> serde_json::Value {
    s.eventually_user(account, "keyless calls settled and paid", |u| {
        let paid = u["recent_ledger"].as_array().map_or(0, |l| l.iter().filter(|e| e["kind"] == "x402_payment").count());
        u["usage_totals"]["requests"] == n as u64 && paid == n && u["open_holds"] == json!([])
    })
}

#[test]
fn keyless_calls_booked_on_a_plan_user_are_paid_by_their_payment_and_keep_to_the_plans_models() {
    let s = stack();
    let r = s.admin("POST", "/admin/plans", Some(json!({"id": "b-mini", "name": "Mini only", "stripe_price_id": "price_b_mini",
        "price_cents": 1000, "included_usd": "10", "models": ["openai/gpt-4o-mini"]})));
    assert_eq!(r.status, 200, "{}", r.body);
    let payer = &s.chain.accounts[0];
    let account = format!("eth:{}", payer.address);
    let url = format!("{}/v1/chat/completions", s.base);
    let call = |model: &str| {
        let body = json!({"model": model, "max_tokens": 50, "messages": [{"role": "user", "content": "hi [[mock:tokens=20]]"}]});
        integration_tests::x402::pay(&url, &payer.private_key, &["--method", "POST", "--body", &body.to_string()])
    };
    // The first payment opens the address's account; then it subscribes.
    assert_eq!(call("openai/gpt-4o-mini")["status"], 200);
    keyless_settled(s, &account, 1);
    let now = integration_tests::now_ms() / 1000 * 1000;
    assert_eq!(outcome(s, &invoice_paid(&account, &id("sub_"), "price_b_mini", 1000, now - DAY_MS, now + DAY_MS)), "granted");
    let (included, purchased) = buckets(s, &account);
    assert_eq!(included, 10_000_000);
    // A keyless call is paid by its payment (purchased credit): the included credit stays whole.
    assert_eq!(call("openai/gpt-4o-mini")["status"], 200);
    keyless_settled(s, &account, 2);
    let (after, _) = buckets(s, &account);
    assert_eq!(after, included, "a keyless charge spent no included credit (purchased was {purchased})");
    let rows = s.d1(&format!("SELECT included_micros FROM credit_ledger WHERE user_id = '{account}' AND kind = 'usage'"));
    assert!(rows.iter().all(|r| r["included_micros"] == 0), "{rows:?}");
    // And the plan's model list holds for keyless calls too, before any hold.
    let refused = call("openai/gpt-4o");
    assert_eq!(refused["status"], 403, "{refused:#}");
    assert_eq!(keyless_settled(s, &account, 2)["usage_totals"]["requests"], 2, "a refusal is not billed");
}

#[test]
fn a_refund_of_an_invoice_whose_period_is_over_takes_back_nothing_of_the_next_periods_credit() {
    let s = stack();
    let price = define(s, "b-old", 1000, "10", None);
    let u = s.new_user("1");
    let (sub, pi) = (id("sub_"), id("pi_"));
    let now = integration_tests::now_ms() / 1000 * 1000;
    let end = now + DAY_MS;
    grant_paid(s, &u.id, &sub, &price, 1000, &pi, (now - DAY_MS, end));
    run_period(s, &u.id, end);
    assert_eq!(buckets(s, &u.id), (0, 1_000_000), "January's credit expired");
    assert_eq!(outcome(s, &invoice_paid(&u.id, &sub, &price, 1000, end, end + 30 * DAY_MS)), "granted");
    assert_eq!(buckets(s, &u.id), (10_000_000, 1_000_000));
    let refund = integration_tests::stripe_fixtures::charge_event("charge.refunded", &pi, json!({"id": id("ch_"), "amount": 1000, "amount_refunded": 1000, "refunded": true}));
    outcome(s, &refund);
    assert_eq!(buckets(s, &u.id), (10_000_000, 1_000_000), "February's credit was paid by February's invoice");
}

#[test]
fn a_refund_then_a_lost_dispute_of_one_plan_invoice_take_back_both_shares() {
    let s = stack();
    let price = define(s, "b-both", 1000, "10", None);
    let u = s.new_user("1");
    let (pi, dp) = (id("pi_"), id("dp_"));
    let now = integration_tests::now_ms() / 1000 * 1000;
    grant_paid(s, &u.id, &id("sub_"), &price, 1000, &pi, (now - DAY_MS, now + DAY_MS));
    let refund = integration_tests::stripe_fixtures::charge_event("charge.refunded", &pi, json!({"id": id("ch_"), "amount": 1000, "amount_refunded": 400, "refunded": false}));
    assert_eq!(outcome(s, &refund), "included_taken_back");
    assert_eq!(buckets(s, &u.id), (6_000_000, 1_000_000));
    let dispute = |kind: &str, status: &str| json!({"id": id("evt_"), "type": kind, "data": {"object": {"id": dp, "object": "dispute", "payment_intent": pi, "amount": 600, "status": status}}});
    assert_eq!(outcome(s, &dispute("charge.dispute.created", "needs_response")), "wallet_frozen");
    assert_eq!(outcome(s, &dispute("charge.dispute.closed", "lost")), "dispute_lost");
    assert_eq!(buckets(s, &u.id), (0, 1_000_000), "the disputed 600 of 1000 takes back its 6 beside the refund's 4");
    assert_eq!(outcome(s, &dispute("charge.dispute.closed", "lost")), "dispute_lost", "another event for the same dispute");
    assert_eq!(buckets(s, &u.id), (0, 1_000_000));
}

#[test]
fn one_users_failure_does_not_stop_the_period_pass_for_the_others() {
    let s = stack();
    let price = define(s, "b-pass", 1000, "10", None);
    let u = s.new_user("1");
    let now = integration_tests::now_ms() / 1000 * 1000;
    // Periods that ended long before the other tests' (they share the stack).
    let (start, end) = (now - 40 * DAY_MS, now - 10 * DAY_MS);
    assert_eq!(outcome(s, &invoice_paid(&u.id, &id("sub_"), &price, 1000, start, end)), "granted");
    // Due first, and its wallet cannot be opened: no such user.
    let ghost = id("ghost_");
    s.d1(&format!("INSERT INTO user_plans (user_id, plan_id, status, period_start, period_end, updated_at) VALUES ('{ghost}', 'b-pass', 'active', {start}, {}, 0)", end - 1));
    let r = s.admin("POST", "/admin/plans/periods", Some(json!({"as_of_ms": end + 1})));
    s.d1(&format!("DELETE FROM user_plans WHERE user_id = '{ghost}'"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(buckets(s, &u.id), (0, 1_000_000), "the other user's period ended");
}

#[test]
fn credit_a_call_held_when_the_plan_ended_expires_once_the_call_has_settled() {
    let s = stack();
    let price = define(s, "b-held", 100, "0.0001", None);
    let u = s.new_user("1");
    let sub = id("sub_");
    let now = integration_tests::now_ms() / 1000 * 1000;
    let end = now + DAY_MS;
    assert_eq!(outcome(s, &invoice_paid(&u.id, &sub, &price, 100, now - DAY_MS, end)), "granted");
    assert_eq!(outcome(s, &subscription_updated(&sub, &price, true, now)), "cancel_at_period_end");
    // A slow stream whose hold covers the included credit while the plan ends.
    let running = slow_call(s, &u.id, &u.key, 2);
    run_period(s, &u.id, end);
    assert_eq!(plan_state(s, &u.id)["plan_id"], "free");
    assert_eq!(buckets(s, &u.id).0, 100, "held: the call may spend it");
    assert!(running.join().unwrap().iter().any(|(e, _)| e.contains("[DONE]")));
    s.books_balanced(&u.id, 1);
    assert_eq!(buckets(s, &u.id).0, 0, "on the free plan no period end comes: what the call left expired when it settled");
}
