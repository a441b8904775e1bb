//! Scheduled work of the chat Worker (`[triggers] crons`, hourly): refresh the
//! model catalogue in KV, then a reconciliation pass: `needs_review` usage
//! (`usage_review.rs`, then `usage_bound.rs`), then the books (`reconcile.rs`:
//! after the corrections, so the key-spending comparison sees their resolved
//! costs), then direct keys (`dexto_shared::direct_keys::reconcile`: pending
//! moves completed, limits re-applied, overspending found), then old x402
//! claims dropped (`x402::prune_claims`); before that the plans' period-end
//! pass (`dexto_shared::plan_periods`). Run by
//! `#[event(scheduled)]`, in production and locally (this Worker owns the
//! local port, so `GET /__scheduled` reaches it).

use crate::catalogue;
use crate::config::Config;
use worker::Env;

/// Returns a short outcome for logs and the relay.
pub async fn run(env: &Env, cron: &str) -> String {
    let config = Config::from_env(env);
    let outcome = match catalogue::refresh(env, &config).await {
        Ok(cat) => format!("refreshed {} models", cat.models.len()),
        Err(e) => {
            // The previous copy stays in KV and keeps being served, with its age.
            dexto_shared::log::event("catalogue.refresh_failed", serde_json::json!({"error": e, "copy": "kept", "trigger": "cron"}));
            format!("refresh failed: {e}")
        }
    };
    let reviewed = match crate::usage_review::run(env).await {
        Ok((rows, found)) => format!("reviewed {rows} needs_review rows, {found} new findings"),
        Err(e) => format!("usage review failed: {e:?}"),
    };
    let bounded = match crate::usage_bound::run(env).await {
        Ok((users, found)) => format!("bounded the provisional charges of {users} users, {found} new findings"),
        Err(e) => format!("usage bound failed: {e:?}"),
    };
    let reconciled = match crate::reconcile::run(env).await {
        Ok((users, found)) => format!("reconciled {users} users, {found} new findings"),
        Err(e) => format!("reconciliation failed: {e:?}"),
    };
    let direct = match dexto_shared::direct_keys::reconcile(env).await {
        Ok((seen, found)) => format!("direct keys: looked at {seen}, {found} new findings"),
        Err(e) => format!("direct key reconciliation failed: {e:?}"),
    };
    let periods = match dexto_shared::plan_periods::run(env, dexto_shared::http::now_ms(), None).await {
        Ok((expired, ended)) => format!("plans: {expired} periods expired, {ended} back to free"),
        Err(e) => format!("plan period pass failed: {e:?}"),
    };
    let claims = match crate::x402::prune_claims(env).await {
        Ok(()) => "x402: old claims dropped".to_string(),
        Err(e) => format!("x402 claim pruning failed: {e:?}"),
    };
    let outcome = format!("{outcome}; {reviewed}; {bounded}; {reconciled}; {direct}; {periods}; {claims}");
    dexto_shared::log::event("cron.ran", serde_json::json!({"cron": cron, "outcome": outcome}));
    outcome
}
