//! Admin user operations. Balances are never written here directly: credits go
//! through the user's wallet object (the single writer), which also writes the
//! ledger row; reads of balance and holds come from it too.

use crate::{AuditCtx, audit, d1_error, json_body, AdminResult};
use dexto_shared::{db, plan_store};
use dexto_shared::error::GatewayError;
use dexto_shared::http::{json_response, now_ms};
use dexto_shared::ids::new_id;
use dexto_shared::money::Micros;
use dexto_shared::wallet::{CreditRequest, StatusChange};
use dexto_shared::wallet_client::WalletClient;
use serde_json::{json, Value};
use worker::{D1Database, Env, Request};

fn ok(status: u16, body: &Value) -> AdminResult {
    json_response(status, body).map_err(|e| GatewayError::Internal(e.to_string()))
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub async fn create(req: &mut Request, env: &Env, ctx: &AuditCtx) -> AdminResult {
    let body = json_body(req).await?;
    let email = body.get("email").and_then(Value::as_str).map(str::trim).unwrap_or("");
    if !email.contains('@') || email.len() > 254 {
        return Err(GatewayError::BadRequest("`email` must be an email address.".into()));
    }
    let id = match body.get("id").and_then(Value::as_str) {
        Some(id) if valid_id(id) => id.to_string(),
        Some(_) => return Err(GatewayError::BadRequest("`id` must be 1–64 characters of [A-Za-z0-9_-].".into())),
        None => new_id("usr_"),
    };
    let db = env.d1("DB").map_err(d1_error)?;
    let now = now_ms() as f64;
    let inserted = db::batch(
        &db,
        vec![
            db.prepare("INSERT INTO users (id, email, status, created_at, updated_at) VALUES (?1, ?2, 'active', ?3, ?3) ON CONFLICT(id) DO NOTHING")
                .bind(&[id.as_str().into(), email.into(), now.into()])
                .map_err(d1_error)?,
            db.prepare("INSERT INTO balances (user_id, balance_micros, version, updated_at) VALUES (?1, 0, 0, ?2) ON CONFLICT(user_id) DO NOTHING")
                .bind(&[id.as_str().into(), now.into()])
                .map_err(d1_error)?,
        ],
        db::Retry::IfLocked,
    )
    .await?;
    let created = inserted.first().and_then(db::changes).unwrap_or(0) > 0;
    if !created {
        return Err(GatewayError::BadRequest(format!("User `{id}` already exists.")));
    }
    // Onboarding mints the user's OpenRouter key now (the chat path would do it
    // lazily otherwise); a failure here is logged, not fatal.
    if let Err(e) = dexto_shared::openrouter_keys::ensure(env, &id).await {
        dexto_shared::log::event("admin.upstream_key_failed", json!({"user_id": id, "error": format!("{e:?}")}));
    }
    audit(env, ctx, "user.create", &id, json!({"email": email})).await?;
    ok(201, &json!({"id": id, "email": email, "status": "active", "balance_usd": 0}))
}

/// Rows of a query whose only parameter is the user id.
async fn rows(db: &D1Database, id: &str, sql: &str) -> Result<Vec<Value>, GatewayError> {
    db::all(db, sql, &[id.into()]).await
}

async fn one(db: &D1Database, id: &str, sql: &str) -> Result<Value, GatewayError> {
    Ok(db::first(db, sql, &[id.into()]).await?.unwrap_or(Value::Null))
}

pub async fn show(env: &Env, id: &str) -> AdminResult {
    let db = db::database(env)?;
    let user = one(&db, id, "SELECT id, email, status, created_at FROM users WHERE id = ?1").await?;
    if user.is_null() {
        return Err(GatewayError::NotFound(format!("User `{id}` not found.")));
    }
    // The wallet flushes its pending ledger rows to D1 before answering, so the
    // ledger read below is consistent with the balance.
    let wallet = WalletClient::for_user(env, id)?.state().await?;
    let ledger = rows(&db, id, "SELECT id, seq, kind, amount_micros, included_micros, balance_after_micros, reference, reason, created_at
         FROM credit_ledger WHERE user_id = ?1 ORDER BY seq DESC LIMIT 50").await?;
    let totals = one(&db, id, "SELECT COUNT(*) AS entries, COALESCE(SUM(amount_micros), 0) AS net_micros,
                COALESCE(SUM(included_micros), 0) AS included_net_micros,
                COALESCE(SUM(CASE WHEN amount_micros > 0 THEN amount_micros END), 0) AS credits_micros,
                COALESCE(SUM(CASE WHEN amount_micros < 0 THEN amount_micros END), 0) AS debits_micros
         FROM credit_ledger WHERE user_id = ?1").await?;
    let usage = one(&db, id, "SELECT COUNT(*) AS requests, COALESCE(SUM(user_price_micros), 0) AS price_micros,
                COALESCE(SUM(provider_cost_micros), 0) AS provider_cost_micros,
                COALESCE(SUM(billing_status = 'needs_review' AND resolved_at IS NULL), 0) AS needs_review
         FROM usage_ledger WHERE user_id = ?1").await?;
    let recent_usage = rows(&db, id, "SELECT request_id, key_id, model, prompt_tokens, completion_tokens, provider_cost_micros,
                user_price_micros, price_basis, billing_status, upstream_status, stream, cancelled, session_id, client_source,
                client_version, generation_id, created_at, review_outcome, true_price_micros, true_cost_micros, corrected_micros, resolved_at, api
         FROM usage_ledger WHERE user_id = ?1 ORDER BY created_at DESC, request_id DESC LIMIT 50").await?;
    let payments = rows(&db, id, "SELECT id, status, amount_minor, currency, credit_micros, payment_intent, created_at, updated_at
         FROM stripe_transactions WHERE user_id = ?1 ORDER BY created_at DESC LIMIT 20").await?;
    let holds: Vec<Value> = wallet
        .open_holds
        .iter()
        .map(|h| json!({"request_id": h.request_id, "key_id": h.key_id, "amount_usd": h.amount.as_json_usd(), "amount_micros": h.amount.0, "expires_at": h.expires_at}))
        .collect();
    ok(
        200,
        &json!({
            "id": user["id"], "email": user["email"], "status": user["status"], "created_at": user["created_at"],
            "balance_usd": wallet.balance.as_json_usd(), "balance_micros": wallet.balance.0,
            "included_micros": wallet.included.0, "purchased_micros": wallet.balance.0 - wallet.included.0,
            "plan": plan_store::of_user(&db, id).await?,
            "available_usd": wallet.available.as_json_usd(), "frozen": wallet.frozen,
            "open_holds": holds, "pending_ledger_rows": wallet.pending_outbox,
            "caps": dexto_shared::caps::to_json(&wallet.caps, now_ms()),
            "recent_ledger": ledger, "recent_usage": recent_usage, "payments": payments, "ledger_totals": totals, "usage_totals": usage,
        }),
    )
}

/// `PUT /admin/users/{id}/caps` `{"scope", "key_id"?, "window", "limit_usd"}`:
/// an operator sets (or, null, removes) a spend cap on the user or a key. The
/// user sees it (`set_by: "operator"`) but cannot change or remove it.
pub async fn set_cap(req: &mut Request, env: &Env, ctx: &AuditCtx, id: &str) -> AdminResult {
    let body = json_body(req).await?;
    let change = dexto_shared::caps::parse_change(&body).map_err(GatewayError::BadRequest)?;
    ensure_user(env, id).await?;
    let caps = dexto_shared::caps_api::apply(env, id, dexto_shared::caps::Owner::Operator, Some(change)).await?;
    audit(env, ctx, "wallet.cap_set", id, json!({"change": body})).await?;
    ok(200, &json!({"caps": caps}))
}

pub async fn credit(req: &mut Request, env: &Env, ctx: &AuditCtx, id: &str) -> AdminResult {
    let body = json_body(req).await?;
    let amount = body
        .get("amount_usd")
        .map(Micros::from_json_usd)
        .ok_or_else(|| GatewayError::BadRequest("`amount_usd` is required.".into()))?
        .map_err(|e| GatewayError::BadRequest(format!("`amount_usd`: {e}.")))?;
    if amount == Micros::ZERO {
        return Err(GatewayError::BadRequest("`amount_usd` must not be zero.".into()));
    }
    let reason = body.get("reason").and_then(Value::as_str).unwrap_or("admin credit").chars().take(200).collect::<String>();
    let reference = match body.get("idempotency_key").and_then(Value::as_str) {
        Some(k) if !k.is_empty() && k.len() <= 200 => format!("admin:{k}"),
        Some(_) => return Err(GatewayError::BadRequest("`idempotency_key` must be 1–200 characters.".into())),
        // Without one, an operator's retry (a timeout, a double click) would credit twice.
        None => return Err(GatewayError::BadRequest("`idempotency_key` is required: the same key makes a retried credit a no-op.".into())),
    };
    ensure_user(env, id).await?;
    let outcome = WalletClient::for_user(env, id)?
        .credit(&CreditRequest {
            user_id: id.into(),
            reference: reference.clone(),
            amount,
            kind: "admin_credit".into(),
            reason: Some(reason.clone()),
            now_ms: now_ms(),
            payment: None,
        })
        .await?;
    if !outcome.replay {
        audit(env, ctx, "wallet.credit", id, json!({"amount_micros": amount.0, "reason": reason, "reference": reference})).await?;
    }
    ok(
        200,
        &json!({"id": id, "balance_usd": outcome.balance.as_json_usd(), "balance_micros": outcome.balance.0, "replay": outcome.replay, "reference": reference}),
    )
}

pub async fn set_status(req: &mut Request, env: &Env, ctx: &AuditCtx, id: &str) -> AdminResult {
    let body = json_body(req).await?;
    let status = match body.get("status").and_then(Value::as_str) {
        Some(s @ ("active" | "suspended")) => s.to_string(),
        _ => return Err(GatewayError::BadRequest("`status` must be `active` or `suspended`.".into())),
    };
    ensure_user(env, id).await?;
    let change = StatusChange { user_id: id.into(), suspended: Some(status == "suspended"), ..StatusChange::default() };
    WalletClient::for_user(env, id)?.change_status(&change).await?;
    let sql = "UPDATE users SET status = ?2, updated_at = ?3 WHERE id = ?1";
    db::run_idempotent(&db::database(env)?, sql, &[id.into(), status.as_str().into(), db::ms(now_ms())]).await?;
    audit(env, ctx, "user.status", id, json!({"status": status})).await?;
    ok(200, &json!({"id": id, "status": status}))
}

async fn ensure_user(env: &Env, id: &str) -> Result<(), GatewayError> {
    if db::user_exists(&db::database(env)?, id).await? {
        Ok(())
    } else {
        Err(GatewayError::NotFound(format!("User `{id}` not found.")))
    }
}
