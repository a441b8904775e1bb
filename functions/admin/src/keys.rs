//! Admin key operations: issue a DEXTO_API_KEY (plaintext returned once, only
//! its SHA-256 stored) and revoke one (wallet object first, so the very next
//! request is refused even where the key → user mapping is cached).

use crate::{AuditCtx, audit, json_body, AdminResult};
use dexto_shared::db;
use dexto_shared::error::GatewayError;
use dexto_shared::http::now_ms;
use dexto_shared::key_settings::KeySettings;
use dexto_shared::http::json_response;
use dexto_shared::keystore::{self, SCOPES as ALLOWED_SCOPES};
use serde_json::json;
use worker::{Env, Request};

pub async fn create(req: &mut Request, env: &Env, ctx: &AuditCtx, user_id: &str) -> AdminResult {
    let body = json_body(req).await?;
    let name = body.get("name").and_then(|v| v.as_str()).unwrap_or("default").trim();
    if name.is_empty() || name.len() > 100 {
        return Err(GatewayError::BadRequest("`name` must be 1–100 characters.".into()));
    }
    let scopes = match body.get("scopes") {
        None => "gateway:use".to_string(),
        Some(v) => {
            let list: Vec<&str> = v.as_array().into_iter().flatten().filter_map(|s| s.as_str()).collect();
            if list.is_empty() || list.iter().any(|s| !ALLOWED_SCOPES.contains(s)) {
                return Err(GatewayError::BadRequest(format!("`scopes` must be a non-empty subset of {ALLOWED_SCOPES:?}.")));
            }
            list.join(" ")
        }
    };
    let settings = KeySettings::parse(&body, now_ms()).map_err(GatewayError::BadRequest)?;
    if !db::user_exists(&db::database(env)?, user_id).await? {
        return Err(GatewayError::NotFound(format!("User `{user_id}` not found.")));
    }
    let scope_list: Vec<&str> = scopes.split(' ').collect();
    let issued = keystore::issue(env, user_id, name, &scope_list).await?;
    if settings.expires_at.is_some() || settings.allowed_models.is_some() || settings.rate_limit_per_minute.is_some() {
        keystore::update(env, user_id, &issued.id, &KeySettings { name: None, ..settings }).await?;
    }
    audit(env, ctx, "key.create", user_id, json!({"key_id": issued.id, "name": name})).await?;
    json_response(
        201,
        &json!({
            "id": issued.id, "key": issued.key.expose(), "user_id": user_id, "name": name,
            "scopes": issued.scopes, "display": issued.display, "status": "active",
        }),
    )
    .map_err(|e| GatewayError::Internal(e.to_string()))
}

pub async fn revoke(env: &Env, ctx: &AuditCtx, key_id: &str) -> AdminResult {
    #[derive(serde::Deserialize)]
    struct Row {
        user_id: String,
    }
    let row: Option<Row> = db::first(&db::database(env)?, "SELECT user_id FROM api_keys WHERE id = ?1", &[key_id.into()]).await?;
    let row = row.ok_or_else(|| GatewayError::NotFound(format!("Key `{key_id}` not found.")))?;
    keystore::revoke(env, &row.user_id, key_id).await?;
    audit(env, ctx, "key.revoke", &row.user_id, json!({"key_id": key_id})).await?;
    json_response(200, &json!({"id": key_id, "status": "revoked"})).map_err(|e| GatewayError::Internal(e.to_string()))
}
