//! Plans and users' plans in D1 (`plans`, `user_plans`; migration 0021).
//! The pure part (what a plan is, the arithmetic) is `crate::plans`.

use super::db;
use crate::error::GatewayError;
use crate::money::Micros;
use crate::plans::{Plan, FREE_PLAN};
use serde::Deserialize;
use worker::wasm_bindgen::JsValue;
use worker::D1Database;

#[derive(Deserialize)]
struct Row {
    id: String,
    name: String,
    stripe_price_id: Option<String>,
    price_minor: i64,
    currency: String,
    included_micros: i64,
    rollover: i64,
    rollover_cap_micros: i64,
    rate_limit_per_minute: Option<i64>,
    max_concurrent: Option<i64>,
    monthly_cap_micros: Option<i64>,
    models: Option<String>,
}

const COLUMNS: &str = "id, name, stripe_price_id, price_minor, currency, included_micros, rollover, rollover_cap_micros,
    rate_limit_per_minute, max_concurrent, monthly_cap_micros, models";

impl Row {
    fn plan(self) -> Plan {
        Plan {
            id: self.id,
            name: self.name,
            stripe_price_id: self.stripe_price_id,
            price_minor: self.price_minor,
            currency: self.currency,
            included: Micros(self.included_micros),
            rollover: self.rollover != 0,
            rollover_cap: Micros(self.rollover_cap_micros),
            rate_limit_per_minute: self.rate_limit_per_minute.map(|n| n as u32),
            max_concurrent: self.max_concurrent.map(|n| n as u32),
            monthly_cap: self.monthly_cap_micros.map(Micros),
            models: self.models.and_then(|m| serde_json::from_str(&m).ok()),
        }
    }
}

fn opt_i64(v: Option<i64>) -> JsValue {
    v.map_or(JsValue::NULL, db::ms)
}

pub async fn all(db: &D1Database) -> Result<Vec<Plan>, GatewayError> {
    let rows: Vec<Row> = db::all(db, &format!("SELECT {COLUMNS} FROM plans ORDER BY included_micros, id"), &[]).await?;
    Ok(rows.into_iter().map(Row::plan).collect())
}

pub async fn get(db: &D1Database, id: &str) -> Result<Option<Plan>, GatewayError> {
    let row: Option<Row> = db::first(db, &format!("SELECT {COLUMNS} FROM plans WHERE id = ?1"), &[id.into()]).await?;
    Ok(row.map(Row::plan))
}

pub async fn by_price(db: &D1Database, price: &str) -> Result<Option<Plan>, GatewayError> {
    let row: Option<Row> = db::first(db, &format!("SELECT {COLUMNS} FROM plans WHERE stripe_price_id = ?1"), &[price.into()]).await?;
    Ok(row.map(Row::plan))
}

/// Creates or replaces a plan (by id).
pub async fn put(db: &D1Database, p: &Plan, now_ms: i64) -> Result<(), GatewayError> {
    let models = p.models.as_ref().map_or(JsValue::NULL, |m| serde_json::to_string(m).unwrap_or_default().into());
    db::run_idempotent(
        db,
        "INSERT INTO plans (id, name, stripe_price_id, price_minor, currency, included_micros, rollover, rollover_cap_micros,
           rate_limit_per_minute, max_concurrent, monthly_cap_micros, models, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13)
         ON CONFLICT(id) DO UPDATE SET name = excluded.name, stripe_price_id = excluded.stripe_price_id,
           price_minor = excluded.price_minor, currency = excluded.currency, included_micros = excluded.included_micros,
           rollover = excluded.rollover, rollover_cap_micros = excluded.rollover_cap_micros,
           rate_limit_per_minute = excluded.rate_limit_per_minute, max_concurrent = excluded.max_concurrent,
           monthly_cap_micros = excluded.monthly_cap_micros, models = excluded.models, updated_at = excluded.updated_at",
        &[
            p.id.as_str().into(),
            p.name.as_str().into(),
            p.stripe_price_id.as_deref().map_or(JsValue::NULL, Into::into),
            db::ms(p.price_minor),
            p.currency.as_str().into(),
            db::ms(p.included.0),
            db::ms(p.rollover as i64),
            db::ms(p.rollover_cap.0),
            opt_i64(p.rate_limit_per_minute.map(i64::from)),
            opt_i64(p.max_concurrent.map(i64::from)),
            opt_i64(p.monthly_cap.map(|m| m.0)),
            models,
            db::ms(now_ms),
        ],
    )
    .await
}

/// A user's plan and subscription state (no row: the free plan).
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
pub struct UserPlan {
    pub user_id: String,
    pub plan_id: String,
    pub subscription_id: Option<String>,
    pub status: String,
    pub period_start: Option<i64>,
    pub period_end: Option<i64>,
    pub grace_until: Option<i64>,
    pub next_plan_id: Option<String>,
    #[serde(default)]
    pub customer_id: Option<String>,
}

const USER_PLAN: &str = "SELECT user_id, plan_id, subscription_id, status, period_start, period_end, grace_until, next_plan_id, customer_id FROM user_plans";

pub async fn of_user(db: &D1Database, user_id: &str) -> Result<Option<UserPlan>, GatewayError> {
    db::first(db, &format!("{USER_PLAN} WHERE user_id = ?1"), &[user_id.into()]).await
}

/// The user on a Stripe subscription, if any.
pub async fn by_subscription(db: &D1Database, subscription: &str) -> Result<Option<UserPlan>, GatewayError> {
    db::first(db, &format!("{USER_PLAN} WHERE subscription_id = ?1"), &[subscription.into()]).await
}

/// The plan a user is on now (the free plan without a subscription, or when
/// their plan was deleted).
pub async fn current(db: &D1Database, user_id: &str) -> Result<(Plan, Option<UserPlan>), GatewayError> {
    let state = of_user(db, user_id).await?;
    let id = state.as_ref().map_or(FREE_PLAN, |s| s.plan_id.as_str());
    let plan = match get(db, id).await? {
        Some(p) => p,
        None => get(db, FREE_PLAN).await?.ok_or_else(|| GatewayError::Internal("plans: the free plan is missing".into()))?,
    };
    Ok((plan, state))
}

/// Deletes a plan no user is on (the free plan stays).
pub async fn delete(db: &D1Database, id: &str) -> Result<bool, GatewayError> {
    #[derive(Deserialize)]
    struct N {
        n: i64,
    }
    let used: Option<N> = db::first(db, "SELECT COUNT(*) AS n FROM user_plans WHERE plan_id = ?1 OR next_plan_id = ?1", &[id.into()]).await?;
    if id == FREE_PLAN || used.is_some_and(|u| u.n > 0) {
        return Ok(false);
    }
    db::run_idempotent(db, "DELETE FROM plans WHERE id = ?1", &[id.into()]).await?;
    Ok(true)
}

/// The plan as a user sees it (`/me/usage`, `/api/billing/balance`, the
/// dashboard): what it includes, the period and when included credit resets.
pub fn summary(plan: &Plan, state: Option<&UserPlan>) -> serde_json::Value {
    let state_of = |f: fn(&UserPlan) -> Option<i64>| state.and_then(f);
    serde_json::json!({
        "id": plan.id,
        "name": plan.name,
        "status": state.map_or("active", |s| s.status.as_str()),
        "included_usd": plan.included.as_json_usd(),
        "rollover": plan.rollover,
        "rollover_cap_usd": plan.rollover_cap.as_json_usd(),
        "period_start": state_of(|s| s.period_start),
        "period_end": state_of(|s| s.period_end),
        "included_resets_at": state_of(|s| s.period_end),
        "grace_until": state_of(|s| s.grace_until),
        "next_plan_id": state.and_then(|s| s.next_plan_id.clone()),
        "models": plan.models,
    })
}

/// Adds to a balance answer (`/me/usage`, `/api/billing/balance`, whose
/// `credits_usd` stays the spendable total) the split of the balance and the
/// user's plan.
pub async fn add_plan_fields(db: &D1Database, body: &mut serde_json::Value, user_id: &str, balance: Micros, included: Micros) -> Result<(), GatewayError> {
    for (k, v) in crate::plans::credit_fields(balance, included).as_object().into_iter().flatten() {
        body[k] = v.clone();
    }
    let (plan, state) = current(db, user_id).await?;
    body["plan"] = summary(&plan, state.as_ref());
    Ok(())
}
