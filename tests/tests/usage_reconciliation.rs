//! `needs_review` usage resolved from OpenRouter's `GET /generation?id=` by the
//! reconciliation cron (here `GET /__scheduled`): an estimate above the true
//! price is refunded to the micro-dollar, once; a charge capped at its hold is
//! reported as undercharged and never debited; an exact one is resolved
//! silently; a row whose record is missing is reported once and left open
//! (and refunded once the record appears). A provisional charge without a
//! generation id (the owner died first: a kill mid-request, a deploy) is
//! refunded down to what the user's upstream key spent × the markup; where
//! that bounds nothing (spending outside the gateway, the key's counter
//! unavailable) it is reported once and left open.
//! Every run after the first changes nothing.
//!
//! Stacks: PRICE_MARKUP=1.5 (the true price carries the markup), reviews
//! without the production minimum age, HOLD_TTL_SECONDS=2 and the test hook
//! that lets an exchange's owner "die".

use dexto_shared::money::{Markup, Picos};
use integration_tests::{get_with, marker, Stack};
use serde_json::{json, Value};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

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

/// What the user's upstream key has spent by the mock's count (its management
/// API), once that is more than `above`: the mock bills a generation when it
/// ends, even when the gateway hung up before.
fn key_spent(s: &Stack, user_id: &str, above: Picos) -> Picos {
    let hash = s.d1(&format!("SELECT upstream_hash FROM upstream_keys WHERE user_id = '{user_id}' AND status = 'active'"));
    let hash = hash[0]["upstream_hash"].as_str().expect("the user's upstream key").to_string();
    let auth = format!("Bearer {}", mock_openrouter::DEFAULT_MANAGEMENT_KEY);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let key = get_with(&format!("{}/keys/{hash}", s.mock), &[("Authorization", &auth)]).json();
        let spent = Picos::parse_usd(&key["data"]["usage"].to_string()).unwrap();
        if spent.0 > above.0 {
            return spent;
        }
        assert!(Instant::now() < deadline, "the key never spent more than {above:?}: {key}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The price of `cost` at the stack's markup, rounded up once (never below cost).
fn priced(cost: Picos) -> i64 {
    Markup::parse("1.5").unwrap().apply(cost).ceil_micros().max(cost.ceil_micros()).0
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

/// The one `usage_correction` entry of a request: its amount.
fn correction(user: &Value, request_id: &str) -> Option<i64> {
    let entries: Vec<&Value> = user["recent_ledger"].as_array().unwrap().iter().filter(|e| e["reference"] == format!("usage_correction:{request_id}")).collect();
    assert!(entries.len() <= 1, "refunded once: {entries:?}");
    entries.first().map(|e| {
        assert_eq!(e["kind"], "usage_correction");
        e["amount_micros"].as_i64().unwrap()
    })
}

/// A provisional charge refunded down to `price` by the key's spending: the
/// row resolved as `bounded`, its correction in the ledger once, one
/// `usage_bounded` finding (and no other: no key-spending drift either).
fn assert_bounded(s: &Stack, user_id: &str, request_id: &str, charged: i64, price: i64) {
    let user = s.user(user_id);
    let row = usage_row(&user, request_id);
    assert_eq!((row["review_outcome"].as_str(), row["true_price_micros"].as_i64(), row["corrected_micros"].as_i64()), (Some("bounded"), Some(price), Some(charged - price)), "{row}");
    assert!(row["resolved_at"].as_i64().is_some(), "{row}");
    assert_eq!(row["user_price_micros"].as_i64(), Some(charged), "the original amounts are kept: {row}");
    assert_eq!(correction(&user, request_id), Some(charged - price));
    let found = findings(s, user_id);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0]["kind"].as_str(), found[0]["detail"]["request_id"].as_str()), (Some("usage_bounded"), Some(request_id)));
    assert_eq!(found[0]["detail"]["refund_micros"].as_i64(), Some(charged - price));
}

#[test]
fn a_provisional_charge_without_a_generation_id_is_refunded_to_what_the_key_spent() {
    let s = stack();
    let u = s.new_user("1");
    let (hold, user) = s.orphan_before_generation_id(&u);
    let request_id = user["recent_usage"][0]["request_id"].as_str().unwrap().to_string();
    assert_eq!(user["recent_usage"][0]["generation_id"], Value::Null);
    assert_eq!(user["recent_usage"][0]["user_price_micros"].as_i64(), Some(hold), "charged the whole hold provisionally");
    // The user's key is theirs alone: what it spent is what this call cost upstream.
    let spent = key_spent(s, &u.id, Picos::ZERO);
    let price = priced(spent);
    assert!(price < hold, "{price} vs {hold}");

    s.run_cron();
    let first = books(s, &u.id);
    assert_eq!(first.0.as_i64(), Some(1_000_000 - price), "the user paid what the upstream billed × markup");
    assert_bounded(s, &u.id, &request_id, hold, price);
    assert_eq!(first.4, 1, "in the audit log once");
    s.run_cron();
    assert_eq!(books(s, &u.id), first, "a second run changes nothing");
}

#[test]
fn a_non_stream_call_cut_by_a_restart_is_charged_no_more_than_the_upstream_billed() {
    let vars = VARS;
    let s = integration_tests::start(&vars);
    let u = s.new_user("1");
    let m = marker("restart");
    // The upstream answers after 3 s: the stack is killed while the wallet waits for its headers.
    let body = json!({"model": "openai/gpt-4o-mini", "max_tokens": 4000, "messages": [{"role": "user", "content": format!("{m} [[mock:delay_ms=3000,tokens=50]]")}]});
    let (url, auth) = (format!("{}/v1/chat/completions", s.base), format!("Bearer {}", u.key));
    let caller = std::thread::spawn(move || integration_tests::client::agent().post(&url).header("Authorization", &auth).send(body.to_string().as_bytes()).map(|r| r.status().as_u16()));
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.upstream_calls(&m) == 0 {
        assert!(Instant::now() < deadline, "the call never reached the upstream");
        std::thread::sleep(Duration::from_millis(20));
    }
    let hold = s.user(&u.id)["open_holds"][0]["amount_micros"].as_i64().expect("the call's hold");
    let s = s.restart(&vars);
    let lost = caller.join().unwrap();
    assert!(lost.as_ref().map_or(true, |status| *status >= 500), "the client lost its call with the stack: {lost:?}");

    // The restarted object has the hold but no owner and no generation id: the whole hold, provisionally.
    let swept = s.admin("POST", &format!("/admin/users/{}/holds/sweep", u.id), None);
    assert_eq!(swept.status, 200, "{}", swept.body);
    let user = s.settled_user(&u.id, 1);
    let row = user["recent_usage"][0].clone();
    let request_id = row["request_id"].as_str().unwrap().to_string();
    assert_eq!((row["user_price_micros"].as_i64(), row["generation_id"].clone(), row["billing_status"].as_str()), (Some(hold), Value::Null, Some("needs_review")), "{row}");
    // The upstream finished the generation and billed the user's key for it.
    let spent = key_spent(&s, &u.id, Picos::ZERO);
    let price = priced(spent);
    assert!(price < hold, "{price} vs {hold}");

    s.run_cron();
    let first = books(&s, &u.id);
    assert_eq!(first.0.as_i64(), Some(1_000_000 - price), "charged the upstream's cost × markup, no more");
    assert_bounded(&s, &u.id, &request_id, hold, price);
    assert_eq!(first.4, 1, "in the audit log once");
    s.run_cron();
    assert_eq!(books(&s, &u.id), first, "a second run changes nothing");
}

#[test]
fn a_bound_that_explains_the_whole_charge_is_reported_once_and_left_open() {
    let s = stack();
    let u = s.new_user("1");
    let m = marker("outside");
    assert_eq!(s.chat(&u.key, &json!({"model": "openai/gpt-4o-mini", "max_tokens": 5, "messages": [{"role": "user", "content": m}]})).status, 200);
    s.settled_user(&u.id, 1);
    // Someone spends $0.02 through the user's upstream key outside the gateway
    // (before the orphan, so that any pass — other tests run the cron too —
    // sees it): the key's counter no longer bounds a provisional charge below its hold.
    let seen = integration_tests::get(&format!("{}/__mock/requests?contains={m}", s.mock)).json();
    let key = seen["requests"][0]["authorization"].as_str().expect("the gateway used the user's key").to_string();
    let direct = json!({"model": "mock/output-only", "max_tokens": 1000, "messages": [{"role": "user", "content": "[[mock:tokens=1000]]"}]});
    let r = integration_tests::post(&format!("{}/chat/completions", s.mock), &[("Authorization", &key), ("Content-Type", "application/json")], direct.to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    let before = key_spent(s, &u.id, Picos::ZERO);
    let (hold, _) = s.orphan_before_generation_id(&u);
    key_spent(s, &u.id, before);

    s.run_cron();
    let first = books(s, &u.id);
    let user = s.user(&u.id);
    let row = user["recent_usage"].as_array().unwrap().iter().find(|r| r["generation_id"].is_null()).expect("the provisional row").clone();
    assert_eq!((row["user_price_micros"].as_i64(), row["resolved_at"].as_i64()), (Some(hold), None), "charged as it was, left open: {row}");
    assert_eq!(correction(&user, row["request_id"].as_str().unwrap()), None);
    let found = usage_findings(s, &u.id);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0]["kind"].as_str(), found[0]["detail"]["reason"].as_str()), (Some("usage_unverifiable"), Some("bound_not_below_charge")));
    assert!(findings(s, &u.id).iter().any(|f| f["kind"] == "upstream_usage_drift"), "the outside spending is reported too");
    s.run_cron();
    assert_eq!(books(s, &u.id), first, "reported once");
}

#[test]
fn key_spending_unavailable_twice_is_reported_once_then_corrected_when_it_returns() {
    // Its own stack: the mock's switch fails the whole management API.
    let s = integration_tests::start(&VARS);
    let u = s.new_user("1");
    let (hold, user) = s.orphan_before_generation_id(&u);
    let request_id = user["recent_usage"][0]["request_id"].as_str().unwrap().to_string();
    let spent = key_spent(&s, &u.id, Picos::ZERO);
    s.mock_faults(json!({"keys_status": 500}));
    s.run_cron();
    assert_eq!(usage_findings(&s, &u.id), Vec::<Value>::new(), "one failed look is not yet a finding (an outage may pass)");
    let later = |s: &Stack| s.d1(&format!("UPDATE usage_ledger SET review_checked_at = review_checked_at - 7 * 3600000 WHERE request_id = '{request_id}'"));
    later(&s);
    s.run_cron();
    s.run_cron();
    let found = usage_findings(&s, &u.id);
    assert_eq!(found.len(), 1, "once: {found:?}");
    assert_eq!((found[0]["kind"].as_str(), found[0]["detail"]["reason"].as_str()), (Some("usage_unverifiable"), Some("upstream_key_usage_unavailable")));
    assert_eq!(books(&s, &u.id).0.as_i64(), Some(1_000_000 - hold), "nothing moved");

    // The management API is back: the next look bounds and refunds it.
    s.mock_faults(json!({"keys_status": null}));
    later(&s);
    s.run_cron();
    let price = priced(spent);
    let settled = books(&s, &u.id);
    assert_eq!(settled.0.as_i64(), Some(1_000_000 - price));
    let row = usage_row(&s.user(&u.id), &request_id).clone();
    assert_eq!((row["review_outcome"].as_str(), row["corrected_micros"].as_i64()), (Some("bounded"), Some(hold - price)), "{row}");
    let kinds: Vec<Value> = usage_findings(&s, &u.id).iter().map(|f| f["kind"].clone()).collect();
    assert_eq!(kinds, vec![json!("usage_bounded"), json!("usage_unverifiable")]);
    s.run_cron();
    assert_eq!(books(&s, &u.id), settled, "a second run changes nothing");
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
