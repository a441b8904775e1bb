//! Plans (docs/ARCHITECTURE.md, "Plans") through the real stack: plans as
//! data under `/admin/plans`; included and purchased credit in one wallet;
//! period grants from `invoice.paid` once per invoice, expiry and rollover
//! at period end (the admin period pass with the local test clock).

use integration_tests::plans::*;
use integration_tests::stripe_fixtures::id;
use integration_tests::{start, Stack};
use serde_json::{json, Value};
use std::sync::OnceLock;

fn stack() -> &'static Stack {
    static S: OnceLock<Stack> = OnceLock::new();
    S.get_or_init(|| start(&[("BILLING_TEST_FAULTS", "1"), ("PLAN_TEST_CLOCK", "1"), ("ALLOWED_MODELS_TTL_SECONDS", "0")]))
}

fn plans(s: &Stack) -> Vec<Value> {
    let r = s.admin("GET", "/admin/plans", None);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["data"].as_array().unwrap().clone()
}

#[test]
fn plans_are_data_an_operator_defines() {
    let s = stack();
    assert!(plans(s).iter().any(|p| p["id"] == "free" && p["included_usd"] == 0.0), "a free plan exists by default");
    let pro = json!({"id": "crud-pro", "name": "Pro", "stripe_price_id": "price_crud_pro", "price_cents": 2000,
        "included_usd": "20", "rollover": true, "rollover_cap_usd": "5", "models": ["openai/gpt-4o-mini"], "max_concurrent": 4});
    let r = s.admin("POST", "/admin/plans", Some(pro.clone()));
    assert_eq!(r.status, 200, "{}", r.body);
    let listed = plans(s).into_iter().find(|p| p["id"] == "crud-pro").expect("listed");
    assert_eq!((listed["included_usd"].as_f64(), listed["rollover_cap_usd"].as_f64(), listed["max_concurrent"].as_u64()), (Some(20.0), Some(5.0), Some(4)));
    assert_eq!(listed["models"], json!(["openai/gpt-4o-mini"]));
    // Replaced whole by id.
    let mut changed = pro.clone();
    changed["included_usd"] = json!("25");
    assert_eq!(s.admin("POST", "/admin/plans", Some(changed)).status, 200);
    assert_eq!(plans(s).into_iter().find(|p| p["id"] == "crud-pro").unwrap()["included_usd"], 25.0);
    // One price, one plan; refusals name the field.
    let clash = s.admin("POST", "/admin/plans", Some(json!({"id": "crud-other", "stripe_price_id": "price_crud_pro"})));
    assert_eq!(clash.status, 409, "{}", clash.body);
    let bad = s.admin("POST", "/admin/plans", Some(json!({"id": "crud-bad", "stripe_price_id": "p", "included_usd": "-3"})));
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("included_usd"), "{}", bad.body);
    // The free plan cannot be deleted; another can; an unknown one is a 404.
    assert_eq!(s.admin("DELETE", "/admin/plans/free", None).status, 409);
    assert_eq!(s.admin("DELETE", "/admin/plans/crud-pro", None).status, 200);
    assert_eq!(s.admin("DELETE", "/admin/plans/crud-pro", None).status, 404);
    assert!(!plans(s).iter().any(|p| p["id"] == "crud-pro"));
    // The admin token is required.
    assert_eq!(integration_tests::get(&format!("{}/admin/plans", s.base)).status, 401);
}

#[test]
fn a_period_is_granted_once_per_invoice_and_spent_before_purchased_credit() {
    let s = stack();
    let price = define(s, "t-grant", 1000, "10", None);
    let u = s.new_user("1");
    let (sub, now) = (id("sub_"), integration_tests::now_ms() / 1000 * 1000);
    let paid = invoice_paid(&u.id, &sub, &price, 1000, now - DAY_MS, now + 29 * DAY_MS);
    assert_eq!(outcome(s, &paid), "granted");
    // Redelivered, and the same invoice under another event id: one grant.
    assert_eq!(outcome(s, &paid), "already_granted");
    let mut again = paid.clone();
    again["id"] = json!(id("evt_"));
    assert_eq!(outcome(s, &again), "already_granted");
    assert_eq!(buckets(s, &u.id), (10_000_000, 1_000_000));
    let grants = s.d1(&format!("SELECT amount_micros, included_micros FROM credit_ledger WHERE user_id = '{}' AND kind = 'plan_grant'", u.id));
    assert_eq!(grants, vec![json!({"amount_micros": 10_000_000, "included_micros": 10_000_000})]);
    assert_eq!(plan_state(s, &u.id)["plan_id"], "t-grant");
    // Never for less than the price, another currency, or a proration invoice.
    let mut short = invoice_paid(&u.id, &sub, &price, 999, now, now + DAY_MS);
    assert_eq!(outcome(s, &short), "needs_review");
    short = invoice_paid(&u.id, &sub, &price, 1000, now, now + DAY_MS);
    short["data"]["object"]["currency"] = json!("eur");
    assert_eq!(outcome(s, &short), "needs_review");
    short = invoice_paid(&u.id, &sub, &price, 1000, now, now + DAY_MS);
    short["data"]["object"]["billing_reason"] = json!("subscription_update");
    assert_eq!(outcome(s, &short), "ignored");
    assert_eq!(buckets(s, &u.id), (10_000_000, 1_000_000));

    // A charge spends included credit first; purchased credit is untouched.
    small_chat(s, &u.key);
    let user = s.books_balanced(&u.id, 1);
    let (included, purchased) = buckets(s, &u.id);
    let price_paid = 10_000_000 - included;
    assert!(price_paid > 0 && purchased == 1_000_000, "{user:#}");
    let usage = s.d1(&format!("SELECT amount_micros, included_micros FROM credit_ledger WHERE user_id = '{}' AND kind = 'usage'", u.id));
    assert_eq!(usage, vec![json!({"amount_micros": -price_paid, "included_micros": -price_paid})]);
}

#[test]
fn a_charge_larger_than_the_included_credit_left_takes_the_rest_from_purchased() {
    let s = stack();
    let price = define(s, "t-tiny", 100, "0.000001", None);
    let u = s.new_user("1");
    let now = integration_tests::now_ms() / 1000 * 1000;
    assert_eq!(outcome(s, &invoice_paid(&u.id, &id("sub_"), &price, 100, now - DAY_MS, now + DAY_MS)), "granted");
    assert_eq!(buckets(s, &u.id), (1, 1_000_000));
    small_chat(s, &u.key);
    s.books_balanced(&u.id, 1);
    let (included, purchased) = buckets(s, &u.id);
    let usage = &s.d1(&format!("SELECT amount_micros, included_micros FROM credit_ledger WHERE user_id = '{}' AND kind = 'usage'", u.id))[0];
    let charged = -usage["amount_micros"].as_i64().unwrap();
    assert!(charged > 1, "{usage}");
    assert_eq!((usage["included_micros"].as_i64(), included, purchased), (Some(-1), 0, 1_000_000 - (charged - 1)));
}

#[test]
fn the_period_end_expires_included_credit_and_rollover_keeps_up_to_its_cap() {
    let s = stack();
    let rolling = define(s, "t-roll", 1000, "10", Some("3"));
    let plain = define(s, "t-plain", 1000, "10", None);
    let now = integration_tests::now_ms() / 1000 * 1000;
    let (start, end) = (now - DAY_MS, now + DAY_MS);
    let (a, b) = (s.new_user("2"), s.new_user("2"));
    let (sub_a, sub_b) = (id("sub_"), id("sub_"));
    assert_eq!(outcome(s, &invoice_paid(&a.id, &sub_a, &rolling, 1000, start, end)), "granted");
    assert_eq!(outcome(s, &invoice_paid(&b.id, &sub_b, &plain, 1000, start, end)), "granted");
    small_chat(s, &a.key);
    s.books_balanced(&a.id, 1);
    // Not yet: the period has not ended.
    run_periods(s, &[&a.id, &b.id], end - 1);
    let left = buckets(s, &a.id).0;
    assert!(left < 10_000_000 && left > 3_000_000, "{left}");
    assert_eq!(buckets(s, &b.id), (10_000_000, 2_000_000));
    // At the period end: the rolling plan keeps its cap, the other nothing; purchased credit stays.
    run_periods(s, &[&a.id, &b.id], end);
    assert_eq!(buckets(s, &a.id), (3_000_000, 2_000_000));
    assert_eq!(buckets(s, &b.id), (0, 2_000_000));
    // Once: another pass, and the renewal's own expiry of that period, change nothing but the new grant.
    run_periods(s, &[&a.id, &b.id], end + 1);
    assert_eq!(outcome(s, &invoice_paid(&a.id, &sub_a, &rolling, 1000, end, end + 30 * DAY_MS)), "granted");
    assert_eq!(buckets(s, &a.id), (13_000_000, 2_000_000));
    let expiries = s.d1(&format!("SELECT COUNT(*) AS n FROM credit_ledger WHERE user_id = '{}' AND kind = 'plan_expiry'", a.id));
    assert_eq!(expiries[0]["n"], 1);
    // A renewal that arrives before the pass expires the old period itself, then grants.
    assert_eq!(outcome(s, &invoice_paid(&b.id, &sub_b, &plain, 1000, end, end + 30 * DAY_MS)), "granted");
    assert_eq!(buckets(s, &b.id), (10_000_000, 2_000_000));
    let c = s.new_user("0");
    let sub_c = id("sub_");
    outcome(s, &invoice_paid(&c.id, &sub_c, &rolling, 1000, start, end));
    assert_eq!(outcome(s, &invoice_paid(&c.id, &sub_c, &rolling, 1000, end, end + 30 * DAY_MS)), "granted");
    assert_eq!(buckets(s, &c.id), (13_000_000, 0), "3 rolled over, 10 granted");
    run_periods(s, &[&c.id], end + 1);
    assert_eq!(buckets(s, &c.id), (13_000_000, 0), "the pass finds that period expired");
}

#[test]
fn an_upgrade_grants_the_prorated_difference_once_its_invoice_is_paid_and_a_downgrade_waits_for_the_period_end() {
    let s = stack();
    let basic = define(s, "t-basic", 1000, "10", None);
    let pro = define(s, "t-pro", 4000, "40", None);
    let u = s.new_user("0");
    let sub = id("sub_");
    let now = integration_tests::now_ms() / 1000 * 1000;
    let (start, end) = (now - 10 * DAY_MS, now + 20 * DAY_MS);
    assert_eq!(outcome(s, &invoice_paid(&u.id, &sub, &basic, 1000, start, end)), "granted");
    // The plan changes with the subscription; its credit waits for the proration invoice's payment.
    let upgrade = subscription_updated(&sub, &pro, false, now);
    assert_eq!(outcome(s, &upgrade), "upgraded");
    assert_eq!(plan_state(s, &u.id)["plan_id"], "t-pro");
    assert_eq!(buckets(s, &u.id), (10_000_000, 0), "nothing granted before the upgrade is paid");
    let paid = proration_paid(&u.id, &sub, (&basic, 1000), (&pro, 4000), now, (start, end));
    assert_eq!(outcome(s, &paid), "upgrade_granted");
    assert_eq!(buckets(s, &u.id), (30_000_000, 0), "two thirds of the period left: 20 of the 30 more");
    // Redelivered, or the same upgrade reported again later in the period: once.
    outcome(s, &upgrade);
    assert_eq!(outcome(s, &paid), "already_granted");
    outcome(s, &subscription_updated(&sub, &pro, false, now + DAY_MS));
    assert_eq!(buckets(s, &u.id), (30_000_000, 0));
    assert_eq!(plan_state(s, &u.id)["plan_id"], "t-pro");
    // A downgrade waits: same plan and credit until the next invoice, which grants the lower plan.
    assert_eq!(outcome(s, &subscription_updated(&sub, &basic, false, now + DAY_MS)), "downgrade_at_period_end");
    let state = plan_state(s, &u.id);
    assert_eq!((state["plan_id"].as_str(), state["next_plan_id"].as_str()), (Some("t-pro"), Some("t-basic")));
    assert_eq!(buckets(s, &u.id), (30_000_000, 0));
    assert_eq!(outcome(s, &invoice_paid(&u.id, &sub, &basic, 1000, end, end + 30 * DAY_MS)), "granted");
    let state = plan_state(s, &u.id);
    assert_eq!((state["plan_id"].as_str(), state["next_plan_id"].as_str()), (Some("t-basic"), None));
    assert_eq!(buckets(s, &u.id), (10_000_000, 0), "the pro period expired, the basic one granted");
}

#[test]
fn a_failed_renewal_is_past_due_for_the_grace_then_the_free_plan() {
    let s = stack();
    let price = define(s, "t-grace", 1000, "10", Some("10"));
    let u = s.new_user("1");
    let sub = id("sub_");
    let now = integration_tests::now_ms() / 1000 * 1000;
    let end = now + DAY_MS;
    assert_eq!(outcome(s, &invoice_paid(&u.id, &sub, &price, 1000, now - DAY_MS, end)), "granted");
    let failed = json!({"id": id("evt_"), "type": "invoice.payment_failed", "created": end / 1000, "data": {"object": {
        "id": id("in_"), "object": "invoice", "amount_paid": 0, "amount_due": 1000, "currency": "usd", "billing_reason": "subscription_cycle",
        "parent": {"subscription_details": {"subscription": sub, "metadata": {"user_id": u.id}}}}}});
    assert_eq!(outcome(s, &failed), "past_due");
    let state = plan_state(s, &u.id);
    let grace = end + 7 * DAY_MS;
    assert_eq!((state["status"].as_str(), state["grace_until"].as_i64()), (Some("past_due"), Some(grace)), "documented default: 7 days");
    // During the grace: still on the plan (its period ended: rollover applies).
    run_periods(s, &[&u.id], grace - 1);
    assert_eq!(plan_state(s, &u.id)["plan_id"], "t-grace");
    assert_eq!(buckets(s, &u.id), (10_000_000, 1_000_000));
    // After it: the free plan, no included credit left; purchased credit kept.
    assert_eq!(run_periods(s, &[&u.id], grace)["ended"].as_u64().map(|n| n >= 1), Some(true));
    let state = plan_state(s, &u.id);
    assert_eq!((state["plan_id"].as_str(), state["status"].as_str()), (Some("free"), Some("active")));
    assert_eq!(buckets(s, &u.id), (0, 1_000_000));
}

#[test]
fn a_cancellation_takes_effect_at_the_period_end() {
    let s = stack();
    let price = define(s, "t-cancel", 1000, "10", None);
    let u = s.new_user("0");
    let sub = id("sub_");
    let now = integration_tests::now_ms() / 1000 * 1000;
    let end = now + DAY_MS;
    outcome(s, &invoice_paid(&u.id, &sub, &price, 1000, now - DAY_MS, end));
    assert_eq!(outcome(s, &subscription_updated(&sub, &price, true, now)), "cancel_at_period_end");
    run_periods(s, &[&u.id], end - 1);
    assert_eq!((plan_state(s, &u.id)["status"].as_str(), buckets(s, &u.id).0), (Some("canceling"), 10_000_000));
    run_periods(s, &[&u.id], end);
    assert_eq!(plan_state(s, &u.id)["plan_id"], "free");
    assert_eq!(buckets(s, &u.id), (0, 0));
}

#[test]
fn a_refunded_plan_invoice_takes_back_its_unspent_included_credit_only() {
    let s = stack();
    let price = define(s, "t-refund", 1000, "10", None);
    let u = s.new_user("1");
    let (sub, pi) = (id("sub_"), id("pi_"));
    let now = integration_tests::now_ms() / 1000 * 1000;
    let mut paid = invoice_paid(&u.id, &sub, &price, 1000, now - DAY_MS, now + DAY_MS);
    paid["data"]["object"]["payment_intent"] = json!(pi);
    assert_eq!(outcome(s, &paid), "granted");
    small_chat(s, &u.key);
    s.books_balanced(&u.id, 1);
    let (left, purchased) = buckets(s, &u.id);
    assert!(left < 10_000_000 && purchased == 1_000_000);
    // Half refunded: half of the grant goes back (all of it was still there, but for the spend).
    let charge = id("ch_");
    let refund = |cents: i64| integration_tests::stripe_fixtures::charge_event("charge.refunded", &pi, json!({"id": charge, "amount": 1000, "amount_refunded": cents, "refunded": cents == 1000}));
    let half = refund(500);
    assert_eq!(outcome(s, &half), "included_taken_back");
    assert_eq!(outcome(s, &half), "already_taken_back", "redelivered");
    assert_eq!(buckets(s, &u.id), (left - 5_000_000, 1_000_000));
    // The rest: what is unspent goes back; spent credit is not taken from purchased credit.
    assert_eq!(outcome(s, &refund(1000)), "included_taken_back");
    assert_eq!(buckets(s, &u.id), (0, 1_000_000));
    let rows = s.d1(&format!("SELECT amount_micros, included_micros FROM credit_ledger WHERE user_id = '{}' AND kind = 'plan_take_back' ORDER BY seq", u.id));
    assert_eq!(rows, vec![json!({"amount_micros": -5_000_000, "included_micros": -5_000_000}), json!({"amount_micros": -(left - 5_000_000), "included_micros": -(left - 5_000_000)})]);
    assert_eq!(s.user(&u.id)["payments"].as_array().unwrap().iter().find(|p| p["id"] == paid["data"]["object"]["id"]).unwrap()["status"], "refunded");
}

#[test]
fn the_balance_reports_the_spendable_total_with_the_split_and_the_plan() {
    let s = stack();
    let price = define(s, "t-split", 1000, "10", Some("2"));
    let u = s.new_user("1.5");
    let now = integration_tests::now_ms() / 1000 * 1000;
    let end = now + DAY_MS;
    assert_eq!(outcome(s, &invoice_paid(&u.id, &id("sub_"), &price, 1000, now - DAY_MS, end)), "granted");
    let token = s.session_token(&u.id, "split@example.com");
    for path in ["/me/usage", "/api/billing/balance"] {
        let r = s.call("GET", path, &token, None);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let b = r.json();
        assert_eq!(b["credits_usd"], 11.5, "{path}: the CLI's field is the spendable total");
        assert_eq!((b["included_credits_usd"].as_f64(), b["purchased_credits_usd"].as_f64()), (Some(10.0), Some(1.5)), "{path}");
        assert_eq!((b["plan"]["id"].as_str(), b["plan"]["included_resets_at"].as_i64()), (Some("t-split"), Some(end)), "{path}: {b}");
        assert_eq!(b["plan"]["rollover_cap_usd"], 2.0, "{path}");
    }
    // Without a subscription: the free plan, all credit purchased.
    let free = s.new_user("1");
    let b = s.call("GET", "/me/usage", &s.session_token(&free.id, "free@example.com"), None).json();
    assert_eq!((b["plan"]["id"].as_str(), b["included_credits_usd"].as_f64(), b["purchased_credits_usd"].as_f64()), (Some("free"), Some(0.0), Some(1.0)), "{b}");
}

#[test]
fn a_period_end_during_a_call_keeps_the_included_credit_its_hold_may_spend() {
    let s = stack();
    let price = define(s, "t-held", 100, "0.0001", None);
    let u = s.new_user("1");
    let now = integration_tests::now_ms() / 1000 * 1000;
    let end = now + DAY_MS;
    assert_eq!(outcome(s, &invoice_paid(&u.id, &id("sub_"), &price, 100, now - DAY_MS, end)), "granted");
    assert_eq!(buckets(s, &u.id), (100, 1_000_000));
    // A slow stream whose hold (up to 1000 tokens) is larger than the included credit.
    let slow = json!({"model": "openai/gpt-4o-mini", "stream": true, "max_tokens": 1000,
        "messages": [{"role": "user", "content": "[[mock:tokens=10,chunk_delay_ms=600]]"}]});
    let (key, base) = (u.key.clone(), s.base.clone());
    let running = std::thread::spawn(move || {
        integration_tests::SseReader::open(&format!("{base}/v1/chat/completions"), &[("Authorization", &format!("Bearer {key}"))], slow.to_string().as_bytes()).collect()
    });
    s.eventually_user(&u.id, "the slow call's hold", |u| u["open_holds"].as_array().is_some_and(|h| h.len() == 1));
    // The period ends while it runs: the held included credit does not expire.
    run_periods(s, &[&u.id], end);
    assert_eq!(buckets(s, &u.id), (100, 1_000_000));
    assert!(running.join().unwrap().iter().any(|(e, _)| e.contains("[DONE]")));
    // Settled: included first, then purchased; never below zero in either bucket.
    s.books_balanced(&u.id, 1);
    let usage = &s.d1(&format!("SELECT amount_micros, included_micros FROM credit_ledger WHERE user_id = '{}' AND kind = 'usage'", u.id))[0];
    let charged = -usage["amount_micros"].as_i64().unwrap();
    let from_included = charged.min(100);
    assert_eq!(usage["included_micros"].as_i64(), Some(-from_included), "{usage}");
    assert_eq!(buckets(s, &u.id), (100 - from_included, 1_000_000 - (charged - from_included)));
}

#[test]
fn a_lost_dispute_of_a_plan_invoice_freezes_then_takes_back_its_unspent_included_credit() {
    let s = stack();
    let price = define(s, "t-dispute", 1000, "10", None);
    let u = s.new_user("2");
    let (pi, dp) = (id("pi_"), id("dp_"));
    let now = integration_tests::now_ms() / 1000 * 1000;
    let mut paid = invoice_paid(&u.id, &id("sub_"), &price, 1000, now - DAY_MS, now + DAY_MS);
    paid["data"]["object"]["payment_intent"] = json!(pi);
    assert_eq!(outcome(s, &paid), "granted");
    let dispute = |kind: &str, status: &str| json!({"id": id("evt_"), "type": kind, "data": {"object": {"id": dp, "object": "dispute", "payment_intent": pi, "amount": 1000, "status": status}}});
    assert_eq!(outcome(s, &dispute("charge.dispute.created", "needs_response")), "wallet_frozen");
    let frozen = s.chat(&u.key, &json!({"model": "openai/gpt-4o-mini", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}));
    assert_eq!(frozen.status, 403, "{}", frozen.body);
    let lost = dispute("charge.dispute.closed", "lost");
    assert_eq!(outcome(s, &lost), "dispute_lost");
    assert_eq!(outcome(s, &lost), "duplicate", "redelivered");
    assert_eq!(outcome(s, &dispute("charge.dispute.closed", "lost")), "dispute_lost", "another event for the same dispute");
    // The invoice's included credit went back once; purchased credit was not touched.
    assert_eq!(buckets(s, &u.id), (0, 2_000_000));
    let rows = s.d1(&format!("SELECT COUNT(*) AS n FROM credit_ledger WHERE user_id = '{}' AND kind = 'plan_take_back'", u.id));
    assert_eq!(rows[0]["n"], 1);
    small_chat(s, &u.key);
}
