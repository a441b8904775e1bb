//! A facilitator that cannot settle after the call was served (its /settle
//! down): the call's charge stands, the payment stays due as a debt of the
//! payer's address (a finding records it), further keyless calls from that
//! address are refused until it settles, and the wallet retries it with
//! backoff until the chain has it — credited once. Its own stack: the
//! outage switch is the facilitator's, shared by everything on the stack.

use integration_tests::x402::{decode, encode, exact_payment, fresh_nonce, keyless_chat, settle_outage};
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

fn body(m: &str) -> Value {
    json!({"model": "openai/gpt-4o-mini", "max_tokens": 100, "messages": [{"role": "user", "content": format!("{m} [[mock:tokens=20]]")}]})
}

#[test]
fn a_settlement_outage_leaves_a_debt_that_refuses_the_address_until_the_retry_settles_it() {
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
    let paid = s.eventually_user(&account, "the retried settlement", |u| u["balance_micros"].as_i64().is_some_and(|b| b >= 0));
    assert_eq!(paid["balance_micros"].as_i64(), Some(hold as i64 - price));
    assert_eq!(paid["ledger_totals"]["net_micros"], paid["balance_micros"]);
    assert_eq!(paid["recent_ledger"].as_array().unwrap().iter().filter(|e| e["kind"] == "x402_payment").count(), 1);
    assert_eq!(s.chain.usdc_balance(&payer.address), before - hold);
    let m3 = marker("outage-cleared");
    assert_eq!(pay(&m3).status, 200, "the address may call again");
    assert_eq!(s.upstream_calls(&m3), 1);
}
