//! `needs_review` usage resolved from OpenRouter's `GET /generation?id=` by the
//! reconciliation cron (here `GET /__scheduled`): an estimate above the true
//! price is refunded to the micro-dollar, once; a charge capped at its hold is
//! reported as undercharged and never debited; an exact one is resolved
//! silently; a row without a generation id, or whose record is missing, is
//! reported once and left open (and refunded once the record appears).
//! Every run after the first changes nothing.
//!
//! Stacks: PRICE_MARKUP=1.5 (the true price carries the markup), reviews
//! without the production minimum age, HOLD_TTL_SECONDS=2 and the test hook
//! that lets an exchange's owner "die".

use dexto_shared::money::{Markup, Picos};
use integration_tests::{get_with, Stack};
use serde_json::{json, Value};
use std::sync::OnceLock;

const VARS: [(&str, &str); 4] = [("PRICE_MARKUP", "1.5"), ("USAGE_REVIEW_MIN_AGE_SECONDS", "0"), ("HOLD_TTL_SECONDS", "2"), ("DEXTO_TEST_HOOKS", "1")];

fn stack() -> &'static Stack {
    static S: OnceLock<Stack> = OnceLock::new();
    S.get_or_init(|| integration_tests::start(&VARS))
}

fn findings(s: &Stack, user: &str) -> Vec<Value> {
    let r = get_with(&format!("{}/admin/reconciliation", s.base), &[("Authorization", &format!("Bearer {}", s.admin_token))]);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["data"].as_array().unwrap().iter().filter(|f| f["user_id"] == user).cloned().collect()
}

/// This feature's findings (the key-spending comparison may add its own).
fn usage_findings(s: &Stack, user: &str) -> Vec<Value> {
    findings(s, user).into_iter().filter(|f| f["kind"].as_str().is_some_and(|k| k.starts_with("usage_"))).collect()
}

fn audited_findings(s: &Stack, user: &str) -> usize {
    let r = s.admin("GET", &format!("/admin/audit?user={user}&action=reconciliation.finding"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["data"].as_array().unwrap().len()
}

/// The true price of a generation record at the stack's markup: its cost × 1.5,
/// rounded up once, never below the cost (the billing policy's charge).
fn true_price(s: &Stack, generation_id: &str) -> i64 {
    let record = get_with(&format!("{}/generation?id={generation_id}", s.mock), &[("Authorization", "Bearer test")]);
    assert_eq!(record.status, 200, "{}", record.body);
    let cost = Picos::parse_usd(&record.json()["data"]["total_cost"].to_string()).unwrap();
    Markup::parse("1.5").unwrap().apply(cost).ceil_micros().max(cost.ceil_micros()).0
}

/// The provider cost a generation record reports, rounded up to the micro.
fn cost_micros(s: &Stack, generation_id: &str) -> i64 {
    let record = get_with(&format!("{}/generation?id={generation_id}", s.mock), &[("Authorization", "Bearer test")]);
    Picos::parse_usd(&record.json()["data"]["total_cost"].to_string()).unwrap().ceil_micros().0
}

/// A streamed call whose upstream sends no usage: charged by estimate,
/// `needs_review`. Returns its request id.
fn estimated_call(s: &Stack, key: &str) -> String {
    let body = json!({"model": "openai/gpt-4o-mini", "stream": true, "max_tokens": 200,
        "messages": [{"role": "user", "content": "[[mock:no_usage=1,tokens=40]]"}]});
    let mut sse = s.stream(key, &body);
    assert_eq!(sse.status, 200);
    let request_id = sse.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("X-Dexto-Request-ID")).map(|(_, v)| v.clone()).unwrap();
    while sse.next_event().is_some() {}
    request_id
}

fn usage_row<'a>(user: &'a Value, request_id: &str) -> &'a Value {
    user["recent_usage"].as_array().unwrap().iter().find(|u| u["request_id"] == request_id).expect("the usage row")
}

/// Balance, Σ ledger, ledger entries and findings: what a second run must not change.
fn books(s: &Stack, user_id: &str) -> (Value, Value, usize, usize, usize) {
    let user = s.user(user_id);
    assert_eq!(user["ledger_totals"]["net_micros"], user["balance_micros"], "Σ ledger == balance: {user:#}");
    let entries = user["recent_ledger"].as_array().unwrap().len();
    (user["balance_micros"].clone(), user["recent_usage"].clone(), entries, findings(s, user_id).len(), audited_findings(s, user_id))
}

#[test]
fn an_estimate_above_the_generation_record_is_refunded_exactly_once() {
    let s = stack();
    let u = s.new_user("1");
    let request_id = estimated_call(s, &u.key);
    let before = s.settled_user(&u.id, 1);
    let row = usage_row(&before, &request_id).clone();
    assert_eq!((row["billing_status"].as_str(), row["price_basis"].as_str()), (Some("needs_review"), Some("estimate")), "{row}");
    let generation_id = row["generation_id"].as_str().expect("the generation was named").to_string();
    let charged = row["user_price_micros"].as_i64().unwrap();
    let truth = true_price(s, &generation_id);
    assert!(charged > truth, "the estimate (output bytes / 3) is above the 40 tokens billed upstream: {charged} vs {truth}");

    s.run_cron();
    let user = s.user(&u.id);
    let refund = charged - truth;
    let corrections: Vec<&Value> = user["recent_ledger"].as_array().unwrap().iter().filter(|e| e["reference"] == format!("usage_correction:{request_id}")).collect();
    assert_eq!(corrections.len(), 1, "{user:#}");
    assert_eq!((corrections[0]["kind"].as_str(), corrections[0]["amount_micros"].as_i64()), (Some("usage_correction"), Some(refund)));
    assert_eq!(user["balance_micros"].as_i64(), Some(1_000_000 - charged + refund), "the user paid exactly the true price");
    assert_eq!(user["balance_micros"].as_i64(), Some(1_000_000 - truth));
    let row = usage_row(&user, &request_id);
    assert_eq!(row["user_price_micros"].as_i64(), Some(charged), "the original amounts are kept: {row}");
    assert_eq!((row["review_outcome"].as_str(), row["corrected_micros"].as_i64(), row["true_price_micros"].as_i64()), (Some("refunded"), Some(refund), Some(truth)), "{row}");
    assert!(row["resolved_at"].as_i64().is_some(), "{row}");
    assert_eq!(row["true_cost_micros"].as_i64(), Some(cost_micros(s, &generation_id)), "the record's provider cost: {row}");
    let found = findings(s, &u.id);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["kind"], "usage_refunded");
    assert_eq!((found[0]["detail"]["request_id"].as_str(), found[0]["detail"]["refund_micros"].as_i64()), (Some(request_id.as_str()), Some(refund)));

    let first = books(s, &u.id);
    assert_eq!(first.4, 1, "in the audit log once");
    s.run_cron();
    assert_eq!(books(s, &u.id), first, "a second run changes nothing");
}

#[test]
fn a_charge_capped_at_its_hold_is_reported_undercharged_and_never_debited() {
    let s = stack();
    let u = s.new_user("0.05");
    // The provider ignores max_tokens: 20,000 tokens reported, the charge stops at the hold.
    let r = s.chat(&u.key, &json!({"model": "anthropic/claude-haiku-4.5", "messages": [{"role": "user", "content": "[[mock:tokens=20000,ignore_max=1]]"}]}));
    assert_eq!(r.status, 200, "{}", r.body);
    let request_id = r.header("X-Dexto-Request-ID").unwrap().to_string();
    let before = s.settled_user(&u.id, 1);
    let row = usage_row(&before, &request_id).clone();
    assert_eq!(row["billing_status"], "needs_review", "{row}");
    let generation_id = row["generation_id"].as_str().unwrap().to_string();
    let (charged, balance) = (row["user_price_micros"].as_i64().unwrap(), before["balance_micros"].clone());
    let truth = true_price(s, &generation_id);
    assert!(truth > charged, "{truth} vs {charged}");

    s.run_cron();
    let first = books(s, &u.id);
    assert_eq!(first.0, balance, "never charged beyond the hold");
    let user = s.user(&u.id);
    assert!(user["recent_ledger"].as_array().unwrap().iter().all(|e| e["kind"] != "usage_correction"), "{user:#}");
    let row = usage_row(&user, &request_id);
    assert_eq!((row["review_outcome"].as_str(), row["corrected_micros"].as_i64(), row["user_price_micros"].as_i64()), (Some("undercharged"), Some(0), Some(charged)), "{row}");
    // (The key's spending comparison also sees the unbilled upstream cost.)
    let found = usage_findings(s, &u.id);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["kind"], "usage_undercharged");
    let detail = &found[0]["detail"];
    assert_eq!((detail["charged_micros"].as_i64(), detail["true_price_micros"].as_i64(), detail["shortfall_micros"].as_i64()), (Some(charged), Some(truth), Some(truth - charged)));
    s.run_cron();
    assert_eq!(books(s, &u.id), first, "a second run changes nothing");
}

#[test]
fn a_charge_under_review_that_was_right_is_resolved_without_money_or_finding() {
    let s = stack();
    let u = s.new_user("1");
    let r = s.chat(&u.key, &json!({"model": "openai/gpt-4o-mini", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}));
    assert_eq!(r.status, 200, "{}", r.body);
    let request_id = r.header("X-Dexto-Request-ID").unwrap().to_string();
    s.settled_user(&u.id, 1);
    // Flagged for review although the charge was exact (an operator's doubt).
    s.d1(&format!("UPDATE usage_ledger SET billing_status = 'needs_review' WHERE request_id = '{request_id}'"));
    let before = books(s, &u.id);
    s.run_cron();
    let user = s.user(&u.id);
    let row = usage_row(&user, &request_id);
    assert_eq!((row["review_outcome"].as_str(), row["corrected_micros"].as_i64()), (Some("exact"), Some(0)), "{row}");
    assert_eq!(row["true_price_micros"], row["user_price_micros"]);
    let after = books(s, &u.id);
    assert_eq!((&after.0, after.2, after.3, after.4), (&before.0, before.2, 0, 0), "no money moved, nothing reported");
    s.run_cron();
    assert_eq!(books(s, &u.id), after);
}

#[test]
fn a_provisional_charge_without_a_generation_id_is_reported_once_and_left_open() {
    let s = stack();
    let u = s.new_user("1");
    let (_, user) = s.orphan_before_generation_id(&u);
    let request_id = user["recent_usage"][0]["request_id"].as_str().unwrap().to_string();
    assert_eq!(user["recent_usage"][0]["generation_id"], Value::Null);
    s.run_cron();
    let first = books(s, &u.id);
    assert_eq!(first.0, user["balance_micros"], "nothing to re-price it by: no money moves");
    let found = findings(s, &u.id);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0]["kind"].as_str(), found[0]["detail"]["reason"].as_str()), (Some("usage_unverifiable"), Some("no_generation_id")));
    assert_eq!(found[0]["detail"]["request_id"], request_id.as_str());
    let row = usage_row(&s.user(&u.id), &request_id).clone();
    assert_eq!((row["billing_status"].as_str(), row["resolved_at"].as_i64()), (Some("needs_review"), None), "left open: {row}");
    s.run_cron();
    assert_eq!(books(s, &u.id), first, "reported once");
}

#[test]
fn a_missing_generation_record_is_reported_once_then_refunded_when_it_appears() {
    // Its own stack: the mock's switch hides every generation record.
    let s = integration_tests::start(&VARS);
    let u = s.new_user("1");
    let request_id = estimated_call(&s, &u.key);
    let before = s.settled_user(&u.id, 1);
    let charged = usage_row(&before, &request_id)["user_price_micros"].as_i64().unwrap();
    let generation_id = usage_row(&before, &request_id)["generation_id"].as_str().unwrap().to_string();
    s.mock_faults(json!({"generation_status": 404}));
    s.run_cron();
    s.run_cron();
    let first = books(&s, &u.id);
    assert_eq!(first.0, before["balance_micros"]);
    let found = findings(&s, &u.id);
    assert_eq!(found.len(), 1, "once: {found:?}");
    assert_eq!((found[0]["kind"].as_str(), found[0]["detail"]["reason"].as_str()), (Some("usage_unverifiable"), Some("no_generation_record")));
    assert_eq!(usage_row(&s.user(&u.id), &request_id)["resolved_at"], Value::Null);

    // The record appears; the row is due for another look (hours later).
    s.mock_faults(json!({"generation_status": null}));
    s.d1(&format!("UPDATE usage_ledger SET review_checked_at = review_checked_at - 7 * 3600000 WHERE request_id = '{request_id}'"));
    s.run_cron();
    let truth = true_price(&s, &generation_id);
    let user = s.user(&u.id);
    assert_eq!(user["balance_micros"].as_i64(), Some(1_000_000 - truth), "refunded to the true price");
    let row = usage_row(&user, &request_id);
    assert_eq!((row["review_outcome"].as_str(), row["corrected_micros"].as_i64()), (Some("refunded"), Some(charged - truth)));
    let kinds: Vec<Value> = usage_findings(&s, &u.id).iter().map(|f| f["kind"].clone()).collect();
    assert_eq!(kinds, vec![json!("usage_refunded"), json!("usage_unverifiable")]);
    let settled = books(&s, &u.id);
    s.run_cron();
    assert_eq!(books(&s, &u.id), settled, "a second run changes nothing");
}
