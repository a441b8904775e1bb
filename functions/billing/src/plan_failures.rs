//! A plan's failed payments (docs/ARCHITECTURE.md, "Plans"):
//! `invoice.payment_failed` of a period's invoice → `past_due` with
//! `PLAN_GRACE_DAYS` of grace (the period-end pass then moves the user to
//! free); a failure overtaken by its retry's payment changes nothing; the
//! reconciliation ends a `past_due` Stripe no longer has.

use crate::event::{record_event, text, Event};
use crate::plan_invoice::{event_ms, invoice_subscription, is_period_invoice, ms, PLAN_INVOICE};
use dexto_shared::db;
use dexto_shared::error::GatewayError;
use dexto_shared::http::now_ms;
use dexto_shared::plan_store;
use dexto_shared::plans::{period, DEFAULT_GRACE_DAYS};
use serde_json::Value;
use worker::{D1Database, Env};

/// A renewal that failed: `past_due`, with the grace counted from the first
/// failure. Only a period's own invoice can: a declined upgrade's proration
/// invoice (`subscription_update`) leaves the subscription on its paid plan
/// (`pending_if_incomplete`), so it changes nothing here.
pub async fn payment_failed(env: &Env, db: &D1Database, event: &Event) -> Result<&'static str, GatewayError> {
    let Some(subscription) = invoice_subscription(&event.object) else {
        record_event(db, event).await?;
        return Ok("ignored");
    };
    if !is_period_invoice(&event.object) {
        record_event(db, event).await?;
        return Ok("ignored");
    }
    if failure_overtaken(db, subscription, &event.object).await? {
        record_event(db, event).await?;
        return Ok("already_paid");
    }
    mark_past_due(env, db, subscription, event_ms(event)).await?;
    record_event(db, event).await?;
    Ok("past_due")
}

/// Whether a failed attempt was overtaken by a payment (Stripe delivers out
/// of order: a retry that succeeded may arrive first): its invoice was
/// paid after all, or a renewal's period it was for is already granted.
async fn failure_overtaken(db: &D1Database, subscription: &str, invoice: &Value) -> Result<bool, GatewayError> {
    if let Some(id) = text(invoice, "/id") {
        let paid: Option<Value> = db::first(db, "SELECT id FROM stripe_transactions WHERE id = ?1 AND kind = ?2", &[id.into(), PLAN_INVOICE.into()]).await?;
        if paid.is_some() {
            return Ok(true);
        }
    }
    let renewal = is_period_invoice(invoice);
    let failed_end = invoice.pointer("/lines/data").and_then(Value::as_array).into_iter().flatten().find_map(|l| ms(l.pointer("/period/end")));
    let granted_end = plan_store::by_subscription(db, subscription).await?.and_then(|s| s.period_end);
    Ok(renewal && failed_end.zip(granted_end).is_some_and(|(failed, granted)| failed <= granted))
}

/// Stripe says the subscription is paid up (`active`): a `past_due` here
/// (a late failure, or a retry's `invoice.paid` lost) ends.
pub async fn clear_past_due(db: &D1Database, subscription: &str) -> Result<(), GatewayError> {
    db::run_idempotent(
        db,
        "UPDATE user_plans SET status = 'active', grace_until = NULL, updated_at = ?2 WHERE subscription_id = ?1 AND status = 'past_due'",
        &[subscription.into(), db::ms(now_ms())],
    )
    .await
}

/// `past_due` from `failed_at_ms` on, for `PLAN_GRACE_DAYS` (the first failure counts).
pub async fn mark_past_due(env: &Env, db: &D1Database, subscription: &str, failed_at_ms: i64) -> Result<(), GatewayError> {
    let days = env.var("PLAN_GRACE_DAYS").ok().and_then(|v| v.to_string().parse().ok()).unwrap_or(DEFAULT_GRACE_DAYS);
    let until = period::grace_until(failed_at_ms, days);
    db::run_idempotent(
        db,
        "UPDATE user_plans SET status = 'past_due', grace_until = ?2, updated_at = ?3 WHERE subscription_id = ?1 AND status != 'past_due'",
        &[subscription.into(), db::ms(until), db::ms(now_ms())],
    )
    .await
}
