//! Reconciliation (hourly cron; here `GET /__scheduled`): each wallet object
//! is compared with its D1 projection (the balance mirror and the ledger sum,
//! in total and for the included bucket of plans);
//! a seeded drift of each kind is reported exactly once, in
//! `GET /admin/reconciliation` and the audit log.

use integration_tests::{get_with, Stack};
use serde_json::{json, Value};

fn findings(s: &Stack, user: &str) -> Vec<Value> {
    let r = get_with(&format!("{}/admin/reconciliation", s.base), &[("Authorization", &format!("Bearer {}", s.admin_token))]);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["data"].as_array().unwrap().iter().filter(|f| f["user_id"] == user).cloned().collect()
}

#[test]
fn drift_between_a_wallet_and_its_projection_is_reported_once() {
    let s = integration_tests::start(&[]);
    let (clean, drifted) = (s.new_user("1"), s.new_user("2"));
    assert_eq!(s.chat(&clean.key, &json!({"model": "openai/gpt-4o-mini", "max_tokens": 3, "messages": [{"role": "user", "content": "hi"}]})).status, 200);
    s.settled_user(&clean.id, 1);
    s.run_cron();
    assert_eq!(findings(&s, &clean.id), Vec::<Value>::new(), "books that agree give no finding");

    // The mirror drifts (a stray write, with a version the wallet will not overwrite).
    s.d1(&format!("UPDATE balances SET balance_micros = balance_micros + 7, version = version + 1000 WHERE user_id = '{}'", drifted.id));
    s.run_cron();
    s.run_cron();
    let found = findings(&s, &drifted.id);
    assert_eq!(found.len(), 1, "once, however often it runs: {found:?}");
    assert_eq!(found[0]["kind"], "wallet_mirror_drift");
    assert_eq!((found[0]["detail"]["wallet_micros"].as_i64(), found[0]["detail"]["mirror_micros"].as_i64()), (Some(2_000_000), Some(2_000_007)));

    // The ledger drifts too (a row the wallet never wrote): a second, distinct finding.
    s.d1(&format!(
        "INSERT INTO credit_ledger (id, user_id, seq, kind, amount_micros, balance_after_micros, reference, created_at)
         VALUES ('cl_stray', '{}', 999, 'admin_credit', 5, 0, 'stray', 0)",
        drifted.id
    ));
    s.run_cron();
    let found = findings(&s, &drifted.id);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0]["detail"]["ledger_sum_micros"].as_i64(), Some(2_000_005));
    let audit = get_with(&format!("{}/admin/audit?user={}&action=reconciliation.finding", s.base, drifted.id), &[("Authorization", &format!("Bearer {}", s.admin_token))]);
    assert_eq!(audit.json()["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(findings(&s, &clean.id), Vec::<Value>::new());

    // The included bucket (plans) drifts alone, the total agreeing: its own finding.
    let bucket = s.new_user("1");
    s.d1(&format!("UPDATE balances SET included_micros = included_micros + 3, version = version + 1000 WHERE user_id = '{}'", bucket.id));
    s.run_cron();
    let found = findings(&s, &bucket.id);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0]["detail"]["bucket"].as_str(), found[0]["detail"]["mirror_micros"].as_i64(), found[0]["detail"]["wallet_micros"].as_i64()), (Some("included"), Some(3), Some(0)));
}

#[test]
fn spending_through_the_upstream_key_outside_the_gateway_is_reported_once() {
    let s = integration_tests::start(&[]);
    let u = s.new_user("1");
    let m = integration_tests::marker("recon-upstream");
    let r = s.chat(&u.key, &json!({"model": "openai/gpt-4o-mini", "max_tokens": 5, "messages": [{"role": "user", "content": m}]}));
    assert_eq!(r.status, 200, "{}", r.body);
    s.settled_user(&u.id, 1);
    s.run_cron();
    assert!(findings(&s, &u.id).is_empty(), "billed == spent upstream");

    // Someone uses the user's OpenRouter key directly: $0.02 the ledger never saw.
    let seen = integration_tests::get(&format!("{}/__mock/requests?contains={m}", s.mock)).json();
    let auth = seen["requests"][0]["authorization"].as_str().expect("the gateway used the user's key").to_string();
    let direct = json!({"model": "mock/output-only", "max_tokens": 1000, "messages": [{"role": "user", "content": "[[mock:tokens=1000]]"}]});
    let r = integration_tests::post(&format!("{}/chat/completions", s.mock), &[("Authorization", &auth), ("Content-Type", "application/json")], direct.to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    s.run_cron();
    s.run_cron();
    let found = findings(&s, &u.id);
    assert_eq!(found.len(), 1, "once: {found:?}");
    assert_eq!(found[0]["kind"], "upstream_usage_drift");
    assert_eq!(found[0]["detail"]["drift_micros"].as_i64(), Some(20_000));
}
