//! Reconciliation of direct keys (the chat Worker's cron): moves and
//! revocations a crash left half-way are completed, drifted limits
//! re-applied, spending beyond the funding reported.

use super::{complete, finish_revoke, spent, target, apply_target, DirectKey, Move, Stop, KEY_COLUMNS, MOVE_COLUMNS};
use crate::db;
use crate::error::GatewayError;
use crate::http::now_ms;
use crate::openrouter_keys::{self as upstream, UpstreamConfig};
use serde_json::json;
use worker::{D1Database, Env};

/// Moves and keys looked at per reconciliation run.
const PAGE: i64 = 50;

/// Reconciliation of direct keys (the chat Worker's cron): completes pending
/// moves and unfinished revocations, re-applies each active key's limit
/// target when the upstream's differs, and records a finding when a key has
/// spent more than it was funded. Returns (items looked at, new findings).
pub async fn reconcile(env: &Env) -> Result<(usize, usize), GatewayError> {
    let config = UpstreamConfig::from_env(env);
    if !config.per_user() {
        return Ok((0, 0));
    }
    let database = db::database(env)?;
    let mut seen = 0;
    let pending: Vec<Move> =
        db::all(&database, &format!("SELECT {MOVE_COLUMNS} FROM direct_key_moves WHERE state = 'pending' ORDER BY created_at LIMIT ?1"), &[db::ms(PAGE)]).await?;
    for m in &pending {
        seen += 1;
        let outcome = complete(env, &config, &database, m, Stop::Never).await;
        log_outcome("move", &m.id, outcome.map(|_| ()));
    }
    let unfinished: Vec<DirectKey> = db::all(
        &database,
        &format!("SELECT {KEY_COLUMNS} FROM direct_keys k WHERE status = 'revoked' AND NOT EXISTS (SELECT 1 FROM direct_key_moves m WHERE m.id = 'dkm_revoke_' || k.id) LIMIT ?1"),
        &[db::ms(PAGE)],
    )
    .await?;
    for key in &unfinished {
        seen += 1;
        let outcome = finish_revoke(env, &config, &database, key, Stop::Never).await;
        log_outcome("revocation", &key.id, outcome.map(|_| ()));
    }
    let mut found = 0;
    let active: Vec<DirectKey> = db::all(
        &database,
        &format!("SELECT {KEY_COLUMNS} FROM direct_keys WHERE status = 'active' ORDER BY checked_at IS NOT NULL, checked_at LIMIT ?1"),
        &[db::ms(PAGE)],
    )
    .await?;
    for key in &active {
        seen += 1;
        match compare(env, &config, &database, key).await {
            Ok(n) => found += n,
            Err(e) => log_outcome("comparison", &key.id, Err(e)),
        }
        db::run_idempotent(&database, "UPDATE direct_keys SET checked_at = ?2 WHERE id = ?1", &[key.id.as_str().into(), db::ms(now_ms())]).await?;
    }
    Ok((seen, found))
}

fn log_outcome(what: &str, id: &str, outcome: Result<(), GatewayError>) {
    if let Err(e) = outcome {
        crate::log::event("direct_key.reconcile_failed", json!({"what": what, "id": id, "error": format!("{e:?}")}));
    }
}

/// One active key against its moves: the limit re-applied if it drifted;
/// spending beyond the funding is a finding (the upstream let calls through
/// past the limit, or the limit was raised outside the gateway).
async fn compare(env: &Env, config: &UpstreamConfig, database: &D1Database, key: &DirectKey) -> Result<usize, GatewayError> {
    let funded = target(database, &key.id, None).await?;
    let (spent, record) = spent(config, key).await?;
    if upstream::usd_field(&record, "limit")? != Some(funded) {
        apply_target(config, database, key, None).await?;
        crate::log::event("direct_key.limit_reapplied", json!({"user_id": key.user_id, "key_id": key.id, "limit_micros": funded.0}));
    }
    let spent = spent.ceil_micros();
    if spent <= funded {
        return Ok(0);
    }
    let detail = json!({"key_id": key.id, "funded_micros": funded.0, "spent_micros": spent.0, "overspent_micros": spent.0 - funded.0});
    crate::findings::record(env, "direct_key_overspent", &key.user_id, &format!("{}/{}/{}", key.id, funded.0, spent.0), &detail).await
}
