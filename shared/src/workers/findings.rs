//! Reconciliation findings (feature `workers`): each distinct difference is
//! recorded once in `reconciliation_findings` (UNIQUE kind + user +
//! fingerprint) and, when new, in the audit log (`reconciliation.finding`) and
//! the logs; `GET /admin/reconciliation` lists them. Used by the chat Worker's
//! pass (wallets, upstream keys) and the billing Worker's (Stripe).

use crate::db;
use crate::error::GatewayError;
use crate::http::now_ms;
use serde::Deserialize;
use serde_json::{json, Value};
use worker::Env;

/// Records a finding once; returns 1 if it is new, 0 if it was known.
pub async fn record(env: &Env, kind: &str, user_id: &str, fingerprint: &str, detail: &Value) -> Result<usize, GatewayError> {
    let database = db::database(env)?;
    #[derive(Deserialize)]
    struct Id {
        id: i64,
    }
    let inserted: Option<Id> = db::returning(
        &database,
        "INSERT INTO reconciliation_findings (kind, user_id, fingerprint, detail, found_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(kind, user_id, fingerprint) DO NOTHING RETURNING id",
        &[kind.into(), user_id.into(), fingerprint.into(), detail.to_string().into(), db::ms(now_ms())],
    )
    .await?;
    let Some(row) = inserted else { return Ok(0) };
    let ctx = crate::audit::AuditCtx { actor: "system".into(), request_id: format!("reconcile:{}", row.id), client_ip: None };
    if let Err(e) = crate::audit::record(env, &ctx, "reconciliation.finding", Some(user_id), kind, detail).await {
        // A finding without its audit entry would never get one: take the
        // finding back, so the next run records both (or fails again).
        let _ = db::run(&database, "DELETE FROM reconciliation_findings WHERE id = ?1", &[db::ms(row.id)]).await;
        return Err(e);
    }
    crate::log::event("reconciliation.finding", json!({"kind": kind, "user_id": user_id, "detail": detail}));
    Ok(1)
}
