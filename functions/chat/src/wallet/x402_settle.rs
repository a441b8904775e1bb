//! Settling keyless calls' x402 payments with the facilitator, after their
//! charge (docs/ARCHITECTURE.md, "Keyless calls paid with x402"). The charge's
//! settlement made the payment due in its own transaction; here it is sent to
//! the facilitator's `/settle` — by the exchange itself for a non-streamed
//! reply (its `PAYMENT-RESPONSE`), else by the projection step after any
//! settlement and the alarm's retries — and the credit of what moved is
//! booked together with the payment's `settled` state, once (its reference
//! is the authorization's). A failure leaves it `failed`: a debt of the payer
//! that refuses its further keyless calls, with a finding, retried with
//! backoff until the authorization expires. And before a keyless call goes
//! upstream, the account's upstream key is given room for its hold.

use super::ledger::{Change, Ledger};
use super::store::PaymentRow;
use crate::x402::facilitator::Facilitator;
use dexto_shared::http::now_ms;
use dexto_shared::money::Micros;
use dexto_shared::chain::erc20::paid_by_authorization;
use dexto_shared::chain::Address;
use dexto_shared::evm_rpc::{ChainConfig, Rpc};
use dexto_shared::x402::{Authorized, Receipt, Scheme};
use serde_json::json;

/// Settles the payment `reference` now (the non-stream exchange, before
/// its reply), or waits for the settlement already under way. The receipt
/// either way (`success: false` if it failed: the retries take over).
pub async fn settle_now(ledger: &Ledger, reference: &str) -> Option<Receipt> {
    for _ in 0..WAIT_ROUNDS {
        match settle_one(ledger, reference).await {
            Attempt::Busy => worker::Delay::from(std::time::Duration::from_millis(WAIT_MS)).await,
            Attempt::Done(result) => return result.ok().or_else(|| failed_receipt(ledger, reference)),
        }
    }
    failed_receipt(ledger, reference)
}

/// How long `settle_now` waits for a settlement another task is making.
const WAIT_MS: u64 = 50;
const WAIT_ROUNDS: usize = 600;

fn failed_receipt(ledger: &Ledger, reference: &str) -> Option<Receipt> {
    let payment = ledger.store().x402_payment(reference).ok().flatten()?.authorized().ok()?;
    Some(Receipt::of(&payment, false, "", Micros::ZERO))
}

/// `settle_waiting` as the ledger's projection step (`ledger::Step`).
pub fn step(ledger: &Ledger) -> std::pin::Pin<Box<dyn std::future::Future<Output = worker::Result<()>> + '_>> {
    Box::pin(settle_waiting(ledger))
}

/// The projection step: every payment still waiting (due, or failing and
/// not past its backoff); one another task is settling is left to it. Err
/// when any failed, for the step's backoff.
pub async fn settle_waiting(ledger: &Ledger) -> worker::Result<()> {
    let store = ledger.store();
    let rows = store.x402_unsettled()?;
    let mut failures = 0;
    for row in &rows {
        if let Attempt::Done(Err(_)) = settle_one(ledger, &row.reference).await {
            failures += 1;
        }
    }
    if rows.is_empty() {
        ledger.x402_waiting.set(Some(false));
    }
    let _ = store.x402_prune(now_ms() / 1000);
    match failures {
        0 => Ok(()),
        n => Err(format!("{n} x402 settlement(s) failed").into()),
    }
}

enum Attempt {
    /// Another task of this object is settling it.
    Busy,
    Done(Result<Receipt, String>),
}

/// One payment, by one task at a time: the row is read after the guard is
/// taken, so a payment settled meanwhile is answered from its record.
async fn settle_one(ledger: &Ledger, reference: &str) -> Attempt {
    if !ledger.x402_settling.borrow_mut().insert(reference.to_string()) {
        return Attempt::Busy;
    }
    let result = match ledger.store().x402_payment(reference) {
        Ok(Some(row)) if row.state == "settled" => settled_receipt(&row),
        Ok(Some(row)) => attempt(ledger, &row).await,
        Ok(None) => Err("no such payment".into()),
        Err(e) => Err(e.to_string()),
    };
    ledger.x402_settling.borrow_mut().remove(reference);
    Attempt::Done(result)
}

fn settled_receipt(row: &PaymentRow) -> Result<Receipt, String> {
    let payment = row.authorized().map_err(|e| e.to_string())?;
    let amount = Micros(row.amount.unwrap_or(0));
    Ok(Receipt::of(&payment, true, row.tx.as_deref().unwrap_or_default(), amount))
}

async fn attempt(ledger: &Ledger, row: &PaymentRow) -> Result<Receipt, String> {
    if !matches!(row.state.as_str(), "due" | "failed") {
        return Err(format!("payment is {}, not due", row.state));
    }
    let payment = row.authorized().map_err(|e| e.to_string())?;
    let amount = Micros(row.amount.unwrap_or(0));
    let settled = match amount {
        // `upto` for a free request: nothing moves.
        Micros::ZERO => Ok(Receipt::of(&payment, true, "", amount)),
        _ => match Facilitator::from_env(&ledger.env) {
            Some(facilitator) => facilitator.settle(&payment, amount).await,
            None => Err("X402_FACILITATOR_URL is not configured".into()),
        },
    };
    match settled {
        Ok(receipt) => {
            book(ledger, row, &payment, amount, &receipt).map_err(|e| e.to_string())?;
            Ok(receipt)
        }
        Err(error) => {
            // A settlement that went through unrecorded (this object died
            // after /settle, or someone else submitted the authorization) is
            // refused again; the chain says whether it paid us.
            if let Some(transaction) = paid_on_chain(ledger, &payment, amount).await {
                let receipt = Receipt::of(&payment, true, &transaction, amount);
                book(ledger, row, &payment, amount, &receipt).map_err(|e| e.to_string())?;
                return Ok(receipt);
            }
            failed(ledger, row, &payment, amount, &error).await;
            Err(error)
        }
    }
}

/// How far back a settlement's transaction is looked for (`X402_LOOKBACK_BLOCKS`):
/// a payment is settled within its validity (minutes), so this covers hours.
const LOOKBACK_BLOCKS: u64 = 20_000;

/// The transaction in which an `exact` payment's authorization paid exactly
/// `amount` to the treasury, if the chain has one (EIP-3009 logs its use).
async fn paid_on_chain(ledger: &Ledger, payment: &Authorized, amount: Micros) -> Option<String> {
    if payment.scheme != Scheme::Exact {
        return None;
    }
    let env = &ledger.env;
    let (config, rpc) = (ChainConfig::from_env(env)?, Rpc::from_env(env).ok()?);
    let payer = Address::parse(&payment.payer).ok()?;
    let nonce = payment.payload["payload"]["authorization"]["nonce"].as_str()?;
    let lookback = env.var("X402_LOOKBACK_BLOCKS").ok().and_then(|v| v.to_string().trim().parse().ok()).unwrap_or(LOOKBACK_BLOCKS);
    let head = rpc.head().await.ok()?;
    let uses = rpc.authorization_uses(&config.token, &payer, nonce, head.saturating_sub(lookback), head).await.ok()?;
    for tx in uses.into_iter().filter_map(|l| l.transaction_hash) {
        let receipt = rpc.receipt(&tx).await.ok().flatten()?;
        if paid_by_authorization(&receipt, &config.token, &config.treasury, &payer, nonce, amount.0 as u128) {
            return Some(tx);
        }
    }
    None
}

/// The credit of what moved and the `settled` state, in one transaction.
fn book(ledger: &Ledger, row: &PaymentRow, payment: &Authorized, amount: Micros, receipt: &Receipt) -> worker::Result<()> {
    let store = ledger.store();
    let user_id = store.wallet()?.ok_or("wallet missing")?.user_id;
    store.atomically(|| {
        if amount > Micros::ZERO && store.applied(&row.reference)?.is_none() {
            let reason = Some(format!("x402 {} payment from {} (tx {})", payment.scheme.as_str(), payment.payer, receipt.transaction));
            let change = Change { user_id: &user_id, kind: "x402_payment", reason: &reason, now_ms: now_ms(), payment: &None, included: Micros::ZERO };
            ledger.apply_money(&change, &row.reference, amount)?;
        }
        store.x402_mark_settled(&row.reference, &receipt.transaction, now_ms())
    })?;
    dexto_shared::log::event(
        "x402.settled",
        json!({"request_id": row.request_id, "user_id": user_id, "scheme": payment.scheme.as_str(), "payer": payment.payer, "amount_micros": amount.0, "transaction": receipt.transaction}),
    );
    Ok(())
}

/// Records a failed attempt: `failed` while the authorization can still be
/// used, `unpaid` after; the finding once per payment.
async fn failed(ledger: &Ledger, row: &PaymentRow, payment: &Authorized, amount: Micros, error: &str) {
    let store = ledger.store();
    let expired = now_ms() / 1000 >= payment.valid_before;
    if let Err(e) = store.x402_mark_failed(&row.reference, error, expired) {
        dexto_shared::log::event("x402.unrecorded_failure", json!({"request_id": row.request_id, "error": e.to_string()}));
    }
    let user_id = store.wallet().ok().flatten().map(|w| w.user_id).unwrap_or_default();
    let detail = json!({"request_id": row.request_id, "payer": payment.payer, "scheme": payment.scheme.as_str(), "amount_micros": amount.0,
        "attempts": row.attempts + 1, "error": error, "expired": expired});
    dexto_shared::log::event("x402.settle_failed", detail.clone());
    if let Err(e) = dexto_shared::findings::record(&ledger.env, "x402_settlement_failed", &user_id, &row.reference, &detail).await {
        dexto_shared::log::event("x402.finding_unrecorded", json!({"request_id": row.request_id, "error": format!("{e:?}")}));
    }
}

/// Raises the account's upstream key limit to cover its balance and its open
/// keyless holds before a keyless call goes upstream: the payment, not the
/// balance, pays for it, and OpenRouter refuses a key whose limit is spent
/// (an address account's balance is usually near zero). Mints the key on
/// the account's first call.
pub async fn cover_upstream_limit(ledger: &Ledger, user_id: &str) -> Result<(), dexto_shared::error::GatewayError> {
    use dexto_shared::openrouter_keys;
    openrouter_keys::key_for(&ledger.env, user_id).await?;
    let _one_at_a_time = ledger.limit_lock.lock().await;
    let store = ledger.store();
    let storage = |e: worker::Error| dexto_shared::error::GatewayError::Internal(format!("wallet: {e}"));
    let balance = Micros(store.wallet().map_err(storage)?.map_or(0, |w| w.balance));
    openrouter_keys::sync_limit(&ledger.env, user_id, store.upstream_room(balance).map_err(storage)?).await
}
