//! Direct OpenRouter keys (BYOK): a key the user calls OpenRouter with
//! themselves, minted and shown once, funded from the wallet exactly — the
//! wallet debited and the key's limit raised by the same amount; unspent
//! credit (by the key's own counter) taken back, the limit lowered first; a
//! revocation returns what the key did not spend. A move that stops half-way
//! (the test hook, as a crash) is completed by reconciliation, once.
//! Σ ledger == balance throughout.
//!
//! Stack: DEXTO_TEST_HOOKS=1 (the stop-after-the-first-step header).

use integration_tests::client::send;
use integration_tests::direct_keys::*;
use integration_tests::{marker, Stack};
use serde_json::{json, Value};
use std::sync::{Mutex, MutexGuard, OnceLock};

fn stack() -> &'static Stack {
    static S: OnceLock<Stack> = OnceLock::new();
    S.get_or_init(|| integration_tests::start(&[("DEXTO_TEST_HOOKS", "1")]))
}

/// One test at a time: reconciliation completes every user's pending moves,
/// so one test's cron run would finish another's stopped move before that
/// test has looked at it half-way.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits until the user has `n` pending moves (another process sees a
/// Worker's D1 commit a moment later).
fn pending_moves(s: &Stack, user_id: &str, n: usize) {
    s.d1_until(&format!("SELECT id FROM direct_key_moves WHERE user_id = '{user_id}' AND state = 'pending'"), |rows| rows.len() == n);
}

#[test]
fn fund_spend_and_reclaim_exactly_the_unspent_part() {
    let _serial = one_at_a_time();
    let s = stack();
    let (sub, token) = user(s, "10");

    let created = s.call("POST", "/api/openrouter-provision", &token, None);
    assert_eq!(created.status, 201, "{}", created.body);
    let secret = created.json()["key"].as_str().expect("the key, shown once").to_string();
    assert!(secret.starts_with("sk-or-v1-"));
    let hash = hash_of(s, &sub);
    let sealed = s.d1(&format!("SELECT ciphertext FROM direct_keys WHERE user_id = '{sub}'"));
    assert!(!sealed[0]["ciphertext"].as_str().unwrap().contains("sk-or"), "sealed at rest");
    let minted = upstream(s, &hash);
    assert_eq!((limit_micros(&minted), minted["include_byok_in_limit"].clone()), (0, json!(true)));
    let managed = s.d1(&format!("SELECT upstream_hash FROM upstream_keys WHERE user_id = '{sub}' AND status = 'active'"));
    assert!(managed.iter().all(|r| r["upstream_hash"] != hash.as_str()), "a key of its own, not the managed one");
    // Shown once: a second call answers the metadata only.
    let again = s.call("POST", "/api/openrouter-provision", &token, None);
    assert_eq!(again.status, 200, "{}", again.body);
    assert!(again.json().get("key").is_none() && !again.body.contains(&secret), "{}", again.body);
    assert_eq!(again.json()["id"], created.json()["id"]);

    // Fund $4: the wallet debited, the limit raised by exactly that; a retry
    // with the same Idempotency-Key moves nothing more.
    let funded = post(s, "/api/openrouter-provision/fund", &token, json!({"amount_usd": 4}), &[("Idempotency-Key", "fund-1")]);
    assert_eq!(funded.status, 200, "{}", funded.body);
    assert_eq!(funded.json()["move"]["replay"], false);
    let retried = post(s, "/api/openrouter-provision/fund", &token, json!({"amount_usd": 4}), &[("Idempotency-Key", "fund-1")]);
    assert_eq!((retried.status, retried.json()["move"]["replay"].clone()), (200, json!(true)), "{}", retried.body);
    assert_eq!(balance(s, &sub), 6_000_000);
    assert_eq!(limit_micros(&upstream(s, &hash)), 4000000);
    // More than is available: refused, nothing moved.
    let short = post(s, "/api/openrouter-provision/fund", &token, json!({"amount_usd": 6.5}), &[]);
    assert_eq!(short.status, 402, "{}", short.body);
    assert_eq!(short.json()["error"]["code"], "INSUFFICIENT_CREDITS");
    assert!(short.json()["error"]["message"].as_str().unwrap().contains("$6.00 is available"), "{}", short.body);
    assert_eq!(balance(s, &sub), 6_000_000);

    // Spend with the direct key, on OpenRouter itself (the mock): counted on that key.
    let m = marker("direct-spend");
    let chat = send(
        "POST",
        &format!("{}/api/v1/chat/completions", s.mock),
        &[("Authorization", &format!("Bearer {secret}")), ("Content-Type", "application/json")],
        Some(json!({"model": "openai/gpt-4o", "max_tokens": 50, "messages": [{"role": "user", "content": format!("{m} [[mock:tokens=40,byok=1]]")}]}).to_string().as_bytes()),
    );
    assert_eq!(chat.status, 200, "{}", chat.body);
    let spent = spent_micros(&upstream(s, &hash));
    assert!(spent > 0 && spent < 4_000_000, "spent {spent}");

    // Usage shows it as the direct key, from the upstream's counters.
    let usage = s.call("GET", "/me/usage", &token, None);
    assert_eq!(usage.status, 200, "{}", usage.body);
    let direct = &usage.json()["direct_key"];
    assert_eq!(direct["source"], "direct key");
    assert_eq!((direct["funded_micros"].as_i64(), direct["spent_micros"].as_i64()), (Some(4_000_000), Some(spent)), "{direct}");
    assert_eq!(direct["unspent_micros"].as_i64(), Some(4_000_000 - spent));
    assert_eq!(usage.json()["mtd_usage"]["total_requests"], 0, "no per-request rows for the direct key");

    // Reclaim everything unspent: exactly 4 − spent comes back, the limit is
    // what the key spent, and there is nothing left to reclaim.
    let reclaimed = post(s, "/api/openrouter-provision/reclaim", &token, json!({}), &[]);
    assert_eq!(reclaimed.status, 200, "{}", reclaimed.body);
    assert_eq!(reclaimed.json()["move"]["amount_micros"].as_i64(), Some(4_000_000 - spent));
    assert_eq!(balance(s, &sub), 10_000_000 - spent);
    assert_eq!(limit_micros(&upstream(s, &hash)), spent);
    let nothing = post(s, "/api/openrouter-provision/reclaim", &token, json!({}), &[]);
    assert_eq!(nothing.status, 400, "{}", nothing.body);

    // Fund $1 more, then revoke: the unspent dollar comes back, the key is disabled.
    assert_eq!(post(s, "/api/openrouter-provision/fund", &token, json!({"amount_usd": "1"}), &[]).status, 200);
    let revoked = s.call("DELETE", "/api/openrouter-provision", &token, None);
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(revoked.json()["move"]["amount_micros"], 1_000_000);
    assert_eq!(upstream(s, &hash)["disabled"], true);
    assert_eq!(balance(s, &sub), 10_000_000 - spent);
    assert_eq!(
        moves_in_ledger(s, &sub, 4),
        [("direct_key_fund", -4_000_000), ("direct_key_reclaim", 4_000_000 - spent), ("direct_key_fund", -1_000_000), ("direct_key_revoke", 1_000_000)]
            .map(|(k, a)| (k.to_string(), a))
    );
    assert_eq!(s.call("GET", "/api/openrouter-provision", &token, None).json()["exists"], false);
}

/// Funds of the whole balance sent at once (distinct Idempotency-Keys): the
/// wallet decides each in its own turn, so only what the balance covers
/// moves; the rest are refused, for good, and leave nothing pending.
#[test]
fn concurrent_funds_move_no_more_than_the_balance() {
    let _serial = one_at_a_time();
    let s = stack();
    let (sub, token, hash) = user_with_key(s, "10");

    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let sent: Vec<_> = (0..20)
            .map(|i| {
                let token = &token;
                scope.spawn(move || {
                    let idem = format!("race-{i}");
                    post(s, "/api/openrouter-provision/fund", token, json!({"amount_usd": 10}), &[("Idempotency-Key", &idem)]).status
                })
            })
            .collect();
        sent.into_iter().map(|h| h.join().expect("a fund request")).collect()
    });
    assert_eq!(statuses.iter().filter(|&&c| c == 200).count(), 1, "exactly one fund of the whole balance: {statuses:?}");
    assert_eq!(statuses.iter().filter(|&&c| c == 402).count(), 19, "the others refused: {statuses:?}");
    pending_moves(s, &sub, 0);
    assert_eq!(balance(s, &sub), 0);
    assert_eq!(moves_in_ledger(s, &sub, 1), [("direct_key_fund".to_string(), -10_000_000)]);
    assert_eq!(limit_micros(&upstream(s, &hash)), 10_000_000, "the key may spend what was funded, no more");

    // Reconciliation finds nothing to complete; a refused request retried
    // under its key stays refused, even once the credit is there.
    s.run_cron();
    assert_eq!((balance(s, &sub), limit_micros(&upstream(s, &hash))), (0, 10_000_000));
    s.credit(&sub, "10");
    let refused = statuses.iter().position(|&c| c == 402).expect("a refused request");
    let retried = post(s, "/api/openrouter-provision/fund", &token, json!({"amount_usd": 10}), &[("Idempotency-Key", &format!("race-{refused}"))]);
    assert_eq!(retried.status, 409, "{}", retried.body);
    assert_eq!(balance(s, &sub), 10_000_000);
}

/// A fund that died after writing its move, before the wallet debit (the row
/// written here as `fund` writes it), while the credit went elsewhere:
/// reconciliation's debit is refused by the wallet, and the move dropped
/// (nothing moved), not retried. Until then it raised nothing.
#[test]
fn a_pending_fund_the_wallet_no_longer_covers_is_dropped_by_reconciliation() {
    let _serial = one_at_a_time();
    let s = stack();
    let (sub, token, hash) = user_with_key(s, "10");
    let key = s.d1(&format!("SELECT id FROM direct_keys WHERE user_id = '{sub}'"))[0]["id"].as_str().expect("the key").to_string();
    s.d1(&format!(
        "INSERT INTO direct_key_moves (id, user_id, key_id, kind, amount_micros, state, created_at) VALUES ('dkm_crashed_{key}', '{sub}', '{key}', 'fund', 10000000, 'pending', 0)"
    ));
    assert_eq!(post(s, "/api/openrouter-provision/fund", &token, json!({"amount_usd": 10}), &[]).status, 200);
    assert_eq!(balance(s, &sub), 0);
    assert_eq!(limit_micros(&upstream(s, &hash)), 10_000_000, "a fund not debited yet is no funding");

    s.run_cron();
    pending_moves(s, &sub, 0);
    assert_eq!(balance(s, &sub), 0);
    assert_eq!(limit_micros(&upstream(s, &hash)), 10_000_000);
    assert_eq!(moves_in_ledger(s, &sub, 1), [("direct_key_fund".to_string(), -10_000_000)]);
}

#[test]
fn a_move_stopped_half_way_is_completed_by_reconciliation_exactly_once() {
    let _serial = one_at_a_time();
    let s = stack();
    let (sub, token, hash) = user_with_key(s, "10");

    // Fund $3, stopped after the wallet debit: the money left the wallet, the
    // limit is not raised yet, the move is pending.
    let stopped = post(s, "/api/openrouter-provision/fund", &token, json!({"amount_usd": 3}), &[STOP]);
    assert_eq!(stopped.status, 500, "{}", stopped.body);
    assert_eq!(balance(s, &sub), 7_000_000);
    assert_eq!(limit_micros(&upstream(s, &hash)), 0);
    pending_moves(s, &sub, 1);
    s.run_cron();
    assert_eq!(limit_micros(&upstream(s, &hash)), 3000000);
    pending_moves(s, &sub, 0);
    assert_eq!(balance(s, &sub), 7_000_000, "completed, not debited again");

    // Reclaim $1.25, stopped after the limit is lowered: the wallet is
    // credited by reconciliation, once.
    let stopped = post(s, "/api/openrouter-provision/reclaim", &token, json!({"amount_usd": 1.25}), &[STOP]);
    assert_eq!(stopped.status, 500, "{}", stopped.body);
    assert_eq!(limit_micros(&upstream(s, &hash)), 1750000);
    assert_eq!(balance(s, &sub), 7_000_000);
    s.run_cron();
    assert_eq!(balance(s, &sub), 8_250_000);
    pending_moves(s, &sub, 0);

    // Revoke: the unspent $1.75 comes back.
    let revoked = s.call("DELETE", "/api/openrouter-provision", &token, None);
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(balance(s, &sub), 10_000_000);

    // Another key, and a retried request (same Idempotency-Key) completing a
    // stopped reclaim itself, before any reconciliation.
    assert_eq!(s.call("POST", "/api/openrouter-provision", &token, None).status, 201);
    assert_eq!(post(s, "/api/openrouter-provision/fund", &token, json!({"amount_usd": 2}), &[]).status, 200);
    let idem = ("Idempotency-Key", "reclaim-1");
    assert_eq!(post(s, "/api/openrouter-provision/reclaim", &token, json!({"amount_usd": 2}), &[STOP, idem]).status, 500);
    assert_eq!(balance(s, &sub), 8_000_000);
    let retried = post(s, "/api/openrouter-provision/reclaim", &token, json!({"amount_usd": 2}), &[idem]);
    assert_eq!(retried.status, 200, "{}", retried.body);
    assert_eq!((retried.json()["move"]["replay"].clone(), retried.json()["move"]["state"].clone()), (json!(true), json!("done")));
    assert_eq!(balance(s, &sub), 10_000_000);
    s.run_cron();
    assert_eq!(balance(s, &sub), 10_000_000, "reconciliation found nothing left to do");
    let ledger = moves_in_ledger(s, &sub, 5);
    assert_eq!(ledger.len(), 5, "one ledger row per move: {ledger:?}");
    assert_eq!(ledger.iter().map(|(_, a)| a).sum::<i64>(), 0);
}

#[test]
fn a_revocation_stopped_half_way_returns_the_unspent_part_once() {
    let _serial = one_at_a_time();
    let s = stack();
    let (sub, token, hash) = user_with_key(s, "5");
    assert_eq!(post(s, "/api/openrouter-provision/fund", &token, json!({"amount_usd": 5}), &[]).status, 200);
    assert_eq!(balance(s, &sub), 0);
    let auth = format!("Bearer {token}");
    let stopped = send("DELETE", &format!("{}/api/openrouter-provision", s.base), &[("Authorization", &auth), STOP], None);
    assert_eq!(stopped.status, 500, "{}", stopped.body);
    assert_eq!(upstream(s, &hash)["disabled"], true);
    assert_eq!(limit_micros(&upstream(s, &hash)), 0);
    assert_eq!(balance(s, &sub), 0);
    // A new move on the revoked key is refused; reconciliation finishes the revocation.
    assert_eq!(post(s, "/api/openrouter-provision/fund", &token, json!({"amount_usd": 1}), &[]).status, 404);
    s.run_cron();
    assert_eq!(balance(s, &sub), 5_000_000);
    s.run_cron();
    assert_eq!(balance(s, &sub), 5_000_000);
    assert_eq!(moves_in_ledger(s, &sub, 2), [("direct_key_fund".to_string(), -5_000_000), ("direct_key_revoke".to_string(), 5_000_000)]);
}

#[test]
fn reconciliation_restores_the_limit_and_reports_spending_beyond_the_funding() {
    let _serial = one_at_a_time();
    let s = stack();
    let (sub, token) = user(s, "1");
    let created = s.call("POST", "/api/openrouter-provision", &token, None);
    let secret = created.json()["key"].as_str().unwrap().to_string();
    let hash = hash_of(s, &sub);
    assert_eq!(post(s, "/api/openrouter-provision/fund", &token, json!({"amount_usd": 0.00001}), &[]).status, 200);

    // The limit raised outside the gateway: reconciliation sets it back to the funding.
    let auth = format!("Bearer {}", mock_openrouter::DEFAULT_MANAGEMENT_KEY);
    let raised = send("PATCH", &format!("{}/keys/{hash}", s.mock), &[("Authorization", &auth), ("Content-Type", "application/json")], Some(br#"{"limit": 100}"#));
    assert_eq!(raised.status, 200, "{}", raised.body);
    // Spending past the funding (the mock, like a limit raised elsewhere, lets it through).
    let chat = send(
        "POST",
        &format!("{}/api/v1/chat/completions", s.mock),
        &[("Authorization", &format!("Bearer {secret}")), ("Content-Type", "application/json")],
        Some(json!({"model": "openai/gpt-4o", "max_tokens": 50, "messages": [{"role": "user", "content": "[[mock:tokens=40]]"}]}).to_string().as_bytes()),
    );
    assert_eq!(chat.status, 200, "{}", chat.body);
    let spent = spent_micros(&upstream(s, &hash));
    assert!(spent > 10, "spent {spent}");

    s.run_cron();
    assert_eq!(limit_micros(&upstream(s, &hash)), 10);
    let findings = s.admin("GET", "/admin/reconciliation", None).json()["data"].as_array().unwrap().clone();
    let mine: Vec<&Value> = findings.iter().filter(|f| f["user_id"] == sub.as_str() && f["kind"] == "direct_key_overspent").collect();
    assert_eq!(mine.len(), 1, "{findings:?}");
    assert_eq!((mine[0]["detail"]["funded_micros"].as_i64(), mine[0]["detail"]["spent_micros"].as_i64()), (Some(10), Some(spent)), "{}", mine[0]);
    s.run_cron();
    let again = s.admin("GET", "/admin/reconciliation", None).json()["data"].as_array().unwrap().iter().filter(|f| f["user_id"] == sub.as_str()).count();
    assert_eq!(again, 1, "recorded once");
    assert_eq!(balance(s, &sub), 999_990, "reconciliation moves no money for a finding");
}
