//! The auditor's keyless calls: paid with x402 from one dev account, and the
//! books of that payer's address account checked afterwards.

use super::{chat_body, read_or_walk_away, Rng};
use crate::Stack;
use std::time::{Duration, Instant};

/// A keyless call paid with an `exact` x402 payment for what the 402 asks:
/// streamed or not, sometimes abandoned, sometimes sent twice at once with
/// the same authorization (one is served, the other refused).
pub(super) fn x402_call(s: &Stack, rng: &mut Rng, payer: &crate::DevAccount) {
    use crate::x402::{encode, exact_payment, fresh_nonce, keyless_chat};
    let stream = rng.chance(30);
    let body = chat_body(rng, stream);
    let offer = keyless_chat(s, &body, &[]);
    if offer.status != 402 {
        return; // refused before any offer (e.g. a body the model cannot take)
    }
    let Some(amount) = offer.json()["accepts"][0]["amount"].as_str().and_then(|a| a.parse::<u128>().ok()) else { return };
    let header = encode(&exact_payment(&s.chain, payer, amount, crate::now_ms() / 1000 + 300, &fresh_nonce()));
    if !stream {
        let copies = if rng.chance(20) { 2 } else { 1 };
        std::thread::scope(|scope| {
            for _ in 0..copies {
                scope.spawn(|| keyless_chat(s, &body, &[("PAYMENT-SIGNATURE", &header)]));
            }
        });
        return;
    }
    let headers = [("PAYMENT-SIGNATURE", header.as_str()), ("Content-Type", "application/json")];
    read_or_walk_away(rng, crate::SseReader::open(&format!("{}/v1/chat/completions", s.base), &headers, body.to_string().as_bytes()));
}

/// The payer's address account once its payments are settled: Σ ledger ==
/// balance, no authorization credited twice, and the credits == the USDC
/// that left the payer's address. Returns what was credited.
pub(super) fn check_x402(s: &Stack, payer: &crate::DevAccount, payer_before: u128) -> Result<i64, String> {
    let account = format!("eth:{}", payer.address);
    let credited = || {
        let rows = s.d1(&format!("SELECT COALESCE(SUM(amount_micros), 0) AS total FROM credit_ledger WHERE user_id = '{account}' AND kind = 'x402_payment'"));
        rows[0]["total"].as_i64().unwrap_or(0)
    };
    if s.admin("GET", &format!("/admin/users/{account}"), None).status == 404 {
        return Ok(0); // no keyless call was drawn, or none was served
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let spent = loop {
        let spent = (payer_before - s.chain.usdc_balance(&payer.address)) as i64;
        let view = s.user(&account);
        let settled = view["open_holds"].as_array().is_none_or(Vec::is_empty) && view["pending_ledger_rows"].as_i64().unwrap_or(0) == 0;
        if (settled && credited() == spent) || Instant::now() > deadline {
            break spent;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut violations = Vec::new();
    let view = s.user(&account);
    if view["balance_micros"] != view["ledger_totals"]["net_micros"] {
        violations.push(format!("{account}: balance {} != Σ ledger {}", view["balance_micros"], view["ledger_totals"]["net_micros"]));
    }
    if view["balance_micros"].as_i64().is_some_and(|b| b < 0) {
        violations.push(format!("{account}: owes {} after every payment settled", view["balance_micros"]));
    }
    let credited = credited();
    if credited != spent {
        violations.push(format!("{account}: x402 credited {credited} != {spent} that left its address"));
    }
    let doubled = s.d1(&format!("SELECT reference FROM credit_ledger WHERE user_id = '{account}' GROUP BY reference HAVING COUNT(*) > 1"));
    if !doubled.is_empty() {
        violations.push(format!("{account}: credited more than once: {doubled:?}"));
    }
    match violations.is_empty() {
        true => Ok(credited),
        false => Err(violations.join("\n")),
    }
}
