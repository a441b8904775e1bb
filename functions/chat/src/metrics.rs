//! Per-request data points for Workers Analytics Engine (binding `METRICS`):
//! one per settled request and one per refused request, beside the structured
//! log line. Index = user id (so per-user queries are cheap); never a prompt or
//! a secret. A missing binding (a deployment without it) writes nothing.

use dexto_shared::error::GatewayError;
use dexto_shared::wallet::UsageRecord;
use worker::{AnalyticsEngineDataPointBuilder, Env};

/// A settled request.
pub fn settled(env: &Env, r: &UsageRecord, settled_by: &str) {
    let blobs = [r.request_id.as_str(), r.key_id.as_str(), r.model.as_str(), "ok", r.generation_id.as_deref().unwrap_or(""), settled_by];
    let doubles = [
        r.upstream_status.unwrap_or(0) as f64,
        r.latency_ms as f64,
        r.prompt_tokens as f64,
        r.completion_tokens as f64,
        r.user_price.0 as f64,
        r.provider_cost.0 as f64,
    ];
    write(env, &r.user_id, &blobs, &doubles);
}

/// A request refused with `err` (no charge).
pub fn refused(env: &Env, user_id: &str, request_id: &str, model: &str, err: &GatewayError, latency_ms: i64) {
    let code = err.body()["error"]["code"].as_str().unwrap_or("error").to_string();
    let blobs = [request_id, "", model, code.as_str(), "", ""];
    write(env, user_id, &blobs, &[err.status() as f64, latency_ms as f64, 0.0, 0.0, 0.0, 0.0]);
}

fn write(env: &Env, index: &str, blobs: &[&str], doubles: &[f64]) {
    let Ok(dataset) = env.analytics_engine("METRICS") else { return };
    let mut point = AnalyticsEngineDataPointBuilder::new().indexes([index]);
    for b in blobs {
        point = point.add_blob(*b);
    }
    for d in doubles {
        point = point.add_double(*d);
    }
    dexto_shared::ops::count(|o| o.analytics_points += 1);
    if let Err(e) = point.write_to(&dataset) {
        dexto_shared::log::event("metrics.write_failed", serde_json::json!({"error": e.to_string()}));
    }
}
