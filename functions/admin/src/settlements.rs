//! Manual settlement, for reconciliation: when a request's automatic settlement
//! failed (`settle.failed` in the logs; its hold then expires unbilled) or an
//! operator prices a `needs_review` request, this settles it through the same
//! wallet path. Idempotent on the request id: a request already settled is
//! answered as a replay and nothing changes.

use crate::{AuditCtx, audit, json_body, AdminResult};
use dexto_shared::billing::{BillingStatus, PriceBasis};
use dexto_shared::error::GatewayError;
use dexto_shared::http::{json_response, now_ms};
use dexto_shared::money::Micros;
use dexto_shared::wallet::UsageRecord;
use dexto_shared::wallet_client::WalletClient;
use serde_json::{json, Value};
use worker::{Env, Request};

pub async fn settle(req: &mut Request, env: &Env, ctx: &AuditCtx, user_id: &str) -> AdminResult {
    let body = json_body(req).await?;
    let text = |field: &str| -> Result<String, GatewayError> {
        body.get(field)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= 200)
            .map(str::to_string)
            .ok_or_else(|| GatewayError::BadRequest(format!("`{field}` is required.")))
    };
    let usd = |field: &str| -> Result<Micros, GatewayError> {
        let amount = body
            .get(field)
            .map(Micros::from_json_usd)
            .ok_or_else(|| GatewayError::BadRequest(format!("`{field}` is required.")))?
            .map_err(|e| GatewayError::BadRequest(format!("`{field}`: {e}.")))?;
        if amount < Micros::ZERO {
            return Err(GatewayError::BadRequest(format!("`{field}` must not be negative.")));
        }
        Ok(amount)
    };
    let (request_id, key_id, model) = (text("request_id")?, text("key_id")?, text("model")?);
    let (price, cost) = (usd("user_price_usd")?, usd("provider_cost_usd")?);
    // A request id is one request of one user: settling another user's would
    // book this user's money against a usage row that is not theirs.
    #[derive(serde::Deserialize)]
    struct Owner {
        user_id: String,
    }
    let db = dexto_shared::db::database(env)?;
    let owner: Option<Owner> = dexto_shared::db::first(&db, "SELECT user_id FROM usage_ledger WHERE request_id = ?1", &[request_id.as_str().into()]).await?;
    if owner.is_some_and(|o| o.user_id != user_id) {
        return Err(GatewayError::Conflict(format!("Request `{request_id}` belongs to another user.")));
    }
    let now = now_ms();
    let record = UsageRecord {
        request_id: request_id.clone(),
        user_id: user_id.into(),
        key_id,
        model,
        generation_id: body.get("generation_id").and_then(Value::as_str).map(str::to_string),
        prompt_tokens: body.get("prompt_tokens").and_then(Value::as_u64).unwrap_or(0),
        completion_tokens: body.get("completion_tokens").and_then(Value::as_u64).unwrap_or(0),
        cached_tokens: 0,
        reasoning_tokens: 0,
        provider_cost: cost,
        user_price: price,
        price_basis: PriceBasis::Estimate,
        billing_status: BillingStatus::Billed,
        upstream_status: None,
        stream: false,
        cancelled: false,
        session_id: None,
        client_source: Some("admin".into()),
        client_version: None,
        latency_ms: 0,
        created_at: now,
        // An operator's price: not a markup of anything.
        markup_bps: None,
        api: Default::default(),
    };
    let outcome = WalletClient::for_user(env, user_id)?.settle(record).await?;
    if !outcome.replay {
        audit(env, ctx, "wallet.manual_settle", user_id, json!({"request_id": request_id, "price_micros": price.0})).await?;
    }
    json_response(
        200,
        &json!({"id": request_id, "replay": outcome.replay, "balance_usd": outcome.balance.as_json_usd(), "balance_micros": outcome.balance.0}),
    )
    .map_err(|e| GatewayError::Internal(e.to_string()))
}

/// `POST /admin/users/{id}/holds/sweep`: settles now every open hold whose
/// exchange is not running (the owner died: deploy, restart), from the
/// upstream's generation record or provisionally. The alarm does the same at
/// each hold's deadline; a second sweep finds nothing to do.
pub async fn sweep(env: &Env, ctx: &AuditCtx, user_id: &str) -> AdminResult {
    let report = WalletClient::for_user(env, user_id)?.sweep().await?;
    audit(env, ctx, "wallet.sweep", user_id, report.clone()).await?;
    json_response(200, &report).map_err(|e| GatewayError::Internal(e.to_string()))
}
