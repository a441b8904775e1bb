//! Spend caps per user and per key, daily / monthly / lifetime (UTC): set by
//! the user (session API) and by operators (admin API), enforced by the wallet
//! object with the hold, so open holds count and concurrency cannot exceed a
//! cap. Refusals are 403 `spend_cap_reached` naming the cap, window and reset.
//!
//! This file's stack lets a request move its clock (DEXTO_TEST_HOOKS=1,
//! `X-Dexto-Test-Now-Offset-Ms`) to cross a window boundary.

use integration_tests::Stack;
use serde_json::{json, Value};
use std::sync::{Arc, Barrier, OnceLock};

fn stack() -> &'static Stack {
    static S: OnceLock<Stack> = OnceLock::new();
    S.get_or_init(|| integration_tests::start(&[("DEXTO_TEST_HOOKS", "1")]))
}

/// Free prompt, 20 µ$ per output token, and the mock produces exactly
/// max_tokens: each call costs exactly its 2 000 µ$ hold.
fn call_body() -> Value {
    json!({"model": "mock/output-only", "max_tokens": 100, "messages": [{"role": "user", "content": "[[mock:tokens=100]]"}]})
}

fn set_cap(s: &Stack, user: &str, body: Value) -> Value {
    let r = s.admin("PUT", &format!("/admin/users/{user}/caps"), Some(body));
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

#[test]
fn parallel_calls_at_the_edge_of_a_cap_never_exceed_it() {
    let s = stack();
    let u = s.new_user("1");
    set_cap(s, &u.id, json!({"scope": "user", "window": "daily", "limit_usd": 0.01}));
    let barrier = Arc::new(Barrier::new(20));
    let statuses: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|_| {
                let (barrier, key) = (barrier.clone(), u.key.clone());
                scope.spawn(move || {
                    barrier.wait();
                    let r = s.chat(&key, &call_body());
                    let body = if r.status == 200 { Value::Null } else { r.json() };
                    (r.status, body)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = statuses.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(ok, 5, "$0.01 / $0.002 per call: {statuses:?}");
    for (status, body) in statuses.iter().filter(|(s, _)| *s != 200) {
        assert_eq!(*status, 403, "{body}");
        assert_eq!(body["error"]["code"], "spend_cap_reached");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("account's daily cap is $0.01") && message.contains("resets at"), "{message}");
    }
    let user = s.settled_user(&u.id, 5);
    assert_eq!(user["balance_micros"], 1_000_000 - 10_000, "spent exactly the cap");
    assert_eq!(user["caps"][0]["spent_usd"], 0.01);
    assert_eq!(user["caps"][0]["remaining_usd"], 0.0);
}

#[test]
fn a_cap_lowered_below_the_spending_refuses_until_raised_or_removed() {
    let s = stack();
    let u = s.new_user("1");
    for _ in 0..2 {
        assert_eq!(s.chat(&u.key, &call_body()).status, 200);
    }
    s.settled_user(&u.id, 2);
    set_cap(s, &u.id, json!({"scope": "user", "window": "monthly", "limit_usd": 0.003}));
    let r = s.chat(&u.key, &call_body());
    assert_eq!(r.status, 403, "{}", r.body);
    let message = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("monthly cap is $0.003") && message.contains("$0.004 is spent"), "{message}");
    let caps = set_cap(s, &u.id, json!({"scope": "user", "window": "monthly", "limit_usd": null}));
    assert_eq!(caps["caps"], json!([]));
    assert_eq!(s.chat(&u.key, &call_body()).status, 200, "removed");
}

#[test]
fn a_key_cap_bounds_only_that_key_and_users_set_their_own() {
    let s = stack();
    let u = s.new_user("1");
    let other = s.admin("POST", &format!("/admin/users/{}/keys", u.id), Some(json!({"name": "other"}))).json();
    let session = s.session_token(&u.id, "caps@example.com");
    // The user sets a lifetime cap on one key through the session API.
    let r = s.call("PUT", "/api/caps", &session, Some(json!({"scope": "key", "key_id": u.key_id, "window": "lifetime", "limit_usd": 0.002})));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["caps"][0]["resets_at"], Value::Null);
    assert_eq!(s.chat(&u.key, &call_body()).status, 200);
    let refused = s.chat(&u.key, &call_body());
    assert_eq!((refused.status, refused.json()["error"]["code"].as_str()), (403, Some("spend_cap_reached")));
    assert!(refused.json()["error"]["message"].as_str().unwrap().contains("key's lifetime cap"));
    assert_eq!(s.chat(other["key"].as_str().unwrap(), &call_body()).status, 200, "another key is not bound by it");
    // Another user's key cannot be capped from this account.
    let stranger = s.new_user("0");
    let r = s.call("PUT", "/api/caps", &session, Some(json!({"scope": "key", "key_id": stranger.key_id, "window": "daily", "limit_usd": 1})));
    assert_eq!(r.status, 404, "{}", r.body);
    let listed = s.call("GET", "/api/caps", &session, None);
    assert_eq!(listed.json()["caps"].as_array().map(Vec::len), Some(1));
    assert_eq!(s.call("PUT", "/api/caps", &session, Some(json!({"window": "weekly", "limit_usd": 1}))).status, 400);
}

#[test]
fn a_daily_cap_resets_when_the_utc_day_rolls_over() {
    let s = stack();
    let u = s.new_user("1");
    set_cap(s, &u.id, json!({"window": "daily", "limit_usd": 0.002}));
    assert_eq!(s.chat(&u.key, &call_body()).status, 200);
    s.settled_user(&u.id, 1);
    assert_eq!(s.chat(&u.key, &call_body()).status, 403, "today's cap is used");
    let tomorrow = (24 * 3600 * 1000).to_string();
    let r = s.chat_raw(&u.key, call_body().to_string().as_bytes(), &[("X-Dexto-Test-Now-Offset-Ms", &tomorrow)]);
    assert_eq!(r.status, 200, "a new day, a new window: {}", r.body);
}

#[test]
fn an_operators_cap_binds_until_an_operator_changes_it() {
    let s = stack();
    let u = s.new_user("1");
    let session = s.session_token(&u.id, "owned@example.com");
    set_cap(s, &u.id, json!({"scope": "user", "window": "daily", "limit_usd": 0.004}));
    // The user can neither remove nor raise it: their change touches only their own caps.
    for change in [json!({"window": "daily", "limit_usd": null}), json!({"window": "daily", "limit_usd": 50})] {
        let r = s.call("PUT", "/api/caps", &session, Some(change));
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let listed = s.call("GET", "/api/caps", &session, None).json();
    let operators: Vec<&Value> = listed["caps"].as_array().unwrap().iter().filter(|c| c["set_by"] == "operator").collect();
    assert_eq!(operators.len(), 1, "{listed}");
    assert_eq!(operators[0]["limit_usd"], 0.004);
    assert_eq!(s.chat(&u.key, &call_body()).status, 200);
    assert_eq!(s.chat(&u.key, &call_body()).status, 200);
    let refused = s.chat(&u.key, &call_body());
    assert_eq!(refused.status, 403, "the operator's $0.004 binds below the user's $50: {}", refused.body);
    let message = refused.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("set by Dexto") && !message.contains("PUT /api/caps"), "{message}");
    // The lower of both binds: a user's own cap below the operator's.
    let v = s.new_user("1");
    let session = s.session_token(&v.id, "owned@example.com");
    set_cap(s, &v.id, json!({"scope": "user", "window": "daily", "limit_usd": 0.004}));
    assert_eq!(s.call("PUT", "/api/caps", &session, Some(json!({"window": "daily", "limit_usd": 0.002}))).status, 200);
    assert_eq!(s.chat(&v.key, &call_body()).status, 200);
    let own = s.chat(&v.key, &call_body());
    assert_eq!(own.status, 403, "{}", own.body);
    assert!(own.json()["error"]["message"].as_str().unwrap().contains("PUT /api/caps"), "the user's own cap says how to raise it");
    // An operator can remove theirs.
    set_cap(s, &u.id, json!({"scope": "user", "window": "daily", "limit_usd": null}));
    assert_eq!(s.chat(&u.key, &call_body()).status, 200);
}
