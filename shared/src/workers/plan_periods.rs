//! The period-end pass (docs/ARCHITECTURE.md, "Plans"): for every user whose
//! period has ended, the wallet expires the included credit that does not
//! roll over (reference `plan:expire:<period end>`, shared with a renewal's
//! `invoice.paid`: whichever comes first applies it); a `canceling`
//! subscription at its period end, and a `past_due` one past its grace,
//! falls back to the free plan (its remaining included credit expires).
//! Run by the chat Worker's hourly cron and `POST /admin/plans/periods`.

use super::{db, plan_store, wallet_client::WalletClient};
use crate::error::GatewayError;
use crate::money::Micros;
use crate::plans::{period, Plan, FREE_PLAN};
use crate::wallet::{PlanRequest, PlanStep};
use serde::Deserialize;
use worker::{D1Database, Env};

/// Users visited per run (the rest wait for the next run).
const PAGE: i64 = 50;

#[derive(Deserialize)]
struct Due {
    user_id: String,
    plan_id: String,
    status: String,
    period_end: Option<i64>,
    grace_until: Option<i64>,
    expired_end: Option<i64>,
}

/// What survives a period end on `plan`.
pub fn keep(plan: &Plan) -> Micros {
    if plan.rollover { plan.rollover_cap } else { Micros::ZERO }
}

/// Runs the pass as of `now_ms` (for one user, or every user due); answers
/// how many periods it expired and how many users it moved to the free plan.
pub async fn run(env: &Env, now_ms: i64, only_user: Option<&str>) -> Result<(u32, u32), GatewayError> {
    let db = db::database(env)?;
    let due: Vec<Due> = db::all(
        &db,
        "SELECT user_id, plan_id, status, period_end, grace_until, expired_end FROM user_plans
         WHERE ((period_end <= ?1 AND (expired_end IS NULL OR expired_end < period_end))
            OR (status = 'canceling' AND period_end <= ?1)
            OR (status = 'past_due' AND grace_until <= ?1))
           AND (?3 IS NULL OR user_id = ?3)
         ORDER BY period_end LIMIT ?2",
        &[db::ms(now_ms), db::ms(PAGE), only_user.map_or(worker::wasm_bindgen::JsValue::NULL, Into::into)],
    )
    .await?;
    let (mut expired, mut ended, mut first_error) = (0, 0, None);
    // One user's failure (their wallet, D1 for a moment) is logged and left
    // to the next run: the others' periods still end on time.
    for user in due {
        match visit(env, &db, &user, now_ms).await {
            Ok((e, f)) => (expired, ended) = (expired + e as u32, ended + f as u32),
            Err(e) => {
                crate::log::event("plans.period_failed", serde_json::json!({"user_id": user.user_id, "error": format!("{e:?}")}));
                first_error.get_or_insert(e);
            }
        }
    }
    // A pass for one user answers for that user.
    match (only_user, first_error) {
        (Some(_), Some(e)) => Err(e),
        _ => Ok((expired, ended)),
    }
}

/// One user's period end and fall-back: whether it expired a period, and
/// whether it moved the user to the free plan.
async fn visit(env: &Env, db: &D1Database, user: &Due, now_ms: i64) -> Result<(bool, bool), GatewayError> {
    let plan = plan_store::get(db, &user.plan_id).await?;
    let mut steps = Vec::new();
    let end = user.period_end.unwrap_or(0);
    let period_over = user.period_end.is_some_and(|e| e <= now_ms) && user.expired_end.is_none_or(|x| x < end);
    if period_over {
        let keep = plan.as_ref().map_or(Micros::ZERO, keep);
        steps.push(PlanStep::Expire { reference: period::expiry_reference(end), keep });
    }
    let falls_back = (user.status == "canceling" && end <= now_ms) || (user.status == "past_due" && user.grace_until.is_some_and(|g| g <= now_ms));
    if falls_back {
        // Read from D1 before the wallet's turn: a renewal paid in between
        // (its grant already in the wallet) keeps the plan.
        steps.push(PlanStep::StopIfRenewedAfter { period_end: end });
        // Leaving the plan: nothing of its included credit stays.
        steps.push(PlanStep::Expire { reference: period::leaving_reference(user.grace_until.unwrap_or(end).max(end)), keep: Micros::ZERO });
        steps.push(PlanStep::FreeLimits);
    }
    let outcome = WalletClient::for_user(env, &user.user_id)?
        .plan(&PlanRequest { user_id: user.user_id.clone(), now_ms, steps })
        .await?;
    if period_over {
        mark_expired(db, &user.user_id, end).await?;
    }
    let ends = falls_back && !outcome.stopped;
    if ends {
        to_free(db, &user.user_id, &user.status, user.grace_until, end, now_ms).await?;
    }
    Ok((period_over, ends))
}

async fn mark_expired(db: &D1Database, user_id: &str, end: i64) -> Result<(), GatewayError> {
    db::run_idempotent(
        db,
        "UPDATE user_plans SET expired_end = ?2 WHERE user_id = ?1 AND (expired_end IS NULL OR expired_end < ?2)",
        &[user_id.into(), db::ms(end)],
    )
    .await
}

/// The account is on the free plan from now on (no subscription, no
/// period) — only if it is still in the state the pass read: a renewal's
/// `invoice.paid` or a cleared `past_due` in between keeps the plan.
async fn to_free(db: &D1Database, user_id: &str, status: &str, grace_until: Option<i64>, period_end: i64, now_ms: i64) -> Result<(), GatewayError> {
    db::run_idempotent(
        db,
        "UPDATE user_plans SET plan_id = ?2, subscription_id = NULL, status = 'active', period_start = NULL, period_end = NULL,
           grace_until = NULL, next_plan_id = NULL, updated_at = ?3
         WHERE user_id = ?1 AND status = ?4 AND COALESCE(period_end, 0) = ?5 AND COALESCE(grace_until, 0) = ?6",
        &[user_id.into(), FREE_PLAN.into(), db::ms(now_ms), status.into(), db::ms(period_end), db::ms(grace_until.unwrap_or(0))],
    )
    .await
}
