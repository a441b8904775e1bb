//! `GET /admin/metrics?days=N` (1–90, default 7): settled requests, revenue,
//! provider cost and margin by UTC day and by model, latency p50/p95 by model,
//! requests by upstream status, and charges capped at their hold
//! (`settle_excess`) — from the usage ledger; refused chat
//! requests (never billed) by day, status and error code from `error_counts`
//! (written by the chat Worker, coalesced per isolate). Each refusal is also
//! in the Analytics Engine dataset `dexto_requests` (blob4 = error code).

use crate::AdminResult;
use dexto_shared::db;
use dexto_shared::error::GatewayError;
use dexto_shared::http::{now_ms, ok_json};
use dexto_shared::money::Micros;
use dexto_shared::time::{rfc3339, DAY_MS};
use serde_json::{json, Value};
use worker::{Env, Request};

pub async fn show(req: &Request, env: &Env) -> AdminResult {
    let pairs = dexto_shared::url_query::pairs(&req.inner().url());
    let days = match pairs.iter().find(|(k, _)| k == "days").map(|(_, v)| v.as_str()) {
        None => 7,
        Some(v) => v.parse::<i64>().ok().filter(|d| (1..=90).contains(d)).ok_or_else(|| GatewayError::BadRequest("`days` must be 1 to 90.".into()))?,
    };
    let to = now_ms() + 1;
    let from = (to / DAY_MS - days + 1) * DAY_MS;
    let db = db::database(env)?;
    let range = [db::ms(from), db::ms(to)];
    let by_day: Vec<Value> = db::all(
        &db,
        "SELECT strftime('%Y-%m-%d', created_at / 1000, 'unixepoch') AS day, COUNT(*) AS requests,
                SUM(user_price_micros) AS revenue, SUM(provider_cost_micros) AS cost
         FROM usage_ledger WHERE created_at >= ?1 AND created_at < ?2 GROUP BY day ORDER BY day",
        &range,
    )
    .await?;
    let by_model: Vec<Value> = db::all(
        &db,
        "SELECT model, COUNT(*) AS requests, SUM(user_price_micros) AS revenue, SUM(provider_cost_micros) AS cost,
                SUM(billing_status = 'needs_review' AND resolved_at IS NULL) AS needs_review,
                MAX(CASE WHEN rn <= (n * 50 + 99) / 100 THEN latency_ms END) AS p50,
                MAX(CASE WHEN rn <= (n * 95 + 99) / 100 THEN latency_ms END) AS p95
         FROM (SELECT model, user_price_micros, provider_cost_micros, billing_status, resolved_at, latency_ms,
                      ROW_NUMBER() OVER (PARTITION BY model ORDER BY latency_ms) AS rn,
                      COUNT(*) OVER (PARTITION BY model) AS n
               FROM usage_ledger WHERE created_at >= ?1 AND created_at < ?2)
         GROUP BY model ORDER BY revenue DESC, model",
        &range,
    )
    .await?;
    let by_status: Vec<Value> = db::all(
        &db,
        "SELECT upstream_status AS status, COUNT(*) AS requests FROM usage_ledger
         WHERE created_at >= ?1 AND created_at < ?2 GROUP BY upstream_status ORDER BY upstream_status",
        &range,
    )
    .await?;
    // Charges capped at their hold because the upstream reported more (the
    // `settle.excess` log line): the excess is ours, never the user's. Those
    // rows are `needs_review` priced from a report (a provisional charge is
    // priced as an `estimate`); the excess is the marked-up report beyond the
    // charge, rounded up like a charge.
    let excess: Option<Value> = db::first(
        &db,
        "SELECT COUNT(*) AS requests,
                COALESCE(SUM(MAX(0, (provider_cost_micros * COALESCE(markup_bps, 10000) + 9999) / 10000 - user_price_micros)), 0) AS excess
         FROM usage_ledger WHERE created_at >= ?1 AND created_at < ?2
           AND billing_status = 'needs_review' AND price_basis IN ('reported_cost', 'price_table')",
        &range,
    )
    .await?;
    let excess = excess.unwrap_or_default();
    // Refusals (never in the ledger): counted by the chat Worker per UTC day.
    let errors: Vec<Value> = db::all(
        &db,
        "SELECT day, status, code, count FROM error_counts WHERE day >= ?1 AND day <= ?2 ORDER BY day, status, code",
        &[dexto_shared::time::date(from).into(), dexto_shared::time::date(to - 1).into()],
    )
    .await?;
    let money = |row: &Value| {
        let (revenue, cost) = (Micros(row["revenue"].as_i64().unwrap_or(0)), Micros(row["cost"].as_i64().unwrap_or(0)));
        json!({"revenue_usd": revenue.as_json_usd(), "provider_cost_usd": cost.as_json_usd(), "margin_usd": revenue.saturating_sub(cost).as_json_usd()})
    };
    let merge = |mut base: Value, extra: Value| {
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        base
    };
    let total = by_day.iter().fold(json!({"requests": 0, "revenue": 0, "cost": 0}), |acc, d| {
        json!({
            "requests": acc["requests"].as_i64().unwrap_or(0) + d["requests"].as_i64().unwrap_or(0),
            "revenue": acc["revenue"].as_i64().unwrap_or(0) + d["revenue"].as_i64().unwrap_or(0),
            "cost": acc["cost"].as_i64().unwrap_or(0) + d["cost"].as_i64().unwrap_or(0),
        })
    });
    ok_json(
        200,
        &json!({
            "from": rfc3339(from), "to": rfc3339(to),
            "totals": merge(json!({"requests": total["requests"]}), money(&total)),
            "by_day": by_day.iter().map(|d| merge(json!({"day": d["day"], "requests": d["requests"]}), money(d))).collect::<Vec<_>>(),
            "by_model": by_model.iter().map(|m| merge(json!({
                "model": m["model"], "requests": m["requests"], "needs_review": m["needs_review"],
                "latency_p50_ms": m["p50"], "latency_p95_ms": m["p95"],
            }), money(m))).collect::<Vec<_>>(),
            "by_upstream_status": by_status,
            "errors_by_code": errors,
            "settle_excess": {"requests": excess["requests"].as_i64().unwrap_or(0), "excess_usd": Micros(excess["excess"].as_i64().unwrap_or(0)).as_json_usd()},
        }),
    )
}

/// `GET /admin/reconciliation`: what reconciliation found, newest first.
pub async fn findings(env: &Env) -> AdminResult {
    let rows: Vec<Value> = db::all(
        &db::database(env)?,
        "SELECT id, kind, user_id, detail, found_at, resolved_at FROM reconciliation_findings ORDER BY id DESC LIMIT 200",
        &[],
    )
    .await?;
    let data: Vec<Value> = rows
        .into_iter()
        .map(|mut r| {
            if let Some(text) = r["detail"].as_str() {
                r["detail"] = serde_json::from_str(text).unwrap_or(Value::Null);
            }
            r
        })
        .collect();
    ok_json(200, &json!({"data": data}))
}
