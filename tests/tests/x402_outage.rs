//! A facilitator that cannot settle after the call was served (its /settle
//! down): the call's charge stands, the payment stays due as a debt of the
//! payer's address (a finding records it), further keyless calls from that
//! address are refused until it settles, and the wallet retries it with
//! backoff until the chain has it — credited once. Its own stack: the
//! outage switch is the facilitator's, shared by everything on the stack.

use integration_tests::x402::{decode, encode, exact_payment, exact_payment_to, fresh_nonce, keyless_chat, settle_outage, submit_exact};
use integration_tests::{marker, now_ms, start, Stack};
use serde_json::{json, Value};
use std::sync::OnceLock;

fn stack() -> &'static Stack {
    static S: OnceLock<Stack> = OnceLock::new();
    S.get_or_init(|| start(&[]))
}

/// What a payment for `body` must authorize (the offer's amount: its hold).
fn asked(s: &Stack, body: &Value) -> u128 {
    keyless_chat(s, body, &[]).json()["accepts"][0]["amount"].as_str().expect("amount").parse().expect("base units")
}

/// The facilitator's outage switch is the stack's: one test at a time.
fn switch() -> std::sync::MutexGuard<'static, ()> {
    static SWITCH: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SWITCH.lock().unwrap_or_else(|e| e.into_inner())
}

/// The user view once `check` holds: the wallet's retries back off (5 s,
/// then 10 s, …), so this waits up to a minute.
fn retried(s: &Stack, account: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let user = s.user(account);
        if check(&user) {
            return user;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}: {user:#}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

fn body(m: &str) -> Value {
    json!({"model": "openai/gpt-4o-mini", "max_tokens": 100, "messages": [{"role": "user", "content": format!("{m} [[mock:tokens=20]]")}]})
}

#[test]
fn a_settlement_outage_leaves_a_debt_that_refuses_the_address_until_the_retry_settles_it() {
    let _one_at_a_time = switch();
    let s = stack();
    let payer = &s.chain.accounts[1];
    let account = format!("eth:{}", payer.address);
    let m = marker("outage");
    let hold = asked(s, &body(&m));
    let before = s.chain.usdc_balance(&payer.address);
    let pay = |m: &str| {
        let header = encode(&exact_payment(&s.chain, payer, asked(s, &body(m)), now_ms() / 1000 + 300, &fresh_nonce()));
        keyless_chat(s, &body(m), &[("PAYMENT-SIGNATURE", &header)])
    };

    settle_outage(s.x402_facilitator(), true);
    let served = pay(&m);
    assert_eq!(served.status, 200, "the call was verified and served: {}", served.body);
    let receipt = decode(served.header("PAYMENT-RESPONSE").expect("the settlement's outcome"));
    assert_eq!(receipt["success"], false, "{receipt:#}");
    // The charge stands without the payment: the address owes it.
    let owing = s.settled_user(&account, 1);
    let price = owing["usage_totals"]["price_micros"].as_i64().unwrap_or_else(|| panic!("{owing:#}"));
    assert_eq!(owing["balance_micros"].as_i64(), Some(-price), "{owing:#}");
    assert_eq!(owing["ledger_totals"]["net_micros"], owing["balance_micros"]);
    assert_eq!(s.chain.usdc_balance(&payer.address), before, "nothing moved on chain");
    let findings = s.d1_until(&format!("SELECT kind FROM reconciliation_findings WHERE user_id = '{account}'"), |rows| !rows.is_empty());
    assert_eq!(findings, vec![json!({"kind": "x402_settlement_failed"})]);

    // Another keyless call from the debtor is refused before the upstream.
    let m2 = marker("outage-refused");
    let refused = pay(&m2);
    assert_eq!((refused.status, refused.header("X-Dexto-Error-Code")), (402, Some("x402_debt")), "{}", refused.body);
    assert!(refused.json()["error"].as_str().is_some_and(|e| e.contains("could not be settled")), "{}", refused.body);
    assert_eq!(s.upstream_calls(&m2), 0);

    // The facilitator is back: the wallet's retry settles the payment, once.
    settle_outage(s.x402_facilitator(), false);
    let paid = retried(s, &account, "the retried settlement", |u| u["balance_micros"].as_i64().is_some_and(|b| b >= 0));
    assert_eq!(paid["balance_micros"].as_i64(), Some(hold as i64 - price));
    assert_eq!(paid["ledger_totals"]["net_micros"], paid["balance_micros"]);
    assert_eq!(paid["recent_ledger"].as_array().unwrap().iter().filter(|e| e["kind"] == "x402_payment").count(), 1);
    assert_eq!(s.chain.usdc_balance(&payer.address), before - hold);
    let m3 = marker("outage-cleared");
    assert_eq!(pay(&m3).status, 200, "the address may call again");
    assert_eq!(s.upstream_calls(&m3), 1);
}

/// A payment whose settlement went through without the wallet booking it
/// (the object died after /settle; here: the authorization submitted by
/// someone else while the facilitator was down) is found on chain by the
/// retry and credited once; a nonce the payer spent on another transfer is
/// not taken for a payment, and the debt stays.
#[test]
fn a_retry_credits_an_authorization_the_chain_shows_paid_and_never_one_spent_elsewhere() {
    let _one_at_a_time = switch();
    let s = stack();
    let payer = &s.chain.accounts[2];
    let account = format!("eth:{}", payer.address);
    let m = marker("unbooked");
    let hold = asked(s, &body(&m));
    let payment = exact_payment(&s.chain, payer, hold, now_ms() / 1000 + 300, &fresh_nonce());
    let before = s.chain.usdc_balance(&payer.address);
    settle_outage(s.x402_facilitator(), true);
    let served = keyless_chat(s, &body(&m), &[("PAYMENT-SIGNATURE", &encode(&payment))]);
    assert_eq!(served.status, 200, "{}", served.body);
    let owing = s.settled_user(&account, 1);
    assert!(owing["balance_micros"].as_i64().is_some_and(|b| b < 0), "{owing:#}");
    submit_exact(&s.chain, &payment, &s.chain.accounts[0].address);
    assert_eq!(s.chain.usdc_balance(&payer.address), before - hold, "the treasury has it now");
    settle_outage(s.x402_facilitator(), false);
    let paid = retried(s, &account, "the retry finding the payment on chain", |u| u["balance_micros"].as_i64().is_some_and(|b| b >= 0));
    let price = paid["usage_totals"]["price_micros"].as_i64().unwrap();
    assert_eq!(paid["balance_micros"].as_i64(), Some(hold as i64 - price));
    assert_eq!(paid["recent_ledger"].as_array().unwrap().iter().filter(|e| e["kind"] == "x402_payment").count(), 1);
    assert_eq!(s.chain.usdc_balance(&payer.address), before - hold, "moved once");

    // The payer spends the next payment's nonce on a transfer to itself.
    let cheat = &s.chain.accounts[3];
    let cheat_account = format!("eth:{}", cheat.address);
    let m2 = marker("front-run");
    let nonce = fresh_nonce();
    let payment = exact_payment(&s.chain, cheat, asked(s, &body(&m2)), now_ms() / 1000 + 300, &nonce);
    settle_outage(s.x402_facilitator(), true);
    let served = keyless_chat(s, &body(&m2), &[("PAYMENT-SIGNATURE", &encode(&payment))]);
    assert_eq!(served.status, 200, "{}", served.body);
    let request_id = served.header("X-Dexto-Request-ID").expect("request id").to_string();
    s.settled_user(&cheat_account, 1);
    submit_exact(&s.chain, &exact_payment_to(&s.chain, cheat, &s.chain.accounts[4].address, 1, 99_999_999_999, &nonce), &cheat.address);
    settle_outage(s.x402_facilitator(), false);
    // The retry fails (the nonce is used) and the chain shows no payment to us.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !s.logs().lines().any(|l| l.contains("x402.settle_failed") && l.contains(&request_id) && l.contains("already_used")) {
        assert!(std::time::Instant::now() < deadline, "no retry refused for the used nonce");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let owing = s.user(&cheat_account);
    assert!(owing["balance_micros"].as_i64().is_some_and(|b| b < 0), "still owed: {owing:#}");
    let m3 = marker("front-run-refused");
    let refused = keyless_chat(s, &body(&m3), &[("PAYMENT-SIGNATURE", &encode(&exact_payment(&s.chain, cheat, asked(s, &body(&m3)), now_ms() / 1000 + 300, &fresh_nonce())))]);
    assert_eq!(refused.header("X-Dexto-Error-Code"), Some("x402_debt"), "{}", refused.body);
    assert_eq!(s.upstream_calls(&m3), 0);
}
