//! Plans (docs/ARCHITECTURE.md, "Plans") when Stripe's events arrive late,
//! twice or out of order, and what the reconciliation does about the plan
//! state they leave — through the real stack and the Stripe stand-in.

use integration_tests::plans::*;
use integration_tests::stripe_fixtures::id;
use integration_tests::{start, Stack};
use serde_json::Value;
use std::sync::OnceLock;

fn stack() -> &'static Stack {
    static S: OnceLock<Stack> = OnceLock::new();
    S.get_or_init(|| start(&[("BILLING_TEST_FAULTS", "1"), ("PLAN_TEST_CLOCK", "1"), ("ALLOWED_MODELS_TTL_SECONDS", "0")]))
}

fn now() -> i64 {
    integration_tests::now_ms() / 1000 * 1000
}

fn status(s: &Stack, user: &str) -> (Option<String>, Option<String>, Option<i64>) {
    let p = plan_state(s, user);
    (p["plan_id"].as_str().map(Into::into), p["status"].as_str().map(Into::into), p["grace_until"].as_i64())
}

#[test]
fn a_failed_attempt_delivered_after_its_retry_was_paid_keeps_the_plan() {
    let s = stack();
    let price = define(s, "e-late", 1000, "10", None);
    let u = s.new_user("0");
    let (sub, now) = (id("sub_"), now());
    let end = now + DAY_MS;
    assert_eq!(outcome(s, &invoice_paid(&u.id, &sub, &price, 1000, now - DAY_MS, end)), "granted");
    // The renewal's first attempt failed (E1), the retry succeeded (E2): E2 arrives first.
    let renewal = invoice_paid(&u.id, &sub, &price, 1000, end, end + 30 * DAY_MS);
    assert_eq!(outcome(s, &renewal), "granted");
    assert_eq!(outcome(s, &payment_failed(&renewal, end)), "already_paid");
    // A failure of another invoice for the period already granted: the same.
    let mut other = renewal.clone();
    other["data"]["object"]["id"] = id("in_").into();
    assert_eq!(outcome(s, &payment_failed(&other, end)), "already_paid");
    assert_eq!(status(s, &u.id), (Some("e-late".into()), Some("active".into()), None));
    // Past the grace a failure would have had: still on the plan with its credit.
    run_period(s, &u.id, end + 8 * DAY_MS);
    assert_eq!(status(s, &u.id), (Some("e-late".into()), Some("active".into()), None));
    assert_eq!(buckets(s, &u.id), (10_000_000, 0));
}

#[test]
fn the_reconciliation_ends_a_past_due_that_stripe_no_longer_has() {
    let s = stack();
    let price = define(s, "e-cleared", 1000, "10", None);
    let u = s.new_user("0");
    let (sub, now) = (id("sub_"), now());
    let (start, end) = (now - DAY_MS, now + DAY_MS);
    at_stripe(s, &sub, &u.id, &price, "active", (start, end));
    assert_eq!(outcome(s, &invoice_paid(&u.id, &sub, &price, 1000, start, end)), "granted");
    // A failure whose retry's `invoice.paid` never came: Stripe says active.
    let failed = payment_failed(&invoice_paid(&u.id, &sub, &price, 1000, end, end + 30 * DAY_MS), now);
    assert_eq!(outcome(s, &failed), "past_due");
    assert_eq!(status(s, &u.id).1.as_deref(), Some("past_due"));
    s.run_cron();
    assert_eq!(status(s, &u.id), (Some("e-cleared".into()), Some("active".into()), None));
    let found: Vec<Value> = findings(s, &u.id);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["detail"]["after"]["status"], "active", "{found:?}");
}

#[test]
fn a_redelivered_invoice_does_not_undo_an_upgrade_or_a_past_due_that_came_after_it() {
    let s = stack();
    let basic = define(s, "e-basic", 1000, "10", None);
    let pro = define(s, "e-pro", 4000, "40", None);
    let u = s.new_user("0");
    let (sub, now) = (id("sub_"), now());
    let (start, end) = (now - 10 * DAY_MS, now + 20 * DAY_MS);
    let paid = invoice_paid(&u.id, &sub, &basic, 1000, start, end);
    assert_eq!(outcome(s, &paid), "granted");
    assert_eq!(outcome(s, &subscription_updated(&sub, &pro, false, now)), "upgraded");
    let redelivered = |s: &Stack| {
        let mut again = paid.clone();
        again["id"] = id("evt_").into();
        assert_eq!(outcome(s, &again), "already_granted");
    };
    redelivered(s);
    assert_eq!(status(s, &u.id), (Some("e-pro".into()), Some("active".into()), None));
    let failed = payment_failed(&invoice_paid(&u.id, &sub, &pro, 4000, end, end + 30 * DAY_MS), now);
    assert_eq!(outcome(s, &failed), "past_due");
    redelivered(s);
    assert_eq!(status(s, &u.id), (Some("e-pro".into()), Some("past_due".into()), Some(now + 7 * DAY_MS)));
}

#[test]
fn the_reconciliation_does_not_grant_again_an_invoice_of_a_plan_without_included_credit() {
    let s = stack();
    let zero = define(s, "e-zero", 500, "0", None);
    let pro = define(s, "e-zero-pro", 4000, "40", None);
    let u = s.new_user("0");
    let (sub, now) = (id("sub_"), now());
    // Paid two hours ago (past the reconciliation's grace); its webhook came.
    let mut paid = invoice_paid(&u.id, &sub, &zero, 500, now - DAY_MS, now + DAY_MS);
    paid["data"]["object"]["created"] = (now / 1000 - 7200).into();
    mock_stripe(s, "/__mock/stripe/invoices", &paid["data"]["object"]);
    assert_eq!(outcome(s, &paid), "granted");
    assert_eq!(outcome(s, &subscription_updated(&sub, &pro, false, now)), "upgraded");
    s.run_cron();
    let found = findings(s, &u.id);
    assert!(found.iter().all(|f| f["kind"] != "plan_invoice_missing"), "{found:?}");
    assert_eq!(plan_state(s, &u.id)["plan_id"], "e-zero-pro");
}

fn deleted(sub: &str, created_ms: i64) -> Value {
    serde_json::json!({"id": id("evt_"), "object": "event", "type": "customer.subscription.deleted", "created": created_ms / 1000, "data": {"object": {
        "id": sub, "object": "subscription", "status": "canceled", "cancel_at_period_end": false, "items": {"data": []}}}})
}

#[test]
fn a_subscription_event_older_than_the_last_one_applied_changes_nothing() {
    let s = stack();
    let price = define(s, "e-order", 1000, "10", None);
    let u = s.new_user("0");
    let (sub, now) = (id("sub_"), now());
    assert_eq!(outcome(s, &invoice_paid(&u.id, &sub, &price, 1000, now - DAY_MS, now + DAY_MS)), "granted");
    // Cancelled, then un-cancelled: the cancellation arrives last.
    let cancel = subscription_updated(&sub, &price, true, now + 1000);
    assert_eq!(outcome(s, &subscription_updated(&sub, &price, false, now + 2000)), "updated");
    assert_eq!(outcome(s, &cancel), "stale");
    assert_eq!(status(s, &u.id), (Some("e-order".into()), Some("active".into()), None));
    // Deleted, then an older update that would revive it.
    assert_eq!(outcome(s, &deleted(&sub, now + 4000)), "subscription_canceled");
    assert_eq!(outcome(s, &subscription_updated(&sub, &price, false, now + 3000)), "stale");
    assert_eq!(status(s, &u.id).1.as_deref(), Some("canceling"));
}

#[test]
fn an_upgrade_before_the_renewals_invoice_paid_is_prorated_over_the_new_period_and_kept() {
    let s = stack();
    let basic = define(s, "e-ren-basic", 1000, "10", None);
    let pro = define(s, "e-ren-pro", 4000, "40", None);
    let u = s.new_user("0");
    let (sub, now) = (id("sub_"), now());
    let hour = DAY_MS / 24;
    let renewed = now - hour;
    let (old, new) = ((renewed - 30 * DAY_MS, renewed), (renewed, renewed + 30 * DAY_MS));
    assert_eq!(outcome(s, &invoice_paid(&u.id, &sub, &basic, 1000, old.0, old.1)), "granted");
    // The renewal started an hour ago; its invoice (drafted then, at the old
    // price) is paid only after the upgrade arrives.
    let mut upgrade = subscription_updated(&sub, &pro, false, now);
    upgrade["data"]["object"]["items"]["data"][0]["current_period_start"] = (new.0 / 1000).into();
    upgrade["data"]["object"]["items"]["data"][0]["current_period_end"] = (new.1 / 1000).into();
    assert_eq!(outcome(s, &upgrade), "upgraded");
    assert_eq!(buckets(s, &u.id), (0, 0), "the old period expired");
    assert_eq!(outcome(s, &proration_paid(&u.id, &sub, (&basic, 1000), (&pro, 4000), now, new)), "upgrade_granted");
    let prorated = buckets(s, &u.id).0;
    assert!(prorated > 29_000_000 && prorated < 30_000_000, "the upgrade granted over the new period: {prorated}");
    let mut renewal = invoice_paid(&u.id, &sub, &basic, 1000, new.0, new.1);
    renewal["data"]["object"]["created"] = (new.0 / 1000).into();
    assert_eq!(outcome(s, &renewal), "granted");
    assert_eq!(buckets(s, &u.id), (prorated + 10_000_000, 0));
    let state = plan_state(s, &u.id);
    assert_eq!((state["plan_id"].as_str(), state["status"].as_str()), (Some("e-ren-pro"), Some("active")), "{state}");
}

#[test]
fn a_declined_upgrade_leaves_the_paid_plan_and_is_never_a_past_due() {
    let s = stack();
    let basic = define(s, "e-dec-basic", 1000, "10", None);
    let pro = define(s, "e-dec-pro", 4000, "40", None);
    let u = s.new_user("0");
    let (sub, now) = (id("sub_"), now());
    let (start, end) = (now - 10 * DAY_MS, now + 20 * DAY_MS);
    assert_eq!(outcome(s, &invoice_paid(&u.id, &sub, &basic, 1000, start, end)), "granted");
    // The proration invoice's card was declined: Stripe keeps the old price
    // (`pending_if_incomplete`) and reports the failed proration invoice.
    let declined = payment_failed(&proration_paid(&u.id, &sub, (&basic, 1000), (&pro, 4000), now, (start, end)), now);
    assert_eq!(outcome(s, &declined), "ignored");
    assert_eq!(status(s, &u.id), (Some("e-dec-basic".into()), Some("active".into()), None));
    run_period(s, &u.id, now + 8 * DAY_MS);
    assert_eq!(status(s, &u.id), (Some("e-dec-basic".into()), Some("active".into()), None));
    assert_eq!(buckets(s, &u.id), (10_000_000, 0));
}

#[test]
fn a_refunded_upgrade_takes_back_its_share_of_the_upgrades_credit_once() {
    let s = stack();
    let basic = define(s, "e-ref-basic", 1000, "10", None);
    let pro = define(s, "e-ref-pro", 4000, "40", None);
    let u = s.new_user("0");
    let (sub, now) = (id("sub_"), now());
    let (start, end) = (now - 10 * DAY_MS, now + 20 * DAY_MS);
    assert_eq!(outcome(s, &invoice_paid(&u.id, &sub, &basic, 1000, start, end)), "granted");
    assert_eq!(outcome(s, &subscription_updated(&sub, &pro, false, now)), "upgraded");
    let pi = id("pi_");
    let mut paid = proration_paid(&u.id, &sub, (&basic, 1000), (&pro, 4000), now, (start, end));
    paid["data"]["object"]["payment_intent"] = pi.clone().into();
    let charged = paid["data"]["object"]["amount_paid"].as_i64().unwrap();
    assert_eq!(outcome(s, &paid), "upgrade_granted");
    assert_eq!(buckets(s, &u.id), (30_000_000, 0), "10 for the period, 20 for the upgrade");
    // Half of the proration charge refunded: half of the upgrade's 20 goes back, once.
    let refund = integration_tests::stripe_fixtures::charge_event("charge.refunded", &pi, serde_json::json!({"id": id("ch_"), "amount": charged, "amount_refunded": charged / 2, "refunded": false}));
    assert_eq!(outcome(s, &refund), "included_taken_back");
    let mut again = refund.clone();
    again["id"] = id("evt_").into();
    outcome(s, &again);
    let (included, purchased) = buckets(s, &u.id);
    assert_eq!(purchased, 0);
    assert!((19_999_000..=20_001_000).contains(&included), "half of the upgrade's credit taken back: {included}");
}

#[test]
fn a_fall_back_to_free_decided_before_a_renewal_was_paid_changes_nothing() {
    let s = stack();
    let price = define(s, "e-stale", 1000, "10", None);
    let u = s.new_user("0");
    let (sub, now) = (id("sub_"), now());
    let end = now - 8 * DAY_MS;
    assert_eq!(outcome(s, &invoice_paid(&u.id, &sub, &price, 1000, end - 30 * DAY_MS, end)), "granted");
    let failed = payment_failed(&invoice_paid(&u.id, &sub, &price, 1000, end, end + 30 * DAY_MS), end);
    assert_eq!(outcome(s, &failed), "past_due");
    let read_by_the_pass = s.d1(&format!("SELECT status, period_end, grace_until, expired_end FROM user_plans WHERE user_id = '{}'", u.id));
    // The retry is paid and granted; the pass had read the row just before.
    assert_eq!(outcome(s, &invoice_paid(&u.id, &sub, &price, 1000, end, end + 30 * DAY_MS)), "granted");
    assert_eq!(buckets(s, &u.id), (10_000_000, 0));
    let row = &read_by_the_pass[0];
    s.d1(&format!(
        "UPDATE user_plans SET status = '{}', period_end = {}, grace_until = {}, expired_end = {} WHERE user_id = '{}'",
        row["status"].as_str().unwrap(), row["period_end"], row["grace_until"], row["expired_end"], u.id
    ));
    assert_eq!(run_period(s, &u.id, now)["ended"], 0, "the wallet refused the out-of-date fall-back");
    assert_eq!(buckets(s, &u.id), (10_000_000, 0), "the renewed period's credit stays");
    let ledger = s.user(&u.id)["recent_ledger"].clone();
    assert!(!ledger.as_array().unwrap().iter().any(|e| e["reference"].as_str().is_some_and(|r| r.starts_with("plan:end:"))), "{ledger:#}");
}
