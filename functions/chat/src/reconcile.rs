//! Reconciliation, by cron (hourly; locally `GET /__scheduled`): visits users
//! a page per run (a cursor in D1 carries on where the last run stopped) and
//! compares each wallet object — the source of truth, flushed first — with its
//! D1 projection: the `balances` mirror and the sum of the user's ledger rows
//! (the total, and the included bucket of plans);
//! and what the user's upstream key has spent (OpenRouter's own count) with
//! the provider cost the ledger billed since that key was minted.
//! A difference is a finding, recorded once (kind + user + amounts) in
//! `reconciliation_findings` and the audit log (`findings::record`, shared with
//! the billing Worker's Stripe pass); `GET /admin/reconciliation` lists them. Idempotent: running it again finds nothing new.

use dexto_shared::{db, findings};
use dexto_shared::error::GatewayError;
use dexto_shared::wallet_client::WalletClient;
use serde::Deserialize;
use serde_json::json;
use worker::Env;

/// Users visited per run (each is one wallet call, a management API call and
/// a few D1 reads).
const PAGE: i64 = 50;
/// Upstream spending beyond the billed provider cost by more than this (and
/// more than 2 %) is drift: someone spent through the key outside the gateway,
/// or usage was not billed.
const USAGE_DRIFT_MIN_MICROS: i64 = 10_000;

#[derive(Deserialize)]
struct Mirror {
    id: String,
    mirror: Option<i64>,
    ledger: Option<i64>,
    /// The included bucket (plans): mirror and Σ ledger, as for the total.
    mirror_included: Option<i64>,
    ledger_included: Option<i64>,
}

/// The mirror and ledger sums of a user (both buckets).
const MIRROR_COLUMNS: &str = "u.id, b.balance_micros AS mirror, b.included_micros AS mirror_included,
    (SELECT SUM(amount_micros) FROM credit_ledger c WHERE c.user_id = u.id) AS ledger,
    (SELECT SUM(included_micros) FROM credit_ledger c WHERE c.user_id = u.id) AS ledger_included";

/// Returns (users checked, new findings).
pub async fn run(env: &Env) -> Result<(usize, usize), GatewayError> {
    let database = db::database(env)?;
    #[derive(Deserialize)]
    struct Cursor {
        last_user_id: String,
    }
    let after = db::first::<Cursor>(&database, "SELECT last_user_id FROM reconciliation_cursor WHERE id = 1", &[]).await?.map_or(String::new(), |c| c.last_user_id);
    let users: Vec<Mirror> = db::all(
        &database,
        &format!("SELECT {MIRROR_COLUMNS} FROM users u LEFT JOIN balances b ON b.user_id = u.id WHERE u.id > ?1 ORDER BY u.id LIMIT ?2"),
        &[after.as_str().into(), db::ms(PAGE)],
    )
    .await?;
    let mut found = 0;
    for user in &users {
        // The wallet projects what is pending before answering: a difference
        // after that is drift, not lag. Re-read D1 after the flush.
        let state = WalletClient::for_user(env, &user.id)?.state().await?;
        let now: Option<Mirror> = db::first(
            &database,
            &format!("SELECT {MIRROR_COLUMNS} FROM users u LEFT JOIN balances b ON b.user_id = u.id WHERE u.id = ?1"),
            &[user.id.as_str().into()],
        )
        .await?;
        let seen = now.as_ref().unwrap_or(user);
        let (mirror, ledger) = (seen.mirror, seen.ledger);
        let wallet = state.balance.0;
        if mirror.unwrap_or(0) != wallet || ledger.unwrap_or(0) != wallet {
            let detail = json!({"wallet_micros": wallet, "mirror_micros": mirror, "ledger_sum_micros": ledger});
            found += findings::record(env, "wallet_mirror_drift", &user.id, &format!("{wallet}/{mirror:?}/{ledger:?}"), &detail).await?;
        }
        let (mirror, ledger, wallet) = (seen.mirror_included, seen.ledger_included, state.included.0);
        if mirror.unwrap_or(0) != wallet || ledger.unwrap_or(0) != wallet {
            let detail = json!({"bucket": "included", "wallet_micros": wallet, "mirror_micros": mirror, "ledger_sum_micros": ledger});
            found += findings::record(env, "wallet_mirror_drift", &user.id, &format!("included:{wallet}/{mirror:?}/{ledger:?}"), &detail).await?;
        }
        found += upstream_drift(env, &database, &user.id).await?;
    }
    let next = if (users.len() as i64) < PAGE { String::new() } else { users.last().map(|u| u.id.clone()).unwrap_or_default() };
    db::run_idempotent(
        &database,
        "INSERT INTO reconciliation_cursor (id, last_user_id) VALUES (1, ?1) ON CONFLICT(id) DO UPDATE SET last_user_id = excluded.last_user_id",
        &[next.as_str().into()],
    )
    .await?;
    Ok((users.len(), found))
}

/// Compares the upstream key's reported spending with the billed provider
/// cost since the key was minted (rows under review excluded: their cost is
/// provisional). Returns 1 if a new finding was recorded.
async fn upstream_drift(env: &Env, database: &worker::D1Database, user_id: &str) -> Result<usize, GatewayError> {
    let reported = match dexto_shared::openrouter_keys::reported_usage(env, user_id).await {
        Ok(Some(r)) => r,
        Ok(None) => return Ok(0),
        Err(e) => {
            dexto_shared::log::event("reconciliation.upstream_unavailable", json!({"user_id": user_id, "error": format!("{e:?}")}));
            return Ok(0);
        }
    };
    let (upstream, since) = (reported.0.ceil_micros(), reported.1);
    #[derive(Deserialize)]
    struct Sum {
        cost: Option<i64>,
    }
    let billed: Option<Sum> = db::first(
        database,
        // Billed rows at their reported cost; reviewed rows at the cost their
        // generation record gave (usage_review.rs); rows still under review
        // are left out (they may be re-priced).
        "SELECT SUM(CASE WHEN billing_status = 'billed' AND resolved_at IS NULL THEN provider_cost_micros
                         WHEN resolved_at IS NOT NULL THEN true_cost_micros ELSE 0 END) AS cost
         FROM usage_ledger WHERE user_id = ?1 AND created_at >= ?2",
        &[user_id.into(), db::ms(since)],
    )
    .await?;
    let billed = billed.and_then(|s| s.cost).unwrap_or(0);
    let drift = upstream.0 - billed;
    if drift <= USAGE_DRIFT_MIN_MICROS || drift * 50 <= billed {
        return Ok(0);
    }
    let detail = json!({"upstream_usage_micros": upstream.0, "billed_provider_cost_micros": billed, "drift_micros": drift});
    // Keyed by the drift itself: the same unexplained spending is reported once,
    // however much ordinary usage follows it.
    findings::record(env, "upstream_usage_drift", user_id, &drift.to_string(), &detail).await
}
