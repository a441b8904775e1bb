//! Provisional charges without a generation id (part of the hourly pass,
//! after `usage_review.rs`): the owner died before the upstream named the
//! generation (a deploy during a non-stream call), so the sweep charged the
//! whole hold and no record can price it. The user's upstream key is theirs
//! alone: what it has spent (management API), minus the provider cost the
//! ledger already knows for the other requests made with it, bounds the true
//! cost of the open provisional rows together (`shared/src/usage_bound.rs`).
//! Per user, once its rows are `USAGE_REVIEW_MIN_AGE_SECONDS` old (the key's
//! counter lags; only rows settled before that cut count as known):
//! - the bound lowers the charges: each row is claimed with its share (a
//!   guarded UPDATE: `review_outcome = 'bounded'`, true price and cost, the
//!   refund), then refunded through the wallet (`/credit`, reference
//!   `usage_correction:<request id>`: a replay is a no-op), a `usage_bounded`
//!   finding, resolved. A claimed row is finished by the next pass if this one
//!   dies, with the amounts it was claimed with;
//! - no bound: no per-user key, a request begun before the key was rotated,
//!   no markup on the row, the management API failing on two visits, or a
//!   bound that lowers nothing (spending outside the gateway, or calls that
//!   really cost their hold) — a `usage_unverifiable` finding with the reason,
//!   the row left open and looked at again after `RECHECK_MS`.

use crate::config::Config;
use crate::usage_review::{mark_checked, refund_usage, report_unverifiable, RECHECK_FOR_MS, RECHECK_MS};
use dexto_shared::db;
use dexto_shared::error::GatewayError;
use dexto_shared::findings::record;
use dexto_shared::http::now_ms;
use dexto_shared::money::{Markup, Micros};
use dexto_shared::usage_bound::{allocate, cost_bound, Provisional};
use serde::Deserialize;
use serde_json::json;
use worker::{D1Database, Env};

/// Users looked at per pass (each one management API call).
const PAGE: i64 = 50;
/// Open provisional rows of one user bounded together per pass.
const ROWS_PER_USER: i64 = 100;

#[derive(Deserialize)]
struct Open {
    request_id: String,
    user_price_micros: i64,
    markup_bps: Option<i64>,
    created_at: i64,
    latency_ms: i64,
    review_checked_at: Option<i64>,
}

impl Open {
    fn started_at(&self) -> i64 {
        self.created_at - self.latency_ms
    }

    fn detail(&self) -> serde_json::Value {
        json!({"request_id": self.request_id, "generation_id": null, "price_basis": "estimate", "charged_micros": self.user_price_micros})
    }
}

/// Returns (users looked at, new findings).
pub async fn run(env: &Env) -> Result<(usize, usize), GatewayError> {
    let database = db::database(env)?;
    let now = now_ms();
    let settled_before = now - Config::from_env(env).usage_review_min_age_ms;
    #[derive(Deserialize)]
    struct User {
        user_id: String,
    }
    let users: Vec<User> = db::all(
        &database,
        "SELECT DISTINCT user_id FROM usage_ledger INDEXED BY usage_review_queue
         WHERE billing_status = 'needs_review' AND resolved_at IS NULL AND generation_id IS NULL
           AND created_at <= ?1 AND created_at >= ?2 AND (review_checked_at IS NULL OR review_checked_at <= ?3)
         LIMIT ?4",
        &[db::ms(settled_before), db::ms(now - RECHECK_FOR_MS), db::ms(now - RECHECK_MS), db::ms(PAGE)],
    )
    .await?;
    let mut found = 0;
    for user in &users {
        match bound_user(env, &database, &user.user_id, settled_before, now).await {
            Ok(n) => found += n,
            // Looked at again next pass (nothing was marked checked).
            Err(e) => dexto_shared::log::event("usage_bound.failed", json!({"user_id": user.user_id, "error": format!("{e:?}")})),
        }
    }
    Ok((users.len(), found))
}

async fn bound_user(env: &Env, database: &D1Database, user_id: &str, settled_before: i64, now: i64) -> Result<usize, GatewayError> {
    let mut found = finish_claimed(env, database, user_id, now).await?;
    let rows: Vec<Open> = db::all(
        database,
        "SELECT request_id, user_price_micros, markup_bps, created_at, latency_ms, review_checked_at FROM usage_ledger
         WHERE user_id = ?1 AND billing_status = 'needs_review' AND resolved_at IS NULL AND generation_id IS NULL
           AND review_outcome IS NULL AND created_at <= ?2
         ORDER BY created_at, request_id LIMIT ?3",
        &[user_id.into(), db::ms(settled_before), db::ms(ROWS_PER_USER)],
    )
    .await?;
    if rows.is_empty() {
        return Ok(found);
    }
    let (spent, since) = match dexto_shared::openrouter_keys::reported_usage(env, user_id).await {
        Ok(Some(key)) => key,
        Ok(None) => return report_all(env, database, user_id, &rows, "no_user_upstream_key", now).await.map(|n| n + found),
        Err(e) => {
            dexto_shared::log::event("usage_bound.key_usage_unavailable", json!({"user_id": user_id, "error": format!("{e:?}")}));
            // Reported once it fails again on a later visit; an outage may pass.
            for row in &rows {
                match row.review_checked_at {
                    Some(_) => found += report_unverifiable(env, database, user_id, &row.request_id, row.detail(), "upstream_key_usage_unavailable", now).await?,
                    None => mark_checked(database, &row.request_id, now).await?,
                }
            }
            return Ok(found);
        }
    };
    // A request begun before the user's last key rotation (or settled before
    // this key existed) spent on another key, whose counter this is not.
    let rotated = last_rotation(database, user_id).await?;
    let on_this_key = |r: &Open| r.started_at() > rotated && r.created_at >= since;
    let (rows, unbounded): (Vec<Open>, Vec<Open>) = rows.into_iter().partition(|r| r.markup_bps.is_some() && on_this_key(r));
    for row in &unbounded {
        let reason = if row.markup_bps.is_none() { "markup_unknown" } else { "upstream_key_replaced" };
        found += report_unverifiable(env, database, user_id, &row.request_id, row.detail(), reason, now).await?;
    }
    if rows.is_empty() {
        return Ok(found);
    }
    let known = known_cost(database, user_id, (since, rotated), settled_before).await?;
    let bound = cost_bound(spent, Micros(known.cost), known.rows as u64);
    let charges: Vec<Provisional> = rows
        .iter()
        .map(|r| Provisional { charged: Micros(r.user_price_micros), markup: Markup::from_bps(r.markup_bps.unwrap_or(10_000) as u32) })
        .collect();
    let shares = allocate(bound, &charges);
    let figures = json!({"key_spent_usd": spent.usd_decimal(), "known_cost_micros": known.cost, "known_rows": known.rows, "bound_usd": bound.usd_decimal()});
    if shares.iter().all(|s| s.refund == Micros::ZERO) {
        if known.recent > 0 {
            // Calls settled since the cut are in the counter but not in the
            // known cost: the bound is loose now; a quieter pass may do better.
            return Ok(found);
        }
        for row in &rows {
            let mut detail = row.detail();
            detail["bound"] = figures.clone();
            found += report_unverifiable(env, database, user_id, &row.request_id, detail, "bound_not_below_charge", now).await?;
        }
        return Ok(found);
    }
    dexto_shared::log::event("usage_bound.computed", json!({"user_id": user_id, "rows": rows.len(), "figures": figures}));
    for (row, share) in rows.iter().zip(&shares) {
        // Claimed once: a concurrent or later pass keeps these amounts.
        db::run_idempotent(
            database,
            "UPDATE usage_ledger SET review_outcome = 'bounded', true_price_micros = ?1, true_cost_micros = ?2, corrected_micros = ?3
             WHERE request_id = ?4 AND resolved_at IS NULL AND review_outcome IS NULL",
            &[db::ms(share.price.0), db::ms(share.cost.0), db::ms(share.refund.0), row.request_id.as_str().into()],
        )
        .await?;
    }
    Ok(found + finish_claimed(env, database, user_id, now).await?)
}

/// Refunds and resolves the user's claimed rows, with the amounts they were
/// claimed with. Credit first (idempotent by reference), then the finding,
/// then the resolution: a pass that dies half-way is finished by the next.
async fn finish_claimed(env: &Env, database: &D1Database, user_id: &str, now: i64) -> Result<usize, GatewayError> {
    #[derive(Deserialize)]
    struct Claimed {
        request_id: String,
        user_price_micros: i64,
        true_price_micros: i64,
        true_cost_micros: i64,
        corrected_micros: i64,
    }
    let claimed: Vec<Claimed> = db::all(
        database,
        "SELECT request_id, user_price_micros, true_price_micros, true_cost_micros, corrected_micros FROM usage_ledger
         WHERE user_id = ?1 AND billing_status = 'needs_review' AND resolved_at IS NULL AND review_outcome = 'bounded'",
        &[user_id.into()],
    )
    .await?;
    let mut found = 0;
    for row in &claimed {
        let (charged, price, refund) = (Micros(row.user_price_micros), Micros(row.true_price_micros), Micros(row.corrected_micros));
        if refund > Micros::ZERO {
            let reason = format!("charged {} provisionally; the upstream key's spending bounds it at {}", charged.usd_fixed(), price.usd_fixed());
            refund_usage(env, user_id, &row.request_id, refund, &reason, now).await?;
            let detail = json!({
                "request_id": row.request_id, "charged_micros": charged.0, "true_price_micros": price.0,
                "true_cost_micros": row.true_cost_micros, "refund_micros": refund.0, "basis": "upstream_key_spending",
            });
            found += record(env, "usage_bounded", user_id, &row.request_id, &detail).await?;
        }
        db::run_idempotent(
            database,
            "UPDATE usage_ledger SET resolved_at = ?1, review_checked_at = ?1 WHERE request_id = ?2 AND resolved_at IS NULL",
            &[db::ms(now), row.request_id.as_str().into()],
        )
        .await?;
        dexto_shared::log::event("usage_bound.resolved", json!({"request_id": row.request_id, "user_id": user_id, "charged_micros": charged.0, "true_price_micros": price.0, "refund_micros": refund.0}));
    }
    Ok(found)
}

async fn report_all(env: &Env, database: &D1Database, user_id: &str, rows: &[Open], reason: &str, now: i64) -> Result<usize, GatewayError> {
    let mut found = 0;
    for row in rows {
        found += report_unverifiable(env, database, user_id, &row.request_id, row.detail(), reason, now).await?;
    }
    Ok(found)
}

/// When the user's upstream key was last replaced (0: never).
async fn last_rotation(database: &D1Database, user_id: &str) -> Result<i64, GatewayError> {
    #[derive(Deserialize)]
    struct Retired {
        at: Option<i64>,
    }
    let retired: Option<Retired> = db::first(
        database,
        "SELECT MAX(retired_at) AS at FROM upstream_keys WHERE user_id = ?1 AND status = 'retired'",
        &[user_id.into()],
    )
    .await?;
    Ok(retired.and_then(|r| r.at).unwrap_or(0))
}

/// The provider cost the ledger knows exactly for requests made with the
/// current key (settled since it was minted, begun after the last rotation)
/// and settled before the cut: billed rows
/// at their reported cost, resolved rows at their true cost — as the
/// key-spending comparison counts them (`reconcile.rs`). `recent`: rows
/// settled after the cut (their cost may be in the counter already).
struct Known {
    cost: i64,
    rows: i64,
    recent: i64,
}

async fn known_cost(database: &D1Database, user_id: &str, (minted, rotated): (i64, i64), settled_before: i64) -> Result<Known, GatewayError> {
    #[derive(Deserialize)]
    struct Sums {
        cost: Option<i64>,
        rows: Option<i64>,
        recent: Option<i64>,
    }
    let sums: Option<Sums> = db::first(
        database,
        "SELECT SUM(CASE WHEN created_at > ?3 THEN 0 WHEN resolved_at IS NOT NULL THEN true_cost_micros
                         WHEN billing_status = 'billed' THEN provider_cost_micros ELSE 0 END) AS cost,
                SUM(CASE WHEN created_at <= ?3 AND (resolved_at IS NOT NULL OR billing_status = 'billed') THEN 1 ELSE 0 END) AS rows,
                SUM(CASE WHEN created_at > ?3 THEN 1 ELSE 0 END) AS recent
         FROM usage_ledger WHERE user_id = ?1 AND created_at >= ?2 AND created_at - latency_ms > ?4",
        &[user_id.into(), db::ms(minted), db::ms(settled_before), db::ms(rotated)],
    )
    .await?;
    let sums = sums.unwrap_or(Sums { cost: None, rows: None, recent: None });
    Ok(Known { cost: sums.cost.unwrap_or(0), rows: sums.rows.unwrap_or(0), recent: sums.recent.unwrap_or(0) })
}
