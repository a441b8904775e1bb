//! Keyless calls are rate-limited per payer address (X402_RATE_LIMIT_PER_MINUTE,
//! in the payer's wallet object, before its hold) and per client IP (the
//! X402_PER_IP binding, before the facilitator is asked), and an address
//! account's spend caps bound them like any account's. A refused call reaches
//! no upstream and moves no USDC. Its own stack: one paid call a minute per
//! payer, and every test here comes from 127.0.0.1.

use integration_tests::x402::{encode, exact_payment, fresh_nonce, keyless_chat};
use dexto_shared::chain::testing::TestWallet;
use integration_tests::siwe::sign_in;
use integration_tests::{marker, now_ms, start, DevAccount, Stack};
use serde_json::{json, Value};
use std::sync::OnceLock;

fn stack() -> &'static Stack {
    static S: OnceLock<Stack> = OnceLock::new();
    S.get_or_init(|| start(&[("X402_RATE_LIMIT_PER_MINUTE", "1")]))
}

/// What a payment for `body` must authorize (the offer's amount: its hold).
fn asked(s: &Stack, body: &Value) -> u128 {
    keyless_chat(s, body, &[]).json()["accepts"][0]["amount"].as_str().expect("amount").parse().expect("base units")
}

fn body(m: &str) -> Value {
    json!({"model": "openai/gpt-4o-mini", "max_tokens": 100, "messages": [{"role": "user", "content": format!("{m} [[mock:tokens=20]]")}]})
}

/// One test, in order: the limits share this stack's client IP.
#[test]
fn keyless_calls_are_bounded_by_caps_then_per_payer_then_per_ip_and_a_refused_one_moves_nothing() {
    let s = stack();
    let m = marker("limits");
    let hold = asked(s, &body(&m));
    let pay = |payer: &DevAccount, m: &str| {
        let header = encode(&exact_payment(&s.chain, payer, asked(s, &body(m)), now_ms() / 1000 + 300, &fresh_nonce()));
        keyless_chat(s, &body(m), &[("PAYMENT-SIGNATURE", &header)])
    };

    // An address account's spend cap (set by an operator on the account a
    // sign-in with that address opened) bounds its keyless calls.
    let capped = &s.chain.accounts[3];
    let session = sign_in(s, &TestWallet::from_hex(&capped.private_key));
    let account = session["user"]["id"].as_str().expect("account").to_string();
    assert_eq!(account, format!("eth:{}", capped.address));
    let cap = s.admin("PUT", &format!("/admin/users/{account}/caps"), Some(json!({"window": "daily", "limit_usd": "0.000001"})));
    assert_eq!(cap.status, 200, "{}", cap.body);
    let (m_cap, before) = (marker("limits-cap"), s.chain.usdc_balance(&capped.address));
    let r = pay(capped, &m_cap);
    assert_eq!((r.status, r.header("X-Dexto-Error-Code")), (403, Some("spend_cap_reached")), "{}", r.body);
    assert_eq!(s.upstream_calls(&m_cap), 0);
    assert_eq!(s.chain.usdc_balance(&capped.address), before);

    // One paid call a minute per payer on this stack.
    let payer = &s.chain.accounts[2];
    let before = s.chain.usdc_balance(&payer.address);
    assert_eq!(pay(payer, &m).status, 200);
    let m2 = marker("limits-payer");
    let limited = pay(payer, &m2);
    assert_eq!((limited.status, limited.header("X-Dexto-Error-Code")), (429, Some("rate_limited")), "{}", limited.body);
    assert!(limited.header("Retry-After").is_some());
    assert_eq!(s.upstream_calls(&m2), 0);
    assert_eq!(s.chain.usdc_balance(&payer.address), before - hold, "only the served call was paid");

    // Per IP: unpaid probes count too (120 a minute, wrangler.toml); bounded
    // so the test always ends. The limiter's minutes are wall-clock aligned:
    // a minute may turn just before the 120th call would be refused, and the
    // 121st after it is the first refused, so the bound is over twice the limit.
    let m3 = marker("limits-ip");
    let mut refused = None;
    for _ in 0..400 {
        let r = keyless_chat(s, &body(&m3), &[]);
        match r.status {
            402 => continue,
            429 => {
                refused = Some(r);
                break;
            }
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    let refused = refused.expect("a flood of keyless calls from one IP is throttled");
    assert_eq!(refused.header("Retry-After"), Some("60"));
    assert_eq!(s.upstream_calls(&m3), 0);
}
