//! `/admin/plans`: plans are data (docs/ARCHITECTURE.md, "Plans"). `GET`
//! lists them, `POST` creates or replaces one by id (the whole definition),
//! `DELETE /admin/plans/{id}` removes one nobody is on (never `free`).

use crate::{audit, json_body, AdminResult, AuditCtx};
use dexto_shared::error::GatewayError;
use dexto_shared::http::{json_response, now_ms};
use dexto_shared::{db, plan_store, plans};
use serde_json::json;
use worker::{Env, Request};

fn ok(status: u16, body: &serde_json::Value) -> AdminResult {
    json_response(status, body).map_err(|e| GatewayError::Internal(e.to_string()))
}

pub async fn list(env: &Env) -> AdminResult {
    let all = plan_store::all(&db::database(env)?).await?;
    ok(200, &json!({"object": "list", "data": all.iter().map(plans::to_json).collect::<Vec<_>>()}))
}

pub async fn put(req: &mut Request, env: &Env, ctx: &AuditCtx) -> AdminResult {
    let plan = plans::from_json(&json_body(req).await?).map_err(GatewayError::BadRequest)?;
    let db = db::database(env)?;
    if let Some(price) = &plan.stripe_price_id {
        if plan_store::by_price(&db, price).await?.is_some_and(|other| other.id != plan.id) {
            return Err(GatewayError::Conflict(format!("Another plan already sells at `{price}`: one price, one plan.")));
        }
    }
    plan_store::put(&db, &plan, now_ms()).await?;
    let body = plans::to_json(&plan);
    audit(env, ctx, "plan.put", &plan.id, body.clone()).await?;
    ok(200, &body)
}

pub async fn delete(env: &Env, ctx: &AuditCtx, id: &str) -> AdminResult {
    let db = db::database(env)?;
    if plan_store::get(&db, id).await?.is_none() {
        return Err(GatewayError::NotFound(format!("No plan `{id}`.")));
    }
    if !plan_store::delete(&db, id).await? {
        return Err(GatewayError::Conflict(format!("Plan `{id}` is the free plan or has users on it; move them first.")));
    }
    audit(env, ctx, "plan.delete", id, json!({})).await?;
    ok(200, &json!({"deleted": id}))
}

/// `POST /admin/plans/periods {"as_of_ms"?, "user_id"?}`: runs the
/// period-end pass now (as the hourly cron does), for every user due or one. `as_of_ms` — the tests' clock hook — is
/// honoured only where `PLAN_TEST_CLOCK = "1"` (local test stacks).
pub async fn run_periods(req: &mut Request, env: &Env, ctx: &AuditCtx) -> AdminResult {
    let body = json_body(req).await?;
    let test_clock = env.var("PLAN_TEST_CLOCK").is_ok_and(|v| v.to_string() == "1");
    let now = match body.get("as_of_ms").and_then(serde_json::Value::as_i64) {
        Some(_) if !test_clock => return Err(GatewayError::BadRequest("`as_of_ms` is accepted only by local test stacks.".into())),
        Some(at) => at,
        None => now_ms(),
    };
    let user = body.get("user_id").and_then(serde_json::Value::as_str);
    let (expired, ended) = dexto_shared::plan_periods::run(env, now, user).await?;
    audit(env, ctx, "plan.periods", "periods", json!({"as_of_ms": now, "expired": expired, "ended": ended})).await?;
    ok(200, &json!({"expired": expired, "ended": ended}))
}
