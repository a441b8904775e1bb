//! Keyless calls paid per request with x402 v2, through the whole stack: the
//! 402 offer sized by the request's hold, the official client
//! (@x402/fetch, tools/x402/pay.mjs) paying it on the stack's local chain
//! through the stack's facilitator (@x402/core + @x402/evm), the call booked
//! on the payer's address account, and every refusal before the upstream.
//! Balances are read on the chain; the books in the wallet and D1.

use integration_tests::chain::{word_address, word_u256, TRANSFER_EVENT};
use integration_tests::x402::{decode, encode, exact_payment, fresh_nonce, keyless_chat, pay};
use dexto_shared::chain::testing::TestWallet;
use integration_tests::siwe::sign_in;
use integration_tests::{marker, now_ms, DevAccount, Stack};
use serde_json::{json, Value};

/// The shared stack, its mock enforcing upstream key limits as OpenRouter
/// does: a payer's account has (next to) no balance, so its key must be
/// given room for each keyless hold before the call goes upstream.
fn stack() -> &'static Stack {
    static ENFORCING: std::sync::Once = std::sync::Once::new();
    let s = integration_tests::stack();
    ENFORCING.call_once(|| s.mock_faults(json!({"enforce_key_limits": true})));
    s
}

fn body(m: &str, max_tokens: u64) -> Value {
    json!({"model": "openai/gpt-4o-mini", "max_tokens": max_tokens, "messages": [{"role": "user", "content": format!("{m} [[mock:tokens=20]]")}]})
}

/// The offer's amount (base units) for `body`: what a payment must authorize.
fn asked(s: &Stack, body: &Value) -> u128 {
    let r = keyless_chat(s, body, &[]);
    assert_eq!(r.status, 402, "{}", r.body);
    r.json()["accepts"][0]["amount"].as_str().expect("amount").parse().expect("base units")
}

fn account_of(payer: &DevAccount) -> String {
    format!("eth:{}", payer.address)
}

/// The address account once `n` calls are settled and their payments
/// credited: no open hold, Σ ledger == balance, and a balance that is not a
/// debt. (Between a charge and its payment's settlement the balance is
/// briefly below zero: that is the payer's debt while the chain settles.)
fn books(s: &Stack, account: &str, n: u64) -> Value {
    let user = s.eventually_user(account, "calls settled and paid", |u| {
        u["usage_totals"]["requests"] == n && u["balance_micros"].as_i64().is_some_and(|b| b >= 0) && u["open_holds"] == json!([])
    });
    assert_eq!(user["ledger_totals"]["net_micros"], user["balance_micros"], "Σ ledger == balance: {user:#}");
    user
}

fn same_address(a: &Value, b: &str) -> bool {
    a.as_str().is_some_and(|a| a.eq_ignore_ascii_case(b))
}

#[test]
fn a_call_without_a_key_is_offered_x402_for_its_hold_and_reaches_no_upstream() {
    let s = stack();
    let m = marker("offer");
    let r = keyless_chat(s, &body(&m, 100), &[]);
    assert_eq!(r.status, 402, "{}", r.body);
    let required = decode(r.header("PAYMENT-REQUIRED").expect("PAYMENT-REQUIRED header"));
    assert_eq!(required, r.json(), "the header and the body are the same PaymentRequired");
    assert_eq!(required["x402Version"], 2);
    assert!(required["error"].as_str().is_some_and(|e| e.contains("PAYMENT-SIGNATURE") && e.contains("DEXTO_API_KEY")), "{required:#}");
    let accepts = required["accepts"].as_array().expect("accepts");
    let schemes: Vec<&str> = accepts.iter().map(|a| a["scheme"].as_str().expect("scheme")).collect();
    assert_eq!(schemes, ["upto", "exact"]);
    for a in accepts {
        assert_eq!(a["network"], format!("eip155:{}", s.chain.chain_id));
        assert!(same_address(&a["asset"], &s.chain.token) && same_address(&a["payTo"], &s.chain.treasury), "{a:#}");
        assert_eq!(a["amount"], accepts[0]["amount"], "both schemes ask the same bound");
        assert!(a["maxTimeoutSeconds"].as_u64().is_some_and(|t| t > 0 && t <= 600), "{a:#}");
    }
    assert!(same_address(&accepts[0]["extra"]["facilitatorAddress"], &s.chain.x402_facilitator.signer), "{:#}", accepts[0]);
    assert_eq!(accepts[1]["extra"], json!({"name": "USD Coin (Dexto local)", "version": "2"}));
    // The amount is the hold: it grows with the output the request may produce.
    let small: u128 = accepts[0]["amount"].as_str().unwrap().parse().unwrap();
    assert!(small > 0);
    assert!(asked(s, &body(&m, 1000)) > small);
    assert_eq!(s.upstream_calls(&m), 0);
    // A wrong key stays a wrong key: x402 is offered only to calls with none.
    let wrong = s.chat("dx_live_notakey", &body(&m, 100));
    assert_eq!(wrong.status, 401, "{}", wrong.body);
}

#[test]
fn the_official_client_pays_exact_and_the_payer_account_keeps_the_surplus() {
    let s = stack();
    let m = marker("exact");
    let payer = &s.chain.accounts[0];
    let before = s.chain.usdc_balance(&payer.address);
    let url = format!("{}/v1/chat/completions", s.base);
    let paid = pay(&url, &payer.private_key, &["--method", "POST", "--body", &body(&m, 100).to_string()]);
    assert_eq!(paid["status"], 200, "{paid:#}");
    assert_eq!(paid["body"]["object"], "chat.completion", "{paid:#}");
    let receipt = &paid["payment_response"];
    assert_eq!(receipt["success"], true, "{paid:#}");
    assert!(same_address(&receipt["payer"], &payer.address), "{receipt:#}");
    let amount: u128 = receipt["amount"].as_str().expect("amount").parse().expect("base units");
    assert_eq!(amount, asked(s, &body(&m, 100)), "exact settles the whole authorization: the hold");
    // On chain: exactly that amount left the payer, and reached the treasury in the receipt's transaction.
    assert_eq!(s.chain.usdc_balance(&payer.address), before - amount);
    let tx = s.chain.receipt(receipt["transaction"].as_str().expect("transaction"));
    let transfer = json!([TRANSFER_EVENT, format!("0x{}", word_address(&payer.address)), format!("0x{}", word_address(&s.chain.treasury))]);
    assert!(
        tx["logs"].as_array().expect("logs").iter().any(|l| l["topics"] == transfer && l["data"] == format!("0x{}", word_u256(amount))),
        "no Transfer of {amount} from the payer to the treasury in {tx:#}"
    );
    assert_eq!(s.upstream_calls(&m), 1);
    // The books of the payer's address account: the payment credited, the
    // price debited, the surplus kept as credit; Σ ledger == balance.
    let user = books(s, &account_of(payer), 1);
    let ledger = user["recent_ledger"].as_array().expect("ledger");
    let credit = ledger.iter().find(|e| e["kind"] == "x402_payment").expect("the payment's credit");
    let debit = ledger.iter().find(|e| e["kind"] == "usage").expect("the usage debit");
    assert_eq!(credit["amount_micros"].as_i64(), Some(amount as i64));
    let price = -debit["amount_micros"].as_i64().expect("price");
    assert!(price > 0 && price < amount as i64, "price {price} within the hold {amount}");
    assert_eq!(user["balance_micros"].as_i64(), Some(amount as i64 - price));
    let usage = s.d1(&format!("SELECT key_id, user_price_micros FROM usage_ledger WHERE user_id = '{}'", account_of(payer)));
    assert_eq!(usage, vec![json!({"key_id": "x402", "user_price_micros": price})]);
    let claims = s.d1(&format!("SELECT reference FROM x402_claims WHERE user_id = '{}'", account_of(payer)));
    assert_eq!(claims.len(), 1, "the authorization is claimed for the account it paid for: {claims:?}");
    assert!(claims[0]["reference"].as_str().is_some_and(|r| r.starts_with(&format!("x402:exact:{}:", payer.address.to_lowercase()))), "{claims:?}");

    // The settlement is a transfer to the treasury from a linked address, but
    // no top-up: neither the chain scan nor a confirm credits it again.
    s.chain.mine(64);
    s.run_cron();
    let session = sign_in(s, &TestWallet::from_hex(&payer.private_key));
    let token = session["access_token"].as_str().expect("session");
    let confirm = integration_tests::siwe::post(s, "/api/billing/crypto/confirm", &json!({"tx_hash": receipt["transaction"]}), Some(token));
    assert_eq!(confirm.status, 400, "{}", confirm.body);
    assert!(confirm.json()["error"]["message"].as_str().is_some_and(|m| m.contains("x402")), "{}", confirm.body);
    let after = s.user(&account_of(payer));
    assert_eq!(after["balance_micros"], user["balance_micros"], "credited once: {after:#}");
    assert!(after["recent_ledger"].as_array().unwrap().iter().all(|e| e["kind"] != "crypto_topup"), "{after:#}");
}

#[test]
fn payments_that_cannot_pay_are_refused_with_the_reason_before_any_upstream_call() {
    let s = stack();
    let m = marker("refusals");
    let b = body(&m, 100);
    let hold = asked(s, &b);
    let payer = &s.chain.accounts[1];
    let later = now_ms() / 1000 + 300;
    let refused = |payment: &Value| {
        let r = keyless_chat(s, &b, &[("PAYMENT-SIGNATURE", &encode(payment))]);
        assert_eq!(r.status, 402, "{}", r.body);
        assert_eq!(decode(r.header("PAYMENT-REQUIRED").expect("offered again"))["accepts"][0]["amount"], hold.to_string());
        r.header("X-Dexto-Error-Code").expect("code").to_string()
    };
    let mut forged = exact_payment(&s.chain, payer, hold, later, &fresh_nonce());
    forged["payload"]["authorization"]["value"] = json!((hold * 10).to_string()); // signed for less
    assert_eq!(refused(&forged), "x402_invalid");
    assert_eq!(refused(&exact_payment(&s.chain, payer, hold - 1, later, &fresh_nonce())), "x402_amount_too_low");
    assert_eq!(refused(&exact_payment(&s.chain, payer, hold, now_ms() / 1000 + 5, &fresh_nonce())), "x402_expired");
    let mut elsewhere = exact_payment(&s.chain, payer, hold, later, &fresh_nonce());
    elsewhere["accepted"]["network"] = json!("eip155:1");
    assert_eq!(refused(&elsewhere), "x402_wrong_network");
    // Signed by an account that holds no USDC (it moved its balance away).
    let broke = &s.chain.accounts[4];
    s.chain.usdc_transfer(&broke.address, &s.chain.accounts[3].address, s.chain.usdc_balance(&broke.address));
    assert_eq!(refused(&exact_payment(&s.chain, broke, hold, later, &fresh_nonce())), "x402_invalid");
    let garbage = keyless_chat(s, &b, &[("PAYMENT-SIGNATURE", "not base64 at all")]);
    assert_eq!((garbage.status, garbage.header("X-Dexto-Error-Code")), (402, Some("x402_malformed")));
    assert_eq!(s.upstream_calls(&m), 0, "no refused payment reached the upstream");
    // A used authorization is refused on its second presentation.
    let once = exact_payment(&s.chain, payer, hold, later, &fresh_nonce());
    assert_eq!(keyless_chat(s, &b, &[("PAYMENT-SIGNATURE", &encode(&once))]).status, 200);
    assert_eq!(refused(&once), "x402_invalid", "the chain has used its nonce");
    assert_eq!(s.upstream_calls(&m), 1);
}

#[test]
fn concurrent_retries_of_one_authorization_are_served_and_settled_once() {
    let s = stack();
    let m = marker("retries");
    let b = body(&m, 100);
    let hold = asked(s, &b);
    let payer = &s.chain.accounts[2];
    let before = s.chain.usdc_balance(&payer.address);
    let header = encode(&exact_payment(&s.chain, payer, hold, now_ms() / 1000 + 300, &fresh_nonce()));
    let statuses: Vec<(u16, Option<String>)> = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| keyless_chat(s, &b, &[("PAYMENT-SIGNATURE", &header)])))
            .collect();
        calls.into_iter().map(|c| c.join().expect("call")).map(|r| (r.status, r.header("X-Dexto-Error-Code").map(str::to_string))).collect()
    });
    assert_eq!(statuses.iter().filter(|(st, _)| *st == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|(st, code)| *st == 200 || (*st == 402 && matches!(code.as_deref(), Some("x402_replayed" | "x402_invalid")))), "{statuses:?}");
    assert_eq!(s.upstream_calls(&m), 1);
    let user = books(s, &account_of(payer), 1);
    assert_eq!(user["recent_ledger"].as_array().unwrap().iter().filter(|e| e["kind"] == "x402_payment").count(), 1);
    assert_eq!(s.chain.usdc_balance(&payer.address), before - hold);
}

#[test]
fn a_stream_the_client_drops_is_charged_for_what_was_delivered_and_its_payment_settles() {
    let s = stack();
    let m = marker("dropped");
    let b = json!({"model": "openai/gpt-4o-mini", "max_tokens": 400, "stream": true,
        "messages": [{"role": "user", "content": format!("{m} [[mock:tokens=300,chunk_delay_ms=20]]")}]});
    let hold = asked(s, &b);
    let payer = &s.chain.accounts[3];
    let header = encode(&exact_payment(&s.chain, payer, hold, now_ms() / 1000 + 300, &fresh_nonce()));
    let mut sse = integration_tests::SseReader::open(
        &format!("{}/v1/chat/completions", s.base),
        &[("PAYMENT-SIGNATURE", &header), ("Content-Type", "application/json")],
        b.to_string().as_bytes(),
    );
    for _ in 0..3 {
        sse.next_event().expect("an event before the drop");
    }
    drop(sse);
    let account = account_of(payer);
    s.eventually_user(&account, "the payment settled", |u| u["recent_ledger"].as_array().is_some_and(|l| l.iter().any(|e| e["kind"] == "x402_payment")));
    let user = books(s, &account, 1);
    let ledger = user["recent_ledger"].as_array().unwrap();
    let price = -ledger.iter().find(|e| e["kind"] == "usage").expect("usage")["amount_micros"].as_i64().unwrap();
    assert!(price > 0 && (price as u128) < hold, "a partial stream is charged part of its hold: {price} of {hold}");
    assert_eq!(user["balance_micros"].as_i64(), Some(hold as i64 - price));
    let cancelled = s.d1(&format!("SELECT cancelled FROM usage_ledger WHERE user_id = '{account}'"));
    assert_eq!(cancelled, vec![json!({"cancelled": 1})]);
}

#[test]
fn upto_is_offered_and_signed_by_the_official_client_and_refused_at_the_local_facilitator_boundary() {
    // The local chain has neither Permit2 nor x402's upto proxy (no npm
    // package ships the proxy's bytecode): its facilitator cannot settle
    // upto, so it refuses the payment at /verify, and the call never runs.
    let s = stack();
    let m = marker("upto");
    let payer = &s.chain.accounts[1];
    let url = format!("{}/v1/chat/completions", s.base);
    let paid = pay(&url, &payer.private_key, &["--scheme", "upto", "--method", "POST", "--body", &body(&m, 100).to_string()]);
    assert_eq!(paid["status"], 402, "{paid:#}");
    assert!(paid["body"]["error"].as_str().is_some_and(|e| e.contains("unsupported_scheme")), "{paid:#}");
    assert_eq!(s.upstream_calls(&m), 0);
}

#[test]
fn the_catalogue_says_which_models_take_x402_and_how_to_pay() {
    let s = stack();
    let models = s.models(None).json();
    let first = &models["data"][0];
    assert_eq!(first["x402"], true, "{first:#}");
    assert!(models["x402"]["how"].as_str().is_some_and(|h| h.contains("PAYMENT-SIGNATURE")), "{:#}", models["x402"]);
    assert_eq!(models["x402"]["network"], format!("eip155:{}", s.chain.chain_id));
}
