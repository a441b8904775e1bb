//! Replays are no-ops: a settlement replayed for a request already settled,
//! and a credit replayed with the same idempotency key (sequentially and
//! concurrently), change neither the balance nor the ledger.

use integration_tests::stack;
use serde_json::json;

#[test]
fn replaying_a_settlement_changes_nothing() {
    let s = stack();
    let u = s.new_user("1");
    let r = s.chat(&u.key, &json!({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}));
    assert_eq!(r.status, 200);
    let request_id = r.header("X-Dexto-Request-ID").unwrap().to_string();
    let before = s.settled_user(&u.id, 1);
    let replay = s.admin(
        "POST",
        &format!("/admin/users/{}/settlements", u.id),
        Some(json!({"request_id": request_id, "key_id": u.key_id, "model": "openai/gpt-4o", "user_price_usd": 0.5, "provider_cost_usd": 0.5})),
    );
    assert_eq!(replay.status, 200, "{}", replay.body);
    assert_eq!(replay.json()["replay"], true);
    let after = s.user(&u.id);
    assert_eq!(after["balance_micros"], before["balance_micros"]);
    assert_eq!(after["ledger_totals"], before["ledger_totals"]);
    assert_eq!(after["usage_totals"], before["usage_totals"]);
}

#[test]
fn a_manual_settlement_applies_once() {
    let s = stack();
    let u = s.new_user("1");
    let body = json!({"request_id": "req_manual_1", "key_id": u.key_id, "model": "openai/gpt-4o", "user_price_usd": 0.25, "provider_cost_usd": 0.2});
    let first = s.admin("POST", &format!("/admin/users/{}/settlements", u.id), Some(body.clone()));
    assert_eq!((first.status, first.json()["replay"].clone()), (200, json!(false)), "{}", first.body);
    let second = s.admin("POST", &format!("/admin/users/{}/settlements", u.id), Some(body));
    assert_eq!(second.json()["replay"], true);
    let user = s.user(&u.id);
    assert_eq!(user["balance_micros"], 750_000);
    assert_eq!(user["ledger_totals"]["entries"], 2);
}

#[test]
fn a_credit_replayed_20_times_and_10_concurrently_applies_once() {
    let s = stack();
    let u = s.new_user("0");
    let path = format!("/admin/users/{}/credits", u.id);
    let body = json!({"amount_usd": 2.5, "reason": "goodwill", "idempotency_key": "ticket-77"});
    for _ in 0..20 {
        let r = s.admin("POST", &path, Some(body.clone()));
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["balance_micros"], 2_500_000);
    }
    let concurrent = json!({"amount_usd": 1, "idempotency_key": "ticket-78"});
    std::thread::scope(|scope| {
        for _ in 0..10 {
            let (path, concurrent) = (&path, &concurrent);
            scope.spawn(move || assert_eq!(s.admin("POST", path, Some(concurrent.clone())).status, 200));
        }
    });
    let user = s.user(&u.id);
    assert_eq!(user["balance_micros"], 3_500_000);
    assert_eq!(user["ledger_totals"]["entries"], 2);
    assert_eq!(user["ledger_totals"]["net_micros"], 3_500_000);
}

#[test]
fn credits_refuse_amounts_finer_than_a_micro_dollar() {
    let s = stack();
    let u = s.new_user("0");
    let r = s.admin("POST", &format!("/admin/users/{}/credits", u.id), Some(json!({"amount_usd": 0.0000001, "idempotency_key": "dust"})));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("decimal places"));
}

#[test]
fn credit_references_are_per_user_and_required() {
    let s = stack();
    let (a, b) = (s.new_user("0"), s.new_user("0"));
    let key = integration_tests::marker("same-key");
    for (u, amount) in [(&a, 1.5), (&b, 2.0)] {
        let r = s.admin("POST", &format!("/admin/users/{}/credits", u.id), Some(json!({"amount_usd": amount, "idempotency_key": key})));
        assert_eq!(r.status, 200, "{}", r.body);
    }
    for (u, micros) in [(&a, 1_500_000), (&b, 2_000_000)] {
        let user = s.user(&u.id);
        assert_eq!(user["balance_micros"], micros);
        assert_eq!(user["ledger_totals"]["net_micros"], micros, "Σ ledger == balance for {}", u.id);
        assert_eq!(user["ledger_totals"]["entries"], 1);
    }
    let missing = s.admin("POST", &format!("/admin/users/{}/credits", a.id), Some(json!({"amount_usd": 1})));
    assert_eq!(missing.status, 400, "{}", missing.body);
    assert!(missing.json()["error"]["message"].as_str().unwrap().contains("idempotency_key"));
}

#[test]
fn a_manual_settlement_of_another_users_request_is_refused() {
    let s = stack();
    let (a, b) = (s.new_user("1"), s.new_user("1"));
    let r = s.chat(&a.key, &json!({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}));
    let request_id = r.header("X-Dexto-Request-ID").unwrap().to_string();
    s.settled_user(&a.id, 1);
    let body = json!({"request_id": request_id, "key_id": b.key_id, "model": "openai/gpt-4o", "user_price_usd": 0.5, "provider_cost_usd": 0.5});
    let r = s.admin("POST", &format!("/admin/users/{}/settlements", b.id), Some(body));
    assert_eq!(r.status, 409, "{}", r.body);
    let user = s.user(&b.id);
    assert_eq!((user["balance_micros"].as_i64(), user["usage_totals"]["requests"].as_i64()), (Some(1_000_000), Some(0)));
}
