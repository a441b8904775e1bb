//! Top-ups compared with Stripe's records, by cron (hourly; locally
//! `GET /__scheduled`, relayed by the chat Worker to `POST /__cron`). Stripe is the
//! record of what was paid, D1 of what was credited; each run reads Stripe's
//! paid Checkout Sessions and refunds created in the look-back window
//! (`STRIPE_RECONCILE_LOOKBACK_DAYS`) and compares (shared/src/stripe_reconcile.rs):
//!
//! - `topup_missing`: paid, created here for that user, never credited, and
//!   older than the grace period (`STRIPE_RECONCILE_GRACE_SECONDS`: the
//!   webhook may still be in flight). **Credited** through the webhook's own
//!   path (`payments::credit_top_up`, reference `stripe:checkout:<session>`):
//!   Stripe's API, read with our secret key, says it was paid, so the credit
//!   is owed; the wallet applies the reference once, so a late webhook, a
//!   replay or a second run changes nothing.
//! - `topup_amount_mismatch`: credited, but not what the session grants.
//!   Reported only: which side is wrong is an operator's call.
//! - `topup_unknown_to_stripe`: credited here, but Stripe does not report the
//!   session as paid (or does not know it). Reported only: taking money back
//!   on our own inference could hurt a customer who paid.
//! - `plan_invoice_missing`: a paid plan invoice whose period was never
//!   granted; **granted** (`reconcile_plans.rs`).
//! - `plan_upgrade_missing`: an upgrade's paid proration invoice never
//!   granted; **granted** (`reconcile_plans.rs`).
//! - `plan_refund_missing`: a refund of a plan invoice whose included credit
//!   was not taken back; **taken back** (`reconcile_plans.rs`).
//! - `subscription_drift`: a user's plan state behind Stripe's subscription;
//!   **applied** through the webhook's handlers (`reconcile_plans.rs`).
//! - `refund_missing`: Stripe refunded more of a charge than was debited here.
//!   **Debited** through the webhook's path (`payments::apply_refund`: the
//!   charge's cumulative total, so the late `charge.refunded` is a replay).
//!
//! A finding is recorded (once: `findings::record`) before its correction, so a
//! correction that fails is retried by the next run while its finding stands.
//! Before calling anything missing, the user's wallet is flushed and D1 read
//! again: projection lag is not drift.

use crate::config::BillingConfig;
use crate::payments::{self, Cause, Transaction};
use crate::stripe_api::{self, MAX_PAGES};
use dexto_shared::db;
use dexto_shared::error::GatewayError;
use dexto_shared::findings;
use dexto_shared::http::now_ms;
use dexto_shared::money::Micros;
use dexto_shared::stripe_reconcile::{backs_a_credit, compare_sessions, is_paid, refund_group, refund_shortfall, refunds_by_charge, ChargeRefunds, Recorded, SessionDrift, Window};
use dexto_shared::time::rfc3339;
use dexto_shared::wallet_client::WalletClient;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, Env};

/// Credited sessions missing from Stripe's list that are looked up one by one per run.
const MAX_LOOKUPS: usize = 25;

/// A short outcome for logs and the local relay.
pub async fn run(env: &Env) -> Result<String, GatewayError> {
    let config = BillingConfig::from_env(env);
    if config.secret_key.is_empty() {
        return Ok("stripe reconciliation skipped: STRIPE_SECRET_KEY not set".into());
    }
    let database = db::database(env)?;
    let window = Window::new(now_ms() / 1000, config.reconcile_lookback_days, config.reconcile_grace_secs);
    let since = ("created[gte]", window.from_s.to_string());
    let (sessions, more_sessions) = stripe_api::list(&config, "/v1/checkout/sessions", &[since.clone(), ("status", "complete".into())], MAX_PAGES).await?;
    let mut found = check_sessions(env, &database, &sessions, &window).await?;
    found += unknown_to_stripe(env, &config, &database, &sessions, &window).await?;
    let (refunds, more_refunds) = stripe_api::list(&config, "/v1/refunds", &[since], MAX_PAGES).await?;
    found += check_refunds(env, &config, &database, &refunds, &window).await?;
    if more_sessions || more_refunds {
        // The oldest part of the window was not read this run.
        dexto_shared::log::event("stripe_reconcile.truncated", json!({"sessions": sessions.len(), "refunds": refunds.len()}));
    }
    let (invoices, plan_found) = crate::reconcile_plans::run(env, &config, &database, &window).await?;
    let (subscriptions, subscription_found) = crate::reconcile_plans::subscriptions(env, &config, &database).await?;
    found += plan_found + subscription_found;
    Ok(format!("stripe: {} sessions, {} refunds, {invoices} invoices, {subscriptions} subscriptions, {found} new findings", sessions.len(), refunds.len()))
}

/// D1's record of Checkout Sessions (up to 100 ids), by session id.
async fn recorded(database: &D1Database, ids: &[&str]) -> Result<HashMap<String, Recorded>, GatewayError> {
    #[derive(Deserialize)]
    struct Row {
        id: String,
        user_id: String,
        status: String,
        credit_micros: i64,
    }
    let sql = format!("SELECT id, user_id, status, credit_micros FROM stripe_transactions WHERE kind = 'checkout' AND id IN ({})", db::placeholders(ids.len()));
    let args: Vec<JsValue> = ids.iter().map(|id| (*id).into()).collect();
    let rows: Vec<Row> = if ids.is_empty() { Vec::new() } else { db::all(database, &sql, &args).await? };
    Ok(rows
        .into_iter()
        .map(|r| {
            // `paid` (and what a paid session can become) is written in the credit's own D1 batch.
            let credited = matches!(r.status.as_str(), "paid" | "refunded" | "disputed").then_some(Micros(r.credit_micros));
            (r.id, Recorded { user_id: r.user_id, credited })
        })
        .collect())
}

async fn flush(env: &Env, user_id: &str) -> Result<(), GatewayError> {
    WalletClient::for_user(env, user_id)?.state().await.map(|_| ())
}

async fn check_sessions(env: &Env, database: &D1Database, sessions: &[Value], window: &Window) -> Result<usize, GatewayError> {
    let paid: Vec<&str> = sessions.iter().filter(|s| is_paid(s)).filter_map(|s| s.get("id").and_then(Value::as_str)).collect();
    let mut known = HashMap::new();
    for chunk in paid.chunks(100) {
        known.extend(recorded(database, chunk).await?);
    }
    let mut found = 0;
    for drift in compare_sessions(sessions, &known, window) {
        let (what, id) = match &drift {
            SessionDrift::Missing { top_up, .. } | SessionDrift::AmountMismatch { top_up, .. } => ("session", top_up.session_id.clone()),
        };
        found += isolated(session_drift(env, database, drift).await, what, &id);
    }
    Ok(found)
}

/// One item's failure (a wallet or D1 error) is logged and retried by the next
/// run; it does not stop the others.
fn isolated(result: Result<usize, GatewayError>, what: &str, id: &str) -> usize {
    result.unwrap_or_else(|e| {
        dexto_shared::log::event("stripe_reconcile.item_failed", json!({"what": what, "id": id, "error": format!("{e:?}")}));
        0
    })
}

async fn session_drift(env: &Env, database: &D1Database, drift: SessionDrift) -> Result<usize, GatewayError> {
    match drift {
        SessionDrift::Missing { top_up, created_s } => {
            flush(env, &top_up.user_id).await?;
            if recorded(database, &[&top_up.session_id]).await?.get(&top_up.session_id).is_some_and(|r| r.credited.is_some()) {
                return Ok(0); // credited, only not yet projected (an amount mismatch shows next run)
            }
            let detail = json!({
                "session_id": top_up.session_id, "amount_minor": top_up.amount_minor, "credit_micros": top_up.credit().0,
                "session_created": rfc3339(created_s * 1000), "action": "credited",
            });
            let found = findings::record(env, "topup_missing", &top_up.user_id, &top_up.session_id, &detail).await?;
            let event_id = format!("reconcile:{}", top_up.session_id);
            payments::credit_top_up(env, &top_up, &Cause { event_id: &event_id, event_type: "reconciliation.topup_missing" }).await?;
            // Projected now, so the books (and the refunds below) see the payment.
            flush(env, &top_up.user_id).await?;
            Ok(found)
        }
        SessionDrift::AmountMismatch { top_up, credited } => {
            let detail = json!({
                "session_id": top_up.session_id, "amount_minor": top_up.amount_minor,
                "granted_micros": top_up.credit().0, "credited_micros": credited.0,
            });
            let fingerprint = format!("{}:{}", top_up.session_id, credited.0);
            findings::record(env, "topup_amount_mismatch", &top_up.user_id, &fingerprint, &detail).await
        }
    }
}

/// Sessions credited here (created in the window) that Stripe's list of paid
/// sessions lacks: each is looked up by id (the list's window edge, or a page
/// limit, may have left it out) before it is reported.
async fn unknown_to_stripe(env: &Env, config: &BillingConfig, database: &D1Database, sessions: &[Value], window: &Window) -> Result<usize, GatewayError> {
    #[derive(Deserialize)]
    struct Row {
        id: String,
        user_id: String,
        credit_micros: i64,
    }
    let paid: HashSet<&str> = sessions.iter().filter(|s| is_paid(s)).filter_map(|s| s.get("id").and_then(Value::as_str)).collect();
    // Already reported ones are not looked up again.
    let credited: Vec<Row> = db::all(
        database,
        "SELECT id, user_id, credit_micros FROM stripe_transactions t
         WHERE created_at >= ?1 AND kind = 'checkout' AND status IN ('paid', 'refunded', 'disputed')
           AND NOT EXISTS (SELECT 1 FROM reconciliation_findings f
                           WHERE f.kind = 'topup_unknown_to_stripe' AND f.user_id = t.user_id AND f.fingerprint = t.id)
         ORDER BY created_at DESC LIMIT 2000",
        &[db::ms(window.from_s * 1000)],
    )
    .await?;
    let mut found = 0;
    for row in credited.iter().filter(|r| !paid.contains(r.id.as_str())).take(MAX_LOOKUPS) {
        let one = async {
            let path = format!("/v1/checkout/sessions/{}", dexto_shared::url_query::encode(&row.id));
            let session = stripe_api::get(config, &path).await?;
            if backs_a_credit(session.as_ref()) {
                return Ok(0);
            }
            let stripe = session.map_or(json!("unknown"), |s| json!({"status": s.get("status"), "payment_status": s.get("payment_status")}));
            let detail = json!({"session_id": row.id, "credited_micros": row.credit_micros, "stripe": stripe});
            findings::record(env, "topup_unknown_to_stripe", &row.user_id, &row.id, &detail).await
        };
        found += isolated(one.await, "session", &row.id);
    }
    Ok(found)
}

/// The signed sum of the refund rows of a charge (`stripe:refund:<charge>:<cumulative>`).
async fn refunded_here(database: &D1Database, user_id: &str, charge: &str) -> Result<Micros, GatewayError> {
    #[derive(Deserialize)]
    struct Sum {
        total: i64,
    }
    // A range on the (user_id, reference) index; ';' is the character after ':'.
    let group = refund_group(charge);
    let sql = "SELECT COALESCE(SUM(amount_micros), 0) AS total FROM credit_ledger WHERE user_id = ?1 AND reference >= ?2 AND reference < ?3";
    let sum: Option<Sum> = db::first(database, sql, &[user_id.into(), format!("{group}:").into(), format!("{group};").into()]).await?;
    Ok(Micros(sum.map_or(0, |s| s.total)))
}

async fn check_refunds(env: &Env, config: &BillingConfig, database: &D1Database, refunds: &[Value], window: &Window) -> Result<usize, GatewayError> {
    let by_charge = refunds_by_charge(refunds);
    let intents: Vec<&str> = by_charge.values().map(|r| r.payment_intent.as_str()).collect();
    let mut ours: HashMap<String, Transaction> = HashMap::new();
    for chunk in intents.chunks(100) {
        ours.extend(payments::transactions(database, chunk).await?);
    }
    let mut found = 0;
    for (charge, seen) in &by_charge {
        // Refunds of payments that are not ours: the webhook leaves them to an operator.
        let Some(tx) = ours.get(&seen.payment_intent) else { continue };
        // A plan invoice's refund takes back included credit, not purchased credit.
        if tx.kind == crate::plan_invoice::PLAN_INVOICE {
            found += isolated(crate::reconcile_plans::refund(env, config, database, charge, seen, tx, window).await, "charge", charge);
            continue;
        }
        found += isolated(charge_refunds(env, config, database, charge, seen, tx, window).await, "charge", charge);
    }
    Ok(found)
}

async fn charge_refunds(env: &Env, config: &BillingConfig, database: &D1Database, charge: &str, seen: &ChargeRefunds, tx: &Transaction, window: &Window) -> Result<usize, GatewayError> {
    // Cheap pre-check from the window alone — valid only while nothing of the
    // charge is applied here yet. With earlier refunds applied, the window may
    // hold just the newer ones (a $10 refund last month applied, a $5 one this
    // week lost: −5 vs −10 looks fine), so the charge's whole list decides.
    let applied_before = refunded_here(database, &tx.user_id, charge).await?;
    if applied_before == Micros::ZERO && refund_shortfall(seen, tx.paid(), applied_before, window).is_none() {
        return Ok(0);
    }
    // The window may hold only some of the charge's refunds: all of them decide.
    let (all, _) = stripe_api::list(config, "/v1/refunds", &[("charge", charge.to_string())], MAX_PAGES).await?;
    let Some(whole) = refunds_by_charge(&all).remove(charge) else { return Ok(0) };
    flush(env, &tx.user_id).await?;
    let applied = refunded_here(database, &tx.user_id, charge).await?;
    let Some(target) = refund_shortfall(&whole, tx.paid(), applied, window) else { return Ok(0) };
    let detail = json!({
        "charge": charge, "payment_intent": seen.payment_intent, "transaction_id": tx.id,
        "refunded_minor": whole.refunded_minor, "applied_micros": applied.0, "debit_micros": target.0 - applied.0, "action": "debited",
    });
    let found = findings::record(env, "refund_missing", &tx.user_id, &format!("{charge}:{}", target.0), &detail).await?;
    let event_id = format!("reconcile:{charge}:{}", target.0);
    payments::apply_refund(env, tx, charge, target, &Cause { event_id: &event_id, event_type: "reconciliation.refund_missing" }).await?;
    flush(env, &tx.user_id).await?;
    Ok(found)
}
