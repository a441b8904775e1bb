//! Reconciliation of `needs_review` usage (part of the hourly pass, after
//! `reconcile.rs`): a charge that was provisional (the owner died), an
//! estimate (a stream without usage) or capped at its hold (the upstream
//! reported more) is re-priced from OpenRouter's `GET /generation?id=` — the
//! sweep's lookup, with the same upstream key — at the markup it was charged
//! with (`shared/src/usage_review.rs`):
//! - charged more than the true price: the difference goes back to the wallet
//!   (`/credit`, reference `usage_correction:<request id>`: a replay is a
//!   no-op), a `usage_refunded` finding, the row resolved;
//! - charged less: nothing is debited (a charge never exceeds its hold), a
//!   `usage_undercharged` finding, the row resolved;
//! - equal: the row resolved;
//! - no record (404, or one without cost), or no markup on the row (written
//!   before it was recorded): a `usage_unverifiable` finding, the row left
//!   open (looked at again after `RECHECK_MS`).
//!
//! Rows without a generation id (the owner died before the upstream named
//! it) have no record to look up: `usage_bound.rs` corrects them from the
//! upstream key's spending.
//!
//! Every step is idempotent (credit by reference, findings by request id,
//! resolution by a guarded UPDATE), so a pass that dies half-way is finished
//! by the next one. A pass takes one page of the open queue, least recently
//! looked at first, so rows that stay open cannot starve the others.

use crate::config::Config;
use dexto_shared::findings::record;
use crate::upstream;
use dexto_shared::db;
use dexto_shared::error::GatewayError;
use dexto_shared::http::now_ms;
use dexto_shared::money::{Markup, Micros};
use dexto_shared::usage_review::{review, true_price, Verdict};
use dexto_shared::wallet::CreditRequest;
use dexto_shared::wallet_client::WalletClient;
use serde::Deserialize;
use serde_json::json;
use worker::{D1Database, Env};

/// Rows looked at per pass (each one generation lookup, at most one wallet call).
const PAGE: i64 = 50;
/// An open row is looked at again after this long (the record may appear; an
/// upstream outage passes).
pub const RECHECK_MS: i64 = 6 * 3_600_000;
/// ...for this long after the call; then it stays open for an operator (its
/// `usage_unverifiable` finding is already recorded), so a record that never
/// appears does not cost a lookup every six hours forever.
pub const RECHECK_FOR_MS: i64 = 30 * 24 * 3_600_000;

#[derive(Deserialize)]
struct Row {
    request_id: String,
    user_id: String,
    model: String,
    generation_id: Option<String>,
    user_price_micros: i64,
    price_basis: String,
    markup_bps: Option<i64>,
}

/// Returns (rows looked at, new findings).
pub async fn run(env: &Env) -> Result<(usize, usize), GatewayError> {
    let database = db::database(env)?;
    let config = Config::from_env(env);
    let now = now_ms();
    let rows: Vec<Row> = db::all(
        &database,
        "SELECT request_id, user_id, model, generation_id, user_price_micros, price_basis, markup_bps
         FROM usage_ledger INDEXED BY usage_review_queue
         WHERE billing_status = 'needs_review' AND resolved_at IS NULL AND created_at <= ?1 AND generation_id IS NOT NULL
           AND (review_checked_at IS NULL OR (review_checked_at <= ?2 AND created_at >= ?4))
         ORDER BY review_checked_at, created_at LIMIT ?3",
        &[db::ms(now - config.usage_review_min_age_ms), db::ms(now - RECHECK_MS), db::ms(PAGE), db::ms(now - RECHECK_FOR_MS)],
    )
    .await?;
    let mut found = 0;
    for row in &rows {
        match review_one(env, &database, &config, row, now).await {
            Ok(n) => found += n,
            // Looked at again next pass (the row is not marked checked).
            Err(e) => dexto_shared::log::event("usage_review.failed", json!({"request_id": row.request_id, "error": format!("{e:?}")})),
        }
    }
    Ok((rows.len(), found))
}

async fn review_one(env: &Env, database: &D1Database, config: &Config, row: &Row, now: i64) -> Result<usize, GatewayError> {
    let charged = Micros(row.user_price_micros);
    let base = json!({
        "request_id": row.request_id, "generation_id": row.generation_id, "model": row.model,
        "price_basis": row.price_basis, "charged_micros": charged.0,
    });
    let (Some(generation_id), Some(bps)) = (&row.generation_id, row.markup_bps) else {
        return unverifiable(env, database, row, base, "markup_unknown", now).await;
    };
    let markup = Markup::from_bps(bps as u32);
    let looked_up = match upstream::generation(env, config, &row.user_id, generation_id).await {
        Ok(looked_up) => looked_up,
        Err(e) => {
            // Not the record's absence: an outage or a refused key. Log, and
            // leave the row for a later pass behind the rest of the queue.
            dexto_shared::log::event("usage_review.lookup_failed", json!({"request_id": row.request_id, "error": e}));
            mark_checked(database, &row.request_id, now).await?;
            return Ok(0);
        }
    };
    let Some((usage, _cancelled)) = looked_up else {
        return unverifiable(env, database, row, base, "no_generation_record", now).await;
    };
    let (Some(verdict), Some((provider_cost, _))) = (review(charged, &usage, markup), true_price(&usage, markup)) else {
        return unverifiable(env, database, row, base, "record_without_cost", now).await;
    };
    let mut detail = base;
    detail["markup_bps"] = json!(bps);
    detail["provider_cost_micros"] = json!(provider_cost.0);
    detail["true_price_micros"] = json!(verdict.true_price().0);
    let mut found = 0;
    match verdict {
        Verdict::Refund { refund, .. } => {
            // Before the finding and the resolution: if this pass dies after
            // the credit, the next one replays it (no-op) and finishes.
            let reason = format!("charged {}, the upstream's record prices it at {}", charged.usd_fixed(), verdict.true_price().usd_fixed());
            refund_usage(env, &row.user_id, &row.request_id, refund, &reason, now).await?;
            detail["refund_micros"] = json!(refund.0);
            found += record(env, "usage_refunded", &row.user_id, &row.request_id, &detail).await?;
        }
        Verdict::Undercharged { shortfall, .. } => {
            detail["shortfall_micros"] = json!(shortfall.0);
            found += record(env, "usage_undercharged", &row.user_id, &row.request_id, &detail).await?;
        }
        Verdict::Exact { .. } => {}
    }
    db::run_idempotent(
        database,
        "UPDATE usage_ledger SET resolved_at = ?1, review_checked_at = ?1, review_outcome = ?2, true_price_micros = ?3, corrected_micros = ?4,
                true_cost_micros = ?5
         WHERE request_id = ?6 AND resolved_at IS NULL",
        &[
            db::ms(now),
            verdict.outcome().into(),
            db::ms(verdict.true_price().0),
            db::ms(verdict.refund().0),
            db::ms(provider_cost.0),
            row.request_id.as_str().into(),
        ],
    )
    .await?;
    dexto_shared::log::event("usage_review.resolved", json!({"request_id": row.request_id, "user_id": row.user_id, "outcome": verdict.outcome(), "charged_micros": charged.0, "true_price_micros": verdict.true_price().0, "refund_micros": verdict.refund().0}));
    Ok(found)
}

/// Gives an overcharge back through the wallet, once per request id (a
/// replay, whatever its amount, is a no-op): `usage_correction:<request id>`.
pub async fn refund_usage(env: &Env, user_id: &str, request_id: &str, amount: Micros, why: &str, now: i64) -> Result<(), GatewayError> {
    let credit = CreditRequest {
        user_id: user_id.to_string(),
        reference: format!("usage_correction:{request_id}"),
        amount,
        kind: "usage_correction".into(),
        reason: Some(format!("{request_id}: {why}")),
        now_ms: now,
        payment: None,
    };
    WalletClient::for_user(env, user_id)?.credit(&credit).await?;
    Ok(())
}

/// A row that cannot be priced from the upstream: reported once, left open.
async fn unverifiable(env: &Env, database: &D1Database, row: &Row, detail: serde_json::Value, reason: &str, now: i64) -> Result<usize, GatewayError> {
    report_unverifiable(env, database, &row.user_id, &row.request_id, detail, reason, now).await
}

/// Reports a row no source can price (`usage_unverifiable`, with its reason:
/// once per request id) and leaves it open for an operator, marked checked.
pub async fn report_unverifiable(env: &Env, database: &D1Database, user_id: &str, request_id: &str, mut detail: serde_json::Value, reason: &str, now: i64) -> Result<usize, GatewayError> {
    detail["reason"] = json!(reason);
    let found = record(env, "usage_unverifiable", user_id, request_id, &detail).await?;
    mark_checked(database, request_id, now).await?;
    Ok(found)
}

pub async fn mark_checked(database: &D1Database, request_id: &str, now: i64) -> Result<(), GatewayError> {
    db::run_idempotent(database, "UPDATE usage_ledger SET review_checked_at = ?1 WHERE request_id = ?2", &[db::ms(now), request_id.into()]).await
}
