//! What each Stripe event does. References used with the wallet (each unique,
//! so a replay is a no-op):
//! - paid Checkout Session → credit `stripe:checkout:<cs id>` (whichever of
//!   `completed`/`async_payment_succeeded` arrives first credits; the other replays);
//! - refund → adjust group `stripe:refund:<charge id>` to −amount_refunded;
//! - lost dispute → adjust group `stripe:dispute:<dispute id>` to −amount;
//! - subscription invoice → credit `stripe:invoice:<invoice id>`.

use crate::config::BillingConfig;
use crate::payments::{self, transaction_for, Cause, Transaction};
use dexto_shared::db;
use dexto_shared::error::GatewayError;
use dexto_shared::http::now_ms;
use dexto_shared::money::Micros;
use dexto_shared::stripe_reconcile::{is_paid, top_up, NotATopUp, MICROS_PER_CENT};
use dexto_shared::plans::period;
use dexto_shared::wallet::{AdjustRequest, CreditRequest, PaymentEffect, PlanRequest, PlanStep, StatusChange};
use dexto_shared::wallet_client::WalletClient;
use serde_json::Value;
use crate::event::{already_processed, internal, now_f64, record_event, text, unmatched, Event};
use worker::{D1Database, Env};

pub async fn dispatch(env: &Env, config: &BillingConfig, event: &Event, fault: Option<&str>) -> Result<&'static str, GatewayError> {
    let db = db::database(env)?;
    let obj = &event.object;
    match event.kind.as_str() {
        "checkout.session.completed" | "checkout.session.async_payment_succeeded" => {
            if !is_paid(obj) {
                return Ok("awaiting_payment"); // credited on async_payment_succeeded
            }
            fulfil(env, &db, event, fault).await
        }
        "checkout.session.expired" | "checkout.session.async_payment_failed" => {
            let id = text(obj, "/id").ok_or_else(|| internal("session id"))?;
            db::run_idempotent(&db, "UPDATE stripe_transactions SET status = 'failed', updated_at = ?2 WHERE id = ?1 AND status = 'pending'", &[id.into(), now_f64()]).await?;
            record_event(&db, event).await?;
            Ok("marked_failed")
        }
        "charge.refunded" => refund(env, &db, event).await,
        // Disputes: an event id already applied is a no-op (Stripe redelivers).
        "charge.dispute.created" | "charge.dispute.closed" if already_processed(&db, event).await? => Ok("duplicate"),
        "charge.dispute.created" => dispute_opened(env, &db, event).await,
        "charge.dispute.closed" => dispute_closed(env, &db, event).await,
        "invoice.paid" => match crate::plans::plan_of_invoice(&db, obj).await? {
            Some((plan, line)) => crate::plans::invoice_paid(env, &db, event, plan, line).await,
            None => subscription_grant(env, &db, config, event).await,
        },
        "invoice.payment_failed" => crate::plan_failures::payment_failed(env, &db, event).await,
        "customer.subscription.updated" => crate::plans::subscription_updated(env, &db, event).await,
        "customer.subscription.deleted" => {
            let id = text(obj, "/id").ok_or_else(|| internal("subscription id"))?;
            db::run_idempotent(&db, "UPDATE subscriptions SET status = 'canceled', updated_at = ?2 WHERE id = ?1", &[id.into(), now_f64()]).await?;
            crate::plans::subscription_deleted(&db, id, if event.created > 0 { event.created * 1000 } else { now_ms() }).await?;
            record_event(&db, event).await?;
            Ok("subscription_canceled")
        }
        _ => {
            record_event(&db, event).await?; // counted in processed_webhook_events by type
            Ok("ignored")
        }
    }
}

async fn fulfil(env: &Env, db: &D1Database, event: &Event, fault: Option<&str>) -> Result<&'static str, GatewayError> {
    let top_up = match top_up(&event.object) {
        Ok(t) => t,
        Err(NotATopUp::NoSessionId) => return Err(internal("session id")),
        Err(NotATopUp::NotPayment) => {
            // Subscriptions bought through Checkout are paid by their invoices.
            record_event(db, event).await?;
            return Ok("not_a_top_up");
        }
        Err(NotATopUp::NoUser) => return unmatched(db, event, "no user on the session").await,
        Err(NotATopUp::Currency) => return unmatched(db, event, "currency not sold").await,
        Err(NotATopUp::NoAmount) => return Err(internal("amount_total")),
    };
    // Only sessions this gateway created, for the same user, are top-ups: a
    // Payment Link or a session made elsewhere on the account credits nothing.
    if session_owner(db, &top_up.session_id).await?.as_deref() != Some(top_up.user_id.as_str()) {
        return unmatched(db, event, "session not created by the gateway for this user").await;
    }
    if fault == Some("crash-before-credit") {
        // Test hook: the worker dies after reading the event, before the wallet
        // call. Nothing (no dedupe record either) may have been written.
        return Err(internal("injected crash before credit"));
    }
    let replay = payments::credit_top_up(env, &top_up, &Cause { event_id: &event.id, event_type: &event.kind }).await?;
    if fault == Some("crash-after-credit") {
        // Test hook (BILLING_TEST_FAULTS=1): the worker dies after the wallet
        // committed; Stripe sees a 5xx and redelivers.
        return Err(internal("injected crash after credit"));
    }
    Ok(if replay { "already_credited" } else { "credited" })
}

async fn session_owner(db: &D1Database, session_id: &str) -> Result<Option<String>, GatewayError> {
    #[derive(serde::Deserialize)]
    struct Row {
        user_id: String,
    }
    let row: Option<Row> = db::first(db, "SELECT user_id FROM stripe_transactions WHERE id = ?1 AND kind = 'checkout'", &[session_id.into()]).await?;
    Ok(row.map(|r| r.user_id))
}

/// How long a refund or dispute for an unknown payment is retried before it
/// is acknowledged for an operator instead (Stripe retries for up to 3 days
/// and may disable an endpoint that keeps failing, stopping top-ups too).
const UNKNOWN_PAYMENT_WINDOW_SECS: i64 = 6 * 3600;

/// A refund or dispute for a payment intent we do not know (yet): its
/// checkout may not be projected yet, or it arrived first (Stripe does not
/// order events). Within the window, 5xx so Stripe redelivers it later; past
/// it, 200 and an audit row: it will never match.
async fn unknown_payment(db: &D1Database, event: &Event) -> Result<&'static str, GatewayError> {
    let age = (now_ms() / 1000).saturating_sub(event.created);
    if event.created > 0 && age > UNKNOWN_PAYMENT_WINDOW_SECS {
        return unmatched(db, event, "payment unknown to the gateway").await;
    }
    dexto_shared::log::event("stripe.payment_not_yet_known", serde_json::json!({"event_id": event.id, "type": event.kind}));
    Err(internal("payment intent not known yet; Stripe will retry"))
}

async fn refund(env: &Env, db: &D1Database, event: &Event) -> Result<&'static str, GatewayError> {
    let obj = &event.object;
    let charge = text(obj, "/id").ok_or_else(|| internal("charge id"))?;
    let Some(tx) = transaction_for(db, text(obj, "/payment_intent").unwrap_or("")).await? else {
        return unknown_payment(db, event).await;
    };
    // `amount_refunded` is cumulative; the wallet applies only what is new.
    let refunded = obj.pointer("/amount_refunded").and_then(Value::as_i64).unwrap_or(0);
    if tx.kind == crate::plan_invoice::PLAN_INVOICE {
        return crate::plans::take_back(env, db, event, &tx, refunded, "refunded").await;
    }
    let cumulative = tx.paid().returned(refunded);
    let replay = payments::apply_refund(env, &tx, charge, cumulative, &Cause { event_id: &event.id, event_type: &event.kind }).await?;
    Ok(if replay { "already_refunded" } else { "refunded" })
}

async fn dispute_opened(env: &Env, db: &D1Database, event: &Event) -> Result<&'static str, GatewayError> {
    let obj = &event.object;
    let Some(Transaction { id: tx, user_id, .. }) = transaction_for(db, text(obj, "/payment_intent").unwrap_or("")).await? else {
        return unknown_payment(db, event).await;
    };
    let dispute = text(obj, "/id").ok_or_else(|| internal("dispute id"))?;
    // A dispute already closed stays closed (a late or redelivered `created`).
    db::run_idempotent(
        db,
        "INSERT INTO stripe_disputes (id, user_id, transaction_id, status, closed, updated_at) VALUES (?1, ?2, ?3, ?4, 0, ?5)
         ON CONFLICT(id) DO NOTHING",
        &[dispute.into(), user_id.as_str().into(), tx.as_str().into(), text(obj, "/status").unwrap_or("needs_response").into(), now_f64()],
    )
    .await?;
    db::run_idempotent(
        db,
        "UPDATE stripe_transactions SET status = 'disputed', updated_at = ?2 WHERE id = ?1
           AND EXISTS (SELECT 1 FROM stripe_disputes WHERE transaction_id = ?1 AND closed = 0)",
        &[tx.as_str().into(), now_f64()],
    )
    .await?;
    let frozen = sync_frozen(env, db, &user_id).await?;
    record_event(db, event).await?;
    Ok(if frozen { "wallet_frozen" } else { "dispute_already_closed" })
}

async fn dispute_closed(env: &Env, db: &D1Database, event: &Event) -> Result<&'static str, GatewayError> {
    let obj = &event.object;
    let Some(transaction) = transaction_for(db, text(obj, "/payment_intent").unwrap_or("")).await? else {
        return unknown_payment(db, event).await;
    };
    let (tx, user_id) = (transaction.id.clone(), transaction.user_id.clone());
    let dispute = text(obj, "/id").ok_or_else(|| internal("dispute id"))?;
    // Only `lost` takes money back; `won` and `warning_closed` (an inquiry) do not.
    let lost = text(obj, "/status") == Some("lost");
    if lost && transaction.kind == crate::plan_invoice::PLAN_INVOICE {
        let amount = obj.pointer("/amount").and_then(Value::as_i64).unwrap_or(0).max(0);
        plan_dispute_lost(env, &transaction, dispute, amount).await?;
    } else if lost {
        // Lost: the money went back to the card holder; the wallet owes it.
        let amount = obj.pointer("/amount").and_then(Value::as_i64).unwrap_or(0).max(0);
        WalletClient::for_user(env, &user_id)?
            .adjust(&AdjustRequest {
                user_id: user_id.clone(),
                group: format!("stripe:dispute:{dispute}"),
                cumulative: transaction.paid().returned(amount),
                kind: "dispute".into(),
                reason: Some("Stripe dispute lost".into()),
                now_ms: now_ms(),
                payment: Some(PaymentEffect::StatusChanged { event_id: event.id.clone(), event_type: event.kind.clone(), transaction_id: tx.clone(), status: "refunded".into() }),
            })
            .await?;
    }
    db::run_idempotent(
        db,
        "INSERT INTO stripe_disputes (id, user_id, transaction_id, status, closed, updated_at) VALUES (?1, ?2, ?3, ?4, 1, ?5)
         ON CONFLICT(id) DO UPDATE SET status = excluded.status, closed = 1, updated_at = excluded.updated_at",
        &[dispute.into(), user_id.as_str().into(), tx.as_str().into(), text(obj, "/status").unwrap_or("closed").into(), now_f64()],
    )
    .await?;
    let status = if lost { "refunded" } else { "paid" };
    db::run_idempotent(
        db,
        "UPDATE stripe_transactions SET status = ?2, updated_at = ?3 WHERE id = ?1
           AND NOT EXISTS (SELECT 1 FROM stripe_disputes WHERE transaction_id = ?1 AND closed = 0)",
        &[tx.as_str().into(), status.into(), now_f64()],
    )
    .await?;
    sync_frozen(env, db, &user_id).await?;
    record_event(db, event).await?;
    Ok(if lost { "dispute_lost" } else { "dispute_closed" })
}

/// A lost dispute of a plan invoice takes back that invoice's included
/// credit in proportion to the amount disputed, as far as it is unspent, in
/// a group of its own: a refund of the same invoice keeps its own cumulative
/// target (`period::dispute_take_back_reference`).
async fn plan_dispute_lost(env: &Env, tx: &Transaction, dispute: &str, amount_minor: i64) -> Result<(), GatewayError> {
    let target = period::take_back_target(Micros(tx.credit_micros), amount_minor, tx.amount_minor);
    let step = PlanStep::TakeBack { group: period::dispute_take_back_reference(&tx.id, dispute), target };
    WalletClient::for_user(env, &tx.user_id)?
        .plan(&PlanRequest { user_id: tx.user_id.clone(), now_ms: now_ms(), steps: vec![step] })
        .await?;
    Ok(())
}

/// Sets the wallet's frozen flag to "any of the user's disputes is open" and
/// returns it. Read again after the wallet call: a concurrent dispute event
/// may have changed the set meanwhile, and the last write must be the truth.
async fn sync_frozen(env: &Env, db: &D1Database, user_id: &str) -> Result<bool, GatewayError> {
    #[derive(serde::Deserialize)]
    struct Open {
        n: i64,
    }
    let open = || async {
        let sql = "SELECT COUNT(*) AS n FROM stripe_disputes WHERE user_id = ?1 AND closed = 0";
        Ok::<bool, GatewayError>(db::first::<Open>(db, sql, &[user_id.into()]).await?.is_some_and(|o| o.n > 0))
    };
    let mut frozen = open().await?;
    for _ in 0..3 {
        set_frozen(env, user_id, frozen).await?;
        let now = open().await?;
        if now == frozen {
            break;
        }
        frozen = now;
    }
    Ok(frozen)
}

async fn subscription_grant(env: &Env, db: &D1Database, config: &BillingConfig, event: &Event) -> Result<&'static str, GatewayError> {
    let obj = &event.object;
    let Some(price) = &config.subscription_price else { return Ok("ignored") };
    let lines = obj.pointer("/lines/data").and_then(Value::as_array).cloned().unwrap_or_default();
    let for_price = lines.iter().any(|l| {
        text(l, "/price/id") == Some(price) || text(l, "/pricing/price_details/price") == Some(price)
    });
    // Only money actually collected for a period grants: not $0 trial or
    // proration invoices.
    let amount_paid = obj.pointer("/amount_paid").and_then(Value::as_i64).unwrap_or(0);
    let paid = amount_paid > 0;
    let period = crate::plan_invoice::is_period_invoice(obj);
    if !for_price || !paid || !period || config.subscription_credit <= Micros::ZERO {
        record_event(db, event).await?;
        return Ok("ignored");
    }
    // Never grant more credit than was collected, and only for what we sell in.
    if text(obj, "/currency") != Some("usd") {
        return unmatched(db, event, "subscription invoice not in usd").await;
    }
    if Micros(amount_paid.saturating_mul(MICROS_PER_CENT)) < config.subscription_credit {
        return unmatched(db, event, "subscription invoice paid less than the credit it would grant").await;
    }
    let invoice = text(obj, "/id").ok_or_else(|| internal("invoice id"))?;
    let subscription = text(obj, "/subscription").or_else(|| text(obj, "/parent/subscription_details/subscription")).unwrap_or("");
    let user_id = text(obj, "/subscription_details/metadata/user_id").or_else(|| text(obj, "/parent/subscription_details/metadata/user_id"));
    let Some(user_id) = user_id.filter(|_| !subscription.is_empty()) else {
        return unmatched(db, event, "subscription invoice without user").await;
    };
    if !db::user_exists(db, user_id).await? {
        return unmatched(db, event, "subscription for an unknown user").await;
    }
    #[derive(serde::Deserialize)]
    struct Sub {
        status: String,
    }
    let known: Option<Sub> = db::first(db, "SELECT status FROM subscriptions WHERE id = ?1", &[subscription.into()]).await?;
    if known.is_some_and(|s| s.status == "canceled") {
        record_event(db, event).await?;
        return Ok("subscription_canceled");
    }
    db::run_idempotent(
        db,
        "INSERT INTO subscriptions (id, user_id, customer, status, updated_at) VALUES (?1, ?2, ?3, 'active', ?4) ON CONFLICT(id) DO NOTHING",
        &[subscription.into(), user_id.into(), text(obj, "/customer").unwrap_or("").into(), now_f64()],
    )
    .await?;
    // The invoice's payment is a transaction like a top-up, so its refunds and
    // disputes find their user and apply.
    let payment_intent = text(obj, "/payment_intent").or_else(|| text(obj, "/payments/data/0/payment/payment_intent"));
    db::run_idempotent(
        db,
        "INSERT INTO stripe_transactions (id, user_id, kind, amount_minor, currency, credit_micros, status, payment_intent, created_at, updated_at)
         VALUES (?1, ?2, 'invoice', ?3, 'usd', ?4, 'paid', ?5, ?6, ?6) ON CONFLICT(id) DO NOTHING",
        &[
            invoice.into(),
            user_id.into(),
            (amount_paid as f64).into(),
            (config.subscription_credit.0 as f64).into(),
            payment_intent.map_or(wasm_bindgen::JsValue::NULL, Into::into),
            now_f64(),
        ],
    )
    .await?;
    let outcome = WalletClient::for_user(env, user_id)?
        .credit(&CreditRequest {
            user_id: user_id.into(),
            reference: format!("stripe:invoice:{invoice}"),
            amount: config.subscription_credit,
            kind: "subscription".into(),
            reason: Some("Monthly subscription credit".into()),
            now_ms: now_ms(),
            payment: None,
        })
        .await?;
    record_event(db, event).await?;
    Ok(if outcome.replay { "already_granted" } else { "granted" })
}

async fn set_frozen(env: &Env, user_id: &str, frozen: bool) -> Result<(), GatewayError> {
    WalletClient::for_user(env, user_id)?
        .change_status(&StatusChange { user_id: user_id.into(), frozen: Some(frozen), ..StatusChange::default() })
        .await
}
