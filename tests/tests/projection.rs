//! The wallet's background projection after each change: the ledger into D1,
//! the upstream key's limit, keys' last use. The steps are independent, and a
//! step that keeps failing backs off (5 s, doubling, capped at an hour) instead
//! of retrying on every write or every few seconds forever.

use integration_tests::{get, Stack};
use serde_json::json;
use std::sync::OnceLock;

fn stack() -> &'static Stack {
    static S: OnceLock<Stack> = OnceLock::new();
    S.get_or_init(|| integration_tests::start(&[]))
}

/// Management calls on one upstream key (`GET`/`PATCH /keys/{hash}`) so far.
fn key_calls(s: &Stack) -> usize {
    let r = get(&format!("{}/__mock/requests?contains=/keys/", s.mock));
    r.json()["requests"].as_array().unwrap().iter().filter(|q| q["method"] != "DELETE").count()
}

#[test]
fn a_failing_limit_sync_blocks_neither_the_ledger_nor_key_use_and_backs_off() {
    let s = stack();
    let u = s.new_user("1");
    let call = |key: &str| {
        let r = s.chat(key, &json!({"model": "openai/gpt-4o-mini", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}));
        assert_eq!(r.status, 200, "{}", r.body);
    };
    call(&u.key); // mints the user's upstream key
    s.settled_user(&u.id, 1);

    s.mock_faults(json!({"keys_status": 500}));
    s.credit(&u.id, "2"); // asks for a limit sync, which fails
    s.log_line(&["wallet.flush_failed", "\"step\":\"limit_sync\"", "\"failures\":1"]);
    let after_failure = key_calls(s);

    // A key used for the first time now: its last use still reaches D1, and
    // the ledger keeps flowing, while the limit sync waits out its backoff.
    let k2 = s.admin("POST", &format!("/admin/users/{}/keys", u.id), Some(json!({"name": "second"})));
    let (k2_id, k2_key) = (k2.json()["id"].as_str().unwrap().to_string(), k2.json()["key"].as_str().unwrap().to_string());
    for _ in 0..3 {
        call(&k2_key);
    }
    s.settled_user(&u.id, 4);
    // Counted before the (slow) D1 reads below: at most the one retry the
    // backoff itself schedules (5 s after the failure) may have happened.
    let attempts = key_calls(s) - after_failure;
    assert!(attempts <= 1, "writes during the backoff must not retry the failing step: {attempts} more calls");
    s.d1_until(&format!("SELECT last_used_at FROM api_keys WHERE id = '{k2_id}'"), |rows| rows.first().is_some_and(|r| !r["last_used_at"].is_null()));

    // Once the upstream answers again, the retry (by alarm) brings the limit in line.
    s.mock_faults(json!({"keys_status": null}));
    s.d1_until(&format!("SELECT limit_micros FROM upstream_keys WHERE user_id = '{}' AND status = 'active'", u.id), |rows| {
        rows.first().and_then(|r| r["limit_micros"].as_i64()).is_some_and(|limit| limit > 2_000_000)
    });
}

/// A busy wallet's pass carries many settlements in a few multi-row inserts
/// (ledger rows 10 to a statement, usage rows 4) and the balance once. Its
/// entries leave the outbox only with the next balance change, so after a
/// restart they are projected again, mixed in one insert with a new one:
/// the replayed rows change nothing, nothing conflicts, and D1 ends with
/// exactly one row of each kind per settlement.
#[test]
fn a_pass_of_many_settlements_projected_again_after_a_restart_changes_nothing() {
    let s = integration_tests::start(&[]);
    let u = s.new_user("5");
    let call = |s: &Stack| {
        let r = s.chat(&u.key, &json!({"model": "openai/gpt-4o-mini", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}));
        assert_eq!(r.status, 200, "{}", r.body);
    };
    std::thread::scope(|scope| {
        for _ in 0..12 {
            scope.spawn(|| call(&s));
        }
    });
    s.books_balanced(&u.id, 12);
    let s = s.restart(&[]);
    call(&s);
    let user = s.books_balanced(&u.id, 13);
    let count = |table: &str| s.d1(&format!("SELECT COUNT(*) AS n FROM {table} WHERE user_id = '{}'", u.id))[0]["n"].as_i64().unwrap();
    assert_eq!((count("usage_ledger"), count("credit_ledger")), (13, 14), "13 settlements and the opening credit: {user:#}");
    let mirror = s.d1(&format!("SELECT balance_micros FROM balances WHERE user_id = '{}'", u.id));
    assert_eq!(mirror[0]["balance_micros"], user["balance_micros"], "D1's balance mirror");
    assert!(!s.logs().contains("ledger.conflict"), "a replayed row was taken for a conflict");
}
