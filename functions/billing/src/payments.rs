//! The wallet side of Stripe payments, one path for the webhook (events.rs)
//! and the reconciliation pass (reconcile.rs): credit a paid top-up under
//! `stripe:checkout:<session>`, bring a charge's refund debit to Stripe's
//! cumulative amount under `stripe:refund:<charge>`. The wallet applies a
//! reference once, so whichever of the two comes second is a replay.

use dexto_shared::db;
use dexto_shared::error::GatewayError;
use dexto_shared::http::now_ms;
use dexto_shared::money::Micros;
use dexto_shared::stripe_reconcile::{checkout_reference, refund_group, TopUp};
use dexto_shared::wallet::{AdjustRequest, CreditRequest, PaymentEffect};
use dexto_shared::wallet_client::WalletClient;
use std::collections::HashMap;
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, Env};

/// Which event (or reconciliation run) causes a change: written as the
/// webhook dedupe record in the same D1 batch as the ledger row.
pub struct Cause<'a> {
    pub event_id: &'a str,
    pub event_type: &'a str,
}

/// Credits a paid top-up; returns whether it was already credited.
pub async fn credit_top_up(env: &Env, top_up: &TopUp, cause: &Cause<'_>) -> Result<bool, GatewayError> {
    let outcome = WalletClient::for_user(env, &top_up.user_id)?
        .credit(&CreditRequest {
            user_id: top_up.user_id.clone(),
            reference: checkout_reference(&top_up.session_id),
            amount: top_up.credit(),
            kind: "topup".into(),
            reason: Some("Stripe checkout".into()),
            now_ms: now_ms(),
            payment: Some(PaymentEffect::Fulfilled {
                event_id: cause.event_id.into(),
                event_type: cause.event_type.into(),
                session_id: top_up.session_id.clone(),
                amount_minor: top_up.amount_minor,
                currency: "usd".into(),
                payment_intent: top_up.payment_intent.clone(),
            }),
        })
        .await?;
    Ok(outcome.replay)
}

/// A payment the gateway recorded (a top-up's session or a subscription invoice).
pub struct Transaction {
    pub id: String,
    pub user_id: String,
    pub amount_minor: i64,
    /// `checkout`, `invoice` (the configured subscription price) or
    /// `plan_invoice` (a plan's period: its refunds take back included credit).
    pub kind: String,
    pub credit_micros: i64,
}

impl Transaction {
    /// What it charged and granted, as its refunds and lost disputes take
    /// back: a subscription invoice's credit may be less than its price.
    pub fn paid(&self) -> dexto_shared::stripe_reconcile::Paid {
        let credit = (self.kind == "invoice" && self.credit_micros > 0).then_some(Micros(self.credit_micros));
        dexto_shared::stripe_reconcile::Paid { minor: self.amount_minor, credit }
    }
}

/// The transaction a charge belongs to, by payment intent.
pub async fn transaction_for(db: &D1Database, payment_intent: &str) -> Result<Option<Transaction>, GatewayError> {
    Ok(transactions(db, &[payment_intent]).await?.remove(payment_intent))
}

/// The transactions of up to 100 payment intents (D1 binds at most 100 values), by payment intent.
pub async fn transactions(db: &D1Database, payment_intents: &[&str]) -> Result<HashMap<String, Transaction>, GatewayError> {
    #[derive(serde::Deserialize)]
    struct Row {
        id: String,
        user_id: String,
        amount_minor: i64,
        payment_intent: String,
        kind: String,
        credit_micros: i64,
    }
    if payment_intents.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!("SELECT id, user_id, amount_minor, payment_intent, kind, credit_micros FROM stripe_transactions WHERE payment_intent IN ({})", db::placeholders(payment_intents.len()));
    let args: Vec<JsValue> = payment_intents.iter().map(|p| (*p).into()).collect();
    let rows: Vec<Row> = db::all(db, &sql, &args).await?;
    Ok(rows.into_iter().map(|r| (r.payment_intent, Transaction { id: r.id, user_id: r.user_id, amount_minor: r.amount_minor, kind: r.kind, credit_micros: r.credit_micros })).collect())
}

/// Brings the charge's refund debit to `cumulative` (negative: Stripe's
/// cumulative refunded amount); only what is new is applied, and a smaller
/// total than already applied changes nothing. Returns whether it was a replay.
pub async fn apply_refund(env: &Env, tx: &Transaction, charge: &str, cumulative: Micros, cause: &Cause<'_>) -> Result<bool, GatewayError> {
    let status = if cumulative < Micros::ZERO { "refunded" } else { "paid" };
    let outcome = WalletClient::for_user(env, &tx.user_id)?
        .adjust(&AdjustRequest {
            user_id: tx.user_id.clone(),
            group: refund_group(charge),
            cumulative,
            kind: "refund".into(),
            reason: Some("Stripe refund".into()),
            now_ms: now_ms(),
            payment: Some(PaymentEffect::StatusChanged {
                event_id: cause.event_id.into(),
                event_type: cause.event_type.into(),
                transaction_id: tx.id.clone(),
                status: status.into(),
            }),
        })
        .await?;
    Ok(outcome.replay)
}
