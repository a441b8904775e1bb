//! Stripe reconciliation of plan invoices (docs/ARCHITECTURE.md, "Plans"
//! and "Reconciliation"): a paid invoice of a plan's price, in the look-back
//! window and older than the grace, that should grant its period but whose
//! grant (`plan:grant:<invoice>`) is not in the ledger is a finding
//! (`plan_invoice_missing`), **granted** through the webhook's own path
//! (`plans::invoice_paid`, event id `reconcile:<invoice>`): the wallet applies
//! the reference once, so a late webhook or another run is a replay. An
//! upgrade's paid proration invoice whose webhook was lost is granted the
//! same way (`plan_upgrade_missing`).
//! Refunds of a plan invoice (found by the refund pass of `reconcile.rs`)
//! take back its included credit through the webhook's path too
//! (`plans::take_back`); a take-back that moved something was missing: a
//! `plan_refund_missing` finding. Subscriptions: each run compares up to 50
//! users' plan state (least recently checked first) with Stripe's
//! subscription and applies what the lost events would have (an upgrade,
//! a downgrade or cancellation waiting for the period end, `past_due`, a
//! deleted subscription) through the webhook's own handlers; a change is a
//! `subscription_drift` finding.

use crate::event::Event;
use crate::plans;
use crate::stripe_api::{self, MAX_PAGES};
use dexto_shared::db;
use dexto_shared::error::GatewayError;
use dexto_shared::findings;
use dexto_shared::plans::period::{grant_reference, upgrade_reference};
use dexto_shared::stripe_reconcile::{refunds_by_charge, ChargeRefunds, Window};
use dexto_shared::wallet_client::WalletClient;
use serde_json::{json, Value};
use worker::{D1Database, Env};

/// Paid invoices read and checked; returns (invoices read, new findings).
pub async fn run(env: &Env, config: &crate::config::BillingConfig, database: &D1Database, window: &Window) -> Result<(usize, usize), GatewayError> {
    let params = [("created[gte]", window.from_s.to_string()), ("status", "paid".to_string())];
    let (invoices, more) = stripe_api::list(config, "/v1/invoices", &params, MAX_PAGES).await?;
    if more {
        dexto_shared::log::event("stripe_reconcile.truncated", json!({"invoices": invoices.len()}));
    }
    let mut found = 0;
    for invoice in &invoices {
        let id = invoice.get("id").and_then(Value::as_str).unwrap_or_default();
        found += check(env, database, invoice, window).await.unwrap_or_else(|e| {
            dexto_shared::log::event("stripe_reconcile.item_failed", json!({"what": "invoice", "id": id, "error": format!("{e:?}")}));
            0
        });
    }
    Ok((invoices.len(), found))
}

async fn check(env: &Env, database: &D1Database, invoice: &Value, window: &Window) -> Result<usize, GatewayError> {
    let created = invoice.get("created").and_then(Value::as_i64).unwrap_or(i64::MAX);
    if created >= window.settled_before_s {
        return Ok(0); // its webhook may be in flight
    }
    let Some((plan, line)) = plans::plan_of_invoice(database, invoice).await? else { return Ok(0) };
    let (Some(id), Some(user_id)) = (invoice.get("id").and_then(Value::as_str), crate::plan_invoice::invoice_user(invoice)) else { return Ok(0) };
    if invoice.get("billing_reason").and_then(Value::as_str) == Some("subscription_update") {
        return upgrade(env, database, invoice, (id, user_id), plan, line, created).await;
    }
    if plans::grants(&plan, invoice).is_err() || !db::user_exists(database, user_id).await? {
        return Ok(0); // never grants, or the webhook's audit row covers it
    }
    // Flushed first: a grant only waiting for its projection is not missing.
    WalletClient::for_user(env, user_id)?.state().await?;
    let granted: Option<Value> = db::first(database, "SELECT seq FROM credit_ledger WHERE user_id = ?1 AND reference = ?2", &[user_id.into(), grant_reference(id).into()]).await?;
    // A $0 grant writes no ledger row: the webhook's transaction row says it was seen.
    let seen: Option<Value> = if plan.included.0 == 0 { db::first(database, "SELECT id FROM stripe_transactions WHERE id = ?1", &[id.into()]).await? } else { None };
    if granted.is_some() || seen.is_some() {
        return Ok(0);
    }
    let detail = json!({"invoice_id": id, "plan_id": plan.id, "included_micros": plan.included.0, "action": "granted"});
    let found = findings::record(env, "plan_invoice_missing", user_id, id, &detail).await?;
    let event = Event { id: format!("reconcile:{id}"), kind: "reconciliation.plan_invoice_missing".into(), object: invoice.clone(), created };
    plans::invoice_paid(env, database, &event, plan, line).await?;
    Ok(found)
}

/// A paid upgrade proration invoice whose webhook was lost: its grant is
/// applied through the webhook's path (`plan:upgrade:<invoice>`, once); a
/// finding (`plan_upgrade_missing`) only when it moved credit. Once its
/// grant is in the ledger, later runs skip it.
async fn upgrade(env: &Env, database: &D1Database, invoice: &Value, (id, user_id): (&str, &str), plan: dexto_shared::plans::Plan, line: Value, created: i64) -> Result<usize, GatewayError> {
    if !db::user_exists(database, user_id).await? {
        return Ok(0);
    }
    // By the ledger, not the transaction row: the row is written before the
    // wallet's grant, so a webhook whose grant failed leaves one behind.
    WalletClient::for_user(env, user_id)?.state().await?;
    let granted: Option<Value> = db::first(database, "SELECT seq FROM credit_ledger WHERE user_id = ?1 AND reference = ?2", &[user_id.into(), upgrade_reference(id).into()]).await?;
    if granted.is_some() {
        return Ok(0);
    }
    let event = Event { id: format!("reconcile:{id}"), kind: "reconciliation.plan_upgrade_missing".into(), object: invoice.clone(), created };
    if plans::invoice_paid(env, database, &event, plan, line).await? != "upgrade_granted" {
        return Ok(0); // not an upgrade that grants (a downgrade's, nothing paid)
    }
    let detail = json!({"invoice_id": id, "action": "granted"});
    findings::record(env, "plan_upgrade_missing", user_id, id, &detail).await
}

/// A plan invoice's charge with refunds at Stripe: its take-back brought to
/// the charge's whole refunded amount. Returns 1 for a new finding.
pub async fn refund(env: &Env, config: &crate::config::BillingConfig, database: &D1Database, charge: &str, seen: &ChargeRefunds, tx: &crate::payments::Transaction, window: &Window) -> Result<usize, GatewayError> {
    if seen.newest_s >= window.settled_before_s {
        return Ok(0); // its webhook may be in flight
    }
    // The window may hold only some of the charge's refunds: all of them decide.
    let (all, _) = stripe_api::list(config, "/v1/refunds", &[("charge", charge.to_string())], MAX_PAGES).await?;
    let Some(whole) = refunds_by_charge(&all).remove(charge) else { return Ok(0) };
    let event = Event {
        id: format!("reconcile:{charge}:{}", whole.refunded_minor),
        kind: "reconciliation.plan_refund_missing".into(),
        object: json!({"id": charge, "payment_intent": seen.payment_intent}),
        created: whole.newest_s,
    };
    if plans::take_back(env, database, &event, tx, whole.refunded_minor, "refunded").await? != "included_taken_back" {
        return Ok(0);
    }
    let detail = json!({"charge": charge, "invoice_id": tx.id, "refunded_minor": whole.refunded_minor, "action": "taken_back"});
    findings::record(env, "plan_refund_missing", &tx.user_id, &format!("{charge}:{}", whole.refunded_minor), &detail).await
}

/// Users' subscriptions compared with Stripe's per run.
const SUBSCRIPTIONS_PER_RUN: i64 = 50;

/// Returns (subscriptions compared, new findings).
pub async fn subscriptions(env: &Env, config: &crate::config::BillingConfig, database: &D1Database) -> Result<(usize, usize), GatewayError> {
    #[derive(serde::Deserialize)]
    struct Row {
        user_id: String,
        subscription_id: String,
    }
    let rows: Vec<Row> = db::all(
        database,
        "SELECT user_id, subscription_id FROM user_plans WHERE subscription_id IS NOT NULL ORDER BY COALESCE(checked_at, 0) LIMIT ?1",
        &[db::ms(SUBSCRIPTIONS_PER_RUN)],
    )
    .await?;
    let mut found = 0;
    for row in &rows {
        found += subscription(env, config, database, &row.user_id, &row.subscription_id).await.unwrap_or_else(|e| {
            dexto_shared::log::event("stripe_reconcile.item_failed", json!({"what": "subscription", "id": row.subscription_id, "error": format!("{e:?}")}));
            0
        });
    }
    Ok((rows.len(), found))
}

/// What of a user's plan state the comparison looks at.
fn state(plan: &Option<dexto_shared::plan_store::UserPlan>) -> Value {
    plan.as_ref().map_or(Value::Null, |p| json!({"plan_id": p.plan_id, "status": p.status, "next_plan_id": p.next_plan_id}))
}

async fn subscription(env: &Env, config: &crate::config::BillingConfig, database: &D1Database, user_id: &str, id: &str) -> Result<usize, GatewayError> {
    let before = dexto_shared::plan_store::of_user(database, user_id).await?;
    let now = dexto_shared::http::now_ms();
    db::run_idempotent(database, "UPDATE user_plans SET checked_at = ?2 WHERE user_id = ?1", &[user_id.into(), db::ms(now)]).await?;
    let Some(sub) = stripe_api::get(config, &format!("/v1/subscriptions/{}", dexto_shared::url_query::encode(id))).await? else { return Ok(0) };
    let status = sub.get("status").and_then(Value::as_str).unwrap_or("").to_string();
    match status.as_str() {
        "canceled" | "incomplete_expired" => plans::subscription_deleted(database, id, now).await?,
        _ => {
            // A stable id: another run with Stripe unchanged records nothing new.
            let price = sub.pointer("/items/data/0/price/id").and_then(Value::as_str).unwrap_or("");
            let cancel = sub.get("cancel_at_period_end").and_then(Value::as_bool).unwrap_or(false);
            if matches!(status.as_str(), "active" | "trialing") {
                crate::plan_failures::clear_past_due(database, id).await?;
            }
            let event = Event { id: format!("reconcile:{id}:{status}:{price}:{cancel}"), kind: "reconciliation.subscription".into(), object: sub.clone(), created: now / 1000 };
            plans::subscription_updated(env, database, &event).await?;
            if matches!(status.as_str(), "past_due" | "unpaid") {
                crate::plan_failures::mark_past_due(env, database, id, now).await?;
            }
        }
    }
    let after = dexto_shared::plan_store::of_user(database, user_id).await?;
    let (was, is) = (state(&before), state(&after));
    if was == is {
        return Ok(0);
    }
    let detail = json!({"subscription_id": id, "stripe_status": status, "before": was, "after": is, "action": "applied"});
    findings::record(env, "subscription_drift", user_id, &format!("{id}:{is}"), &detail).await
}
