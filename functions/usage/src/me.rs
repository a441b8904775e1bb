//! `GET /me/usage` and `GET /api/account/usage`: one object that satisfies the
//! CLI's shape and the plan's (see shared/src/usage_report.rs).
//!
//! The balance is the wallet object's, not the D1 `balances` mirror: the
//! mirror is written by the wallet's outbox after each change and can lag it
//! (or trail it while a flush is retried). `/state` flushes that outbox before
//! answering, so the month-to-date read that follows includes every settled
//! request and agrees with the balance to the micro-dollar. Cost: one DO call
//! (and, for a user with a direct OpenRouter key, a management API read:
//! `direct_key`).

use crate::db::{all, database, d1_error, statement};
use crate::UsageResult;
use dexto_shared::error::GatewayError;
use dexto_shared::http::{json_response, now_ms};
use dexto_shared::usage_query::{history, summary, Filters, GroupBy, TimeRange};
use dexto_shared::usage_report::{me_usage, GroupTotal, LedgerRow};
use dexto_shared::wallet_client::WalletClient;
use worker::Env;

const RECENT: u32 = 10;

pub async fn usage(env: &Env, user_id: &str) -> UsageResult {
    let wallet = WalletClient::for_user(env, user_id)?.state().await?;
    let mtd = TimeRange::month_to_date(now_ms());
    let db = database(env)?;
    let by_model = summary(user_id, mtd, GroupBy::Model);
    let recent = history(user_id, TimeRange { from_ms: 0, to_ms: mtd.to_ms }, &Filters::default(), None, RECENT);
    // Both reads in one round trip.
    let results = dexto_shared::db::batch(&db, vec![statement(&db, &by_model)?, statement(&db, &recent)?], dexto_shared::db::Retry::Idempotent).await?;
    let (by_model, recent): (Vec<GroupTotal>, Vec<LedgerRow>) = match results.as_slice() {
        [a, b] => (a.results().map_err(d1_error)?, b.results().map_err(d1_error)?),
        _ => (all(&db, &by_model).await?, all(&db, &recent).await?),
    };
    let mut body = me_usage(wallet.balance, mtd.from_ms, &by_model, &recent);
    dexto_shared::plan_store::add_plan_fields(&db, &mut body, user_id, wallet.balance, wallet.included).await?;
    body["direct_key"] = direct_key(env, user_id).await;
    json_response(200, &body).map_err(|e| GatewayError::Internal(e.to_string()))
}

/// The direct OpenRouter key's funding and spending, from the upstream's own
/// counters (its calls never pass here, so no per-request rows exist). A
/// failing management API leaves the rest of the answer standing.
async fn direct_key(env: &Env, user_id: &str) -> serde_json::Value {
    dexto_shared::direct_keys::status(env, user_id).await.unwrap_or_else(|e| {
        dexto_shared::log::event("usage.direct_key_unavailable", serde_json::json!({"user_id": user_id, "error": format!("{e:?}")}));
        serde_json::json!({"exists": true, "source": "direct key", "unavailable": true})
    })
}
