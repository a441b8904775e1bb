//! The Stripe lifecycle of plans (docs/ARCHITECTURE.md, "Plans"). Wallet
//! references (each applied once): `plan:grant:<invoice>`,
//! `plan:expire:<period end>`, `plan:upgrade:<proration invoice>`.
//! - `invoice.paid` for a plan's price: expire the previous period (if this
//!   invoice starts a later one) and grant this period's included credit, in
//!   one wallet turn; never for less than the plan's price or another currency;
//! - `customer.subscription.updated`: an upgrade takes effect now (its
//!   paid proration invoice grants the prorated difference of included
//!   credit); a downgrade waits for the next
//!   invoice (`next_plan_id`); `cancel_at_period_end` → `canceling`;
//! - `customer.subscription.deleted` → `canceling` (the period-end pass ends it);
//! - `invoice.payment_failed` → `past_due` (plan_failures.rs);
//! - a refund or lost dispute of a plan invoice → `take_back`.

use crate::event::{internal, record_event, text, unmatched, Event};
use crate::plan_invoice::{event_ms, invoice_subscription, invoice_user, is_period_invoice, ms, price_of};
use crate::payments::Transaction;
use dexto_shared::money::Micros;
use dexto_shared::db;
use dexto_shared::error::GatewayError;
use dexto_shared::http::now_ms;
use dexto_shared::plan_periods::keep;
use dexto_shared::plan_store;
use dexto_shared::plans::{period, Plan};
use dexto_shared::wallet::{PlanRequest, PlanStep};
use dexto_shared::wallet_client::WalletClient;
use serde_json::Value;
use worker::{D1Database, Env};

/// The plan an invoice pays for, with its line (None: not a plan's price).
pub async fn plan_of_invoice(db: &D1Database, invoice: &Value) -> Result<Option<(Plan, Value)>, GatewayError> {
    for line in invoice.pointer("/lines/data").and_then(Value::as_array).into_iter().flatten() {
        if let Some(plan) = match price_of(line) {
            Some(price) => plan_store::by_price(db, price).await?,
            None => None,
        } {
            return Ok(Some((plan, line.clone())));
        }
    }
    Ok(None)
}

/// Whether a paid plan invoice grants its period: Err(None) for invoices that
/// never grant (proration, $0 trial), Err(Some(why)) for ones an operator
/// must look at (another currency, less than the plan's price).
pub fn grants(plan: &Plan, obj: &Value) -> Result<(), Option<&'static str>> {
    let amount_paid = obj.pointer("/amount_paid").and_then(Value::as_i64).unwrap_or(0);
    // A period's invoice with money collected grants; proration invoices
    // (upgrades: `customer.subscription.updated` grants) and $0 trials do not.
    if !is_period_invoice(obj) || amount_paid <= 0 {
        return Err(None);
    }
    if text(obj, "/currency") != Some(plan.currency.as_str()) {
        return Err(Some("plan invoice in another currency than the plan's"));
    }
    if amount_paid < plan.price_minor {
        return Err(Some("plan invoice collected less than the plan's price"));
    }
    Ok(())
}

pub async fn invoice_paid(env: &Env, db: &D1Database, event: &Event, plan: Plan, line: Value) -> Result<&'static str, GatewayError> {
    let obj = &event.object;
    if text(obj, "/billing_reason") == Some("subscription_update") {
        return upgrade_paid(env, db, event).await;
    }
    let amount_paid = obj.pointer("/amount_paid").and_then(Value::as_i64).unwrap_or(0);
    match grants(&plan, obj) {
        Ok(()) => {}
        Err(None) => {
            record_event(db, event).await?;
            return Ok("ignored");
        }
        Err(Some(why)) => return unmatched(db, event, why).await,
    }
    let invoice = text(obj, "/id").ok_or_else(|| internal("invoice id"))?;
    let (Some(subscription), Some(user_id)) = (invoice_subscription(obj), invoice_user(obj)) else {
        return unmatched(db, event, "plan invoice without subscription or user").await;
    };
    if !db::user_exists(db, user_id).await? {
        return unmatched(db, event, "plan invoice for an unknown user").await;
    }
    let (Some(start), Some(end)) = (ms(line.pointer("/period/start")), ms(line.pointer("/period/end"))) else {
        return unmatched(db, event, "plan invoice line without a period").await;
    };
    record_plan_invoice(db, obj, invoice, user_id, amount_paid, &plan, plan.included).await?;
    let before = plan_store::of_user(db, user_id).await?;
    // Only a later period than any the plan state has seen changes the plan:
    // a redelivered or older invoice still grants (once), but must not undo
    // an upgrade, a waiting downgrade or a `past_due` that came after it.
    let seen = seen_state(db, user_id).await?;
    let newer = end > seen.end;
    // An invoice drafted before the subscription's price changed (a renewal
    // paid after an upgrade) grants what it paid for but keeps the plan.
    let drafted_ms = ms(obj.get("created")).unwrap_or(i64::MAX);
    let price_since = before.as_ref().filter(|b| b.subscription_id.as_deref() == Some(subscription) && b.plan_id != plan.id && b.next_plan_id.as_deref() != Some(plan.id.as_str()));
    let kept_plan = price_since.filter(|_| seen.subscription_event_at.is_some_and(|at| drafted_ms < at)).map(|b| b.plan_id.clone());
    let mut steps = Vec::new();
    // A renewal ends the previous period first (its rollover by the plan it
    // had), so a late expiry never eats this grant. An older invoice
    // redelivered after a newer one expires nothing.
    let previous = before.as_ref().and_then(|b| b.period_end.filter(|pe| *pe <= start).map(|pe| (pe, b.plan_id.clone())));
    if let Some((previous_end, previous_plan)) = &previous {
        let kept = plan_store::get(db, previous_plan).await?.as_ref().map_or(Default::default(), keep);
        steps.push(PlanStep::Expire { reference: period::expiry_reference(*previous_end), keep: kept });
    }
    if newer && kept_plan.is_none() {
        steps.push(PlanStep::Limits(plan.limits()));
    }
    steps.push(PlanStep::Grant {
        reference: period::grant_reference(invoice),
        amount: plan.included,
        reason: format!("{}: included credit for the period", plan.name),
        period_end: Some(end),
    });
    let outcome = WalletClient::for_user(env, user_id)?.plan(&PlanRequest { user_id: user_id.into(), now_ms: now_ms(), steps }).await?;
    let granted = if outcome.moved.last().is_some_and(Option::is_none) { "already_granted" } else { "granted" };
    if !newer {
        record_event(db, event).await?;
        return Ok(granted);
    }
    db::run_idempotent(
        db,
        "INSERT INTO user_plans (user_id, plan_id, subscription_id, status, period_start, period_end, expired_end, updated_at, customer_id)
         VALUES (?1, ?2, ?3, 'active', ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT(user_id) DO UPDATE SET plan_id = excluded.plan_id, subscription_id = excluded.subscription_id,
           customer_id = COALESCE(excluded.customer_id, user_plans.customer_id),
           status = CASE WHEN user_plans.status = 'canceling' AND user_plans.subscription_id = excluded.subscription_id THEN 'canceling' ELSE 'active' END,
           period_start = excluded.period_start, period_end = excluded.period_end, grace_until = NULL, next_plan_id = NULL,
           subscription_event_at = CASE WHEN user_plans.subscription_id = excluded.subscription_id THEN user_plans.subscription_event_at END,
           expired_end = MAX(COALESCE(user_plans.expired_end, 0), COALESCE(excluded.expired_end, 0)), updated_at = excluded.updated_at
         WHERE excluded.period_end > MAX(COALESCE(user_plans.period_end, 0), COALESCE(user_plans.expired_end, 0))",
        &[
            user_id.into(),
            kept_plan.as_deref().unwrap_or(plan.id.as_str()).into(),
            subscription.into(),
            db::ms(start),
            db::ms(end),
            previous.map_or(wasm_bindgen::JsValue::NULL, |(pe, _)| db::ms(pe)),
            db::ms(now_ms()),
            text(obj, "/customer").map_or(wasm_bindgen::JsValue::NULL, Into::into),
        ],
    )
    .await?;
    record_event(db, event).await?;
    Ok(granted)
}

/// A paid plan invoice (a period's or an upgrade's) as a transaction like a
/// top-up, so its refunds and disputes find their user and the included
/// credit it granted (`credit_micros`).
async fn record_plan_invoice(db: &D1Database, obj: &Value, invoice: &str, user_id: &str, amount_paid: i64, plan: &Plan, granted: Micros) -> Result<(), GatewayError> {
    let payment_intent = text(obj, "/payment_intent").or_else(|| text(obj, "/payments/data/0/payment/payment_intent"));
    db::run_idempotent(
        db,
        "INSERT INTO stripe_transactions (id, user_id, kind, amount_minor, currency, credit_micros, status, payment_intent, created_at, updated_at)
         VALUES (?1, ?2, 'plan_invoice', ?3, ?4, ?5, 'paid', ?6, ?7, ?7) ON CONFLICT(id) DO NOTHING",
        &[
            invoice.into(),
            user_id.into(),
            db::ms(amount_paid),
            plan.currency.as_str().into(),
            db::ms(granted.0),
            payment_intent.map_or(wasm_bindgen::JsValue::NULL, Into::into),
            db::ms(now_ms()),
        ],
    )
    .await
}

#[derive(serde::Deserialize, Default)]
struct Seen {
    /// The latest period end the plan state has seen (0: none), counting one
    /// the fall-back to the free plan cleared (`expired_end` stays).
    end: i64,
    /// When the last subscription event applied was created (ms).
    subscription_event_at: Option<i64>,
}

async fn seen_state(db: &D1Database, user_id: &str) -> Result<Seen, GatewayError> {
    let sql = "SELECT MAX(COALESCE(period_end, 0), COALESCE(expired_end, 0)) AS end, subscription_event_at FROM user_plans WHERE user_id = ?1";
    Ok(db::first(db, sql, &[user_id.into()]).await?.unwrap_or_default())
}

/// The paid proration invoice of an upgrade (`billing_reason`
/// `subscription_update`): its lines credit the unused time of the old
/// plan's price and charge the new one's for the rest of the period; the
/// prorated difference of included credit is granted once per invoice, only
/// now that it is paid (`payment_behavior=pending_if_incomplete` keeps an
/// unpaid upgrade from taking effect at Stripe).
async fn upgrade_paid(env: &Env, db: &D1Database, event: &Event) -> Result<&'static str, GatewayError> {
    let obj = &event.object;
    let (mut old, mut new, mut net) = (None, None, 0i64);
    for line in obj.pointer("/lines/data").and_then(Value::as_array).into_iter().flatten() {
        let Some(plan) = (match price_of(line) {
            Some(price) => plan_store::by_price(db, price).await?,
            None => None,
        }) else {
            continue;
        };
        let amount = line.get("amount").and_then(Value::as_i64).unwrap_or(0);
        net += amount;
        if amount < 0 {
            old = Some(plan);
        } else if amount > 0 {
            new = Some((plan, ms(line.pointer("/period/start"))));
        }
    }
    let amount_paid = obj.pointer("/amount_paid").and_then(Value::as_i64).unwrap_or(0);
    let (Some(old), Some((new, Some(start)))) = (old, new) else {
        record_event(db, event).await?;
        return Ok("ignored"); // not a change between two plans
    };
    if new.included <= old.included || amount_paid <= 0 {
        record_event(db, event).await?;
        return Ok("ignored");
    }
    if text(obj, "/currency") != Some(new.currency.as_str()) || old.currency != new.currency {
        return unmatched(db, event, "upgrade invoice in another currency than the plans'").await;
    }
    let (Some(invoice), Some(user_id)) = (text(obj, "/id"), invoice_user(obj)) else {
        return unmatched(db, event, "upgrade invoice without user").await;
    };
    if !db::user_exists(db, user_id).await? {
        return unmatched(db, event, "upgrade invoice for an unknown user").await;
    }
    let granted = period::upgrade_grant_paid(old.included, new.included, new.price_minor - old.price_minor, net.min(amount_paid));
    // A transaction like a period's invoice, so a refund or dispute of the
    // proration charge finds it and takes back its share of this grant.
    record_plan_invoice(db, obj, invoice, user_id, amount_paid, &new, granted).await?;
    let mut steps = Vec::new();
    // Before the renewal's `invoice.paid`: the previous period ends first,
    // so its expiry never eats this grant (the renewal's own replays).
    let state = plan_store::of_user(db, user_id).await?;
    let previous_end = state.as_ref().and_then(|s| s.period_end).filter(|pe| *pe <= start);
    if let Some(previous_end) = previous_end {
        steps.push(PlanStep::Expire { reference: period::expiry_reference(previous_end), keep: keep(&old) });
    }
    steps.push(PlanStep::Grant {
        reference: period::upgrade_reference(invoice),
        amount: granted,
        reason: format!("Upgrade to {}: included credit for the rest of the period", new.name),
        period_end: None, // within the current period: it renews nothing
    });
    let outcome = WalletClient::for_user(env, user_id)?.plan(&PlanRequest { user_id: user_id.into(), now_ms: now_ms(), steps }).await?;
    if let Some(previous_end) = previous_end {
        db::run_idempotent(db, "UPDATE user_plans SET expired_end = MAX(COALESCE(expired_end, 0), ?2) WHERE user_id = ?1", &[user_id.into(), db::ms(previous_end)]).await?;
    }
    record_event(db, event).await?;
    Ok(if outcome.moved.last().is_some_and(Option::is_none) { "already_granted" } else { "upgrade_granted" })
}

/// A refund (cumulative `returned_minor`) or lost dispute of a plan invoice:
/// the wallet takes back that invoice's included credit in proportion to
/// what went back, as far as it is unspent (group `plan:take_back:<invoice>`,
/// each new total once). Spent credit is not recovered from purchased credit.
pub async fn take_back(env: &Env, db: &D1Database, event: &Event, tx: &Transaction, returned_minor: i64, status: &str) -> Result<&'static str, GatewayError> {
    let target = period::take_back_target(Micros(tx.credit_micros), returned_minor, tx.amount_minor);
    let step = PlanStep::TakeBack { group: period::take_back_reference(&tx.id), target };
    let outcome = WalletClient::for_user(env, &tx.user_id)?
        .plan(&PlanRequest { user_id: tx.user_id.clone(), now_ms: now_ms(), steps: vec![step] })
        .await?;
    db::run_idempotent(
        db,
        "UPDATE stripe_transactions SET status = ?2, updated_at = ?3 WHERE id = ?1 AND status != 'disputed'",
        &[tx.id.as_str().into(), status.into(), db::ms(now_ms())],
    )
    .await?;
    record_event(db, event).await?;
    Ok(if outcome.moved.first().is_some_and(Option::is_none) { "already_taken_back" } else { "included_taken_back" })
}

/// The subscription's current period (ms): on its item (Stripe's API since
/// 2025-03-31) or on the subscription (older versions).
fn subscription_period(sub: &Value) -> Option<(i64, i64)> {
    let at = |key: &str| ms(sub.pointer(&format!("/items/data/0/{key}"))).or_else(|| ms(sub.get(key)));
    at("current_period_start").zip(at("current_period_end")).filter(|(start, end)| start < end)
}

/// Upgrade now (prorated credit once), downgrade at the next invoice,
/// cancellation at period end.
pub async fn subscription_updated(env: &Env, db: &D1Database, event: &Event) -> Result<&'static str, GatewayError> {
    let obj = &event.object;
    let subscription = text(obj, "/id").ok_or_else(|| internal("subscription id"))?;
    let Some(state) = plan_store::by_subscription(db, subscription).await? else {
        record_event(db, event).await?;
        return Ok("ignored"); // its first invoice sets the plan up
    };
    // Stripe delivers out of order: an event older than the last one applied
    // (a cancel overtaken by its un-cancel, an update after the deletion)
    // would undo newer state.
    if !claim_event_time(db, subscription, event_ms(event)).await? {
        record_event(db, event).await?;
        return Ok("stale");
    }
    let item = obj.pointer("/items/data/0").cloned().unwrap_or(Value::Null);
    let target = match price_of(&item) {
        Some(price) => plan_store::by_price(db, price).await?,
        None => None,
    };
    let canceling = obj.pointer("/cancel_at_period_end").and_then(Value::as_bool).unwrap_or(false);
    let mut outcome = "updated";
    if let (Some(target), Some(current)) = (target, plan_store::get(db, &state.plan_id).await?) {
        if target.id != current.id && target.included > current.included {
            // A renewal whose `invoice.paid` is still to come has already
            // started the subscription's current period.
            let start = subscription_period(obj).map_or(state.period_start.unwrap_or(0), |(start, _)| start);
            let mut steps = Vec::new();
            // The previous period ends first (as the renewal would), so its
            // expiry never eats this grant; the renewal's own expiry replays.
            let previous_end = state.period_end.filter(|pe| *pe <= start);
            if let Some(previous_end) = previous_end {
                steps.push(PlanStep::Expire { reference: period::expiry_reference(previous_end), keep: keep(&current) });
            }
            // The prorated credit comes with the paid proration invoice (`upgrade_paid`).
            steps.push(PlanStep::Limits(target.limits()));
            WalletClient::for_user(env, &state.user_id)?.plan(&PlanRequest { user_id: state.user_id.clone(), now_ms: now_ms(), steps }).await?;
            db::run_idempotent(
                db,
                "UPDATE user_plans SET plan_id = ?2, next_plan_id = NULL, updated_at = ?3, expired_end = MAX(COALESCE(expired_end, 0), COALESCE(?4, 0)) WHERE user_id = ?1",
                &[state.user_id.as_str().into(), target.id.as_str().into(), db::ms(now_ms()), previous_end.map_or(wasm_bindgen::JsValue::NULL, db::ms)],
            )
            .await?;
            outcome = "upgraded";
        } else if target.id != current.id {
            db::run_idempotent(db, "UPDATE user_plans SET next_plan_id = ?2, updated_at = ?3 WHERE user_id = ?1", &[state.user_id.as_str().into(), target.id.as_str().into(), db::ms(now_ms())]).await?;
            outcome = "downgrade_at_period_end";
        }
    }
    let status = match (canceling, state.status.as_str()) {
        (true, "active") => Some("canceling"),
        (false, "canceling") => Some("active"),
        _ => None,
    };
    if let Some(status) = status {
        db::run_idempotent(db, "UPDATE user_plans SET status = ?2, updated_at = ?3 WHERE user_id = ?1", &[state.user_id.as_str().into(), status.into(), db::ms(now_ms())]).await?;
        if canceling {
            outcome = "cancel_at_period_end";
        }
    }
    record_event(db, event).await?;
    Ok(outcome)
}

/// The subscription is gone: the plan lasts until its period end (and no
/// older update brings it back).
pub async fn subscription_deleted(db: &D1Database, subscription: &str, event_ms: i64) -> Result<(), GatewayError> {
    db::run_idempotent(
        db,
        "UPDATE user_plans SET status = 'canceling', subscription_event_at = MAX(COALESCE(subscription_event_at, 0), ?3), updated_at = ?2 WHERE subscription_id = ?1",
        &[subscription.into(), db::ms(now_ms()), db::ms(event_ms)],
    )
    .await
}

/// Records `at_ms` as the subscription's last applied event time unless a
/// later one was applied; false: the event is older (stale).
async fn claim_event_time(db: &D1Database, subscription: &str, at_ms: i64) -> Result<bool, GatewayError> {
    let claimed: Option<Value> = db::returning(
        db,
        "UPDATE user_plans SET subscription_event_at = ?2 WHERE subscription_id = ?1 AND COALESCE(subscription_event_at, 0) <= ?2 RETURNING user_id",
        &[subscription.into(), db::ms(at_ms)],
    )
    .await?;
    Ok(claimed.is_some())
}
