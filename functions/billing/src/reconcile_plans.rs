//! Stripe reconciliation of plan invoices (docs/ARCHITECTURE.md, "Plans"
//! and "Reconciliation"): a paid invoice of a plan's price, in the look-back
//! window and older than the grace, that should grant its period but whose
//! grant (`plan:grant:<invoice>`) is not in the ledger is a finding
//! (`plan_invoice_missing`), **granted** through the webhook's own path
//! (`plans::invoice_paid`, event id `reconcile:<invoice>`): the wallet applies
//! the reference once, so a late webhook or another run is a replay.

use crate::events::Event;
use crate::plans;
use crate::stripe_api;
use dexto_shared::db;
use dexto_shared::error::GatewayError;
use dexto_shared::findings;
use dexto_shared::plans::period::grant_reference;
use dexto_shared::stripe_reconcile::Window;
use dexto_shared::wallet_client::WalletClient;
use serde_json::{json, Value};
use worker::{D1Database, Env};

/// Paid invoices read and checked; returns (invoices read, new findings).
pub async fn run(env: &Env, config: &crate::config::BillingConfig, database: &D1Database, window: &Window, max_pages: usize) -> Result<(usize, usize), GatewayError> {
    let params = [("created[gte]", window.from_s.to_string()), ("status", "paid".to_string())];
    let (invoices, more) = stripe_api::list(config, "/v1/invoices", &params, max_pages).await?;
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
    let (Some(id), Some(user_id)) = (invoice.get("id").and_then(Value::as_str), plans::invoice_user(invoice)) else { return Ok(0) };
    if plans::grants(&plan, invoice).is_err() || !db::user_exists(database, user_id).await? {
        return Ok(0); // never grants, or the webhook's audit row covers it
    }
    // Flushed first: a grant only waiting for its projection is not missing.
    WalletClient::for_user(env, user_id)?.state().await?;
    let granted: Option<Value> = db::first(database, "SELECT seq FROM credit_ledger WHERE user_id = ?1 AND reference = ?2", &[user_id.into(), grant_reference(id).into()]).await?;
    if granted.is_some() {
        return Ok(0);
    }
    let detail = json!({"invoice_id": id, "plan_id": plan.id, "included_micros": plan.included.0, "action": "granted"});
    let found = findings::record(env, "plan_invoice_missing", user_id, id, &detail).await?;
    let event = Event { id: format!("reconcile:{id}"), kind: "reconciliation.plan_invoice_missing".into(), object: invoice.clone(), created };
    plans::invoice_paid(env, database, &event, plan, line).await?;
    Ok(found)
}
