//! DEXTO_API_KEY endpoints for both CLI generations and the dashboard:
//! `/api/provision`, `/keys/provision` (1.5.7–1.6.10, with the
//! `isNewKey:false` → `regenerate:true` dance), `/api/keys` (1.6.11+),
//! validate and rotate. A user only ever sees and touches their own keys:
//! another user's key id is answered exactly like an unknown one (404).

use crate::principal::{self, Principal};
use crate::security_event;
use dexto_shared::http::now_ms;
use dexto_shared::key_settings::{models_from_storage, KeySettings};
use crate::ApiResult;
use dexto_shared::auth::{self, KeyLookup};
use dexto_shared::error::GatewayError;
use dexto_shared::http::{bearer_token, json_object, ok_json};
use dexto_shared::keystore::{self, IssuedKey, KeyRow};
use dexto_shared::money::Micros;
use dexto_shared::wallet::CreditRequest;
use dexto_shared::wallet_client::WalletClient;
use serde_json::{json, Value};
use worker::{Env, Request};

pub const DEFAULT_NAME: &str = dexto_shared::device::CLI_KEY_NAME;
const GATEWAY_SCOPES: &[&str] = &["gateway:use"];

fn key_name(body: &Value) -> Result<String, GatewayError> {
    match body.get("name") {
        None | Some(Value::Null) => Ok(DEFAULT_NAME.into()),
        Some(Value::String(n)) if !n.trim().is_empty() && n.len() <= 100 => Ok(n.trim().into()),
        _ => Err(GatewayError::BadRequest("`name` must be a string of 1–100 characters.".into())),
    }
}

fn active(keys: Vec<KeyRow>) -> Vec<KeyRow> {
    keys.into_iter().filter(|k| k.status == "active").collect()
}

fn issued_body(k: &IssuedKey) -> Value {
    json!({"success": true, "dextoApiKey": k.key.expose(), "keyId": k.id, "isNewKey": true})
}

/// `POST /api/provision` (session or device token): the user's upstream key
/// exists, and a DEXTO_API_KEY is issued if they have none (an existing one
/// is not rotated).
pub async fn provision(req: &mut Request, env: &Env) -> ApiResult {
    let cli = principal::cli_session(req, env).await?;
    let user = &cli.user;
    grant_intro_credit(env, &user.id).await?;
    dexto_shared::openrouter_keys::ensure(env, &user.id).await?;
    if let Some(existing) = active(keystore::list(env, &user.id).await?).first() {
        return ok_json(200, &json!({"success": true, "keyId": existing.id, "isNewKey": false}));
    }
    let via = principal::claim_issuance(env, &cli, "provision").await?;
    let issued = keystore::issue(env, &user.id, DEFAULT_NAME, GATEWAY_SCOPES).await?;
    security_event(req, env, &user.id, "key.create", &issued.id, json!({"name": issued.name, "via": via})).await?;
    ok_json(200, &issued_body(&issued))
}

/// The configured intro credit (`INTRO_CREDIT_USD`, default 0 = off), granted
/// on a user's first provision. Its wallet reference is the user id, so it is
/// granted once per user however often provisioning runs.
async fn grant_intro_credit(env: &Env, user_id: &str) -> Result<(), GatewayError> {
    let amount = env
        .var("INTRO_CREDIT_USD")
        .ok()
        .and_then(|v| Micros::parse_usd_exact(&v.to_string()).ok())
        .filter(|a| *a > Micros::ZERO);
    let Some(amount) = amount else { return Ok(()) };
    WalletClient::for_user(env, user_id)?
        .credit(&CreditRequest {
            user_id: user_id.into(),
            reference: format!("intro:{user_id}"),
            amount,
            kind: "intro_credit".into(),
            reason: Some("Welcome credit".into()),
            now_ms: dexto_shared::http::now_ms(),
            payment: None,
        })
        .await?;
    Ok(())
}

/// `POST /keys/provision` `{name, regenerate}` (session or device token, CLI 1.5.7–1.6.10).
pub async fn provision_named(req: &mut Request, env: &Env) -> ApiResult {
    let cli = principal::cli_session(req, env).await?;
    let user = &cli.user;
    let body = json_object(req).await?;
    let name = key_name(&body)?;
    principal::only_cli_key(&cli, &name)?;
    grant_intro_credit(env, &user.id).await?;
    let regenerate = body.get("regenerate").and_then(Value::as_bool).unwrap_or(false);
    dexto_shared::openrouter_keys::ensure(env, &user.id).await?;
    let same_name: Vec<KeyRow> = active(keystore::list(env, &user.id).await?).into_iter().filter(|k| k.name == name).collect();
    if let (Some(existing), false) = (same_name.first(), regenerate) {
        // The secret cannot be shown again; the CLI answers with regenerate:true.
        return ok_json(200, &json!({"success": true, "keyId": existing.id, "isNewKey": false}));
    }
    let via = principal::claim_issuance(env, &cli, "provision").await?;
    for old in &same_name {
        keystore::revoke(env, &user.id, &old.id).await?;
        security_event(req, env, &user.id, "key.revoke", &old.id, json!({"name": old.name, "via": "regenerate"})).await?;
    }
    let issued = keystore::issue(env, &user.id, &name, GATEWAY_SCOPES).await?;
    security_event(req, env, &user.id, "key.create", &issued.id, json!({"name": issued.name, "via": via})).await?;
    ok_json(200, &issued_body(&issued))
}

/// `GET /api/keys` (session; a device token sees only the CLI's key).
pub async fn list(req: &mut Request, env: &Env) -> ApiResult {
    let cli = principal::cli_session(req, env).await?;
    let data: Vec<Value> = keystore::list(env, &cli.user.id)
        .await?
        .iter()
        .filter(|k| principal::only_cli_key(&cli, &k.name).is_ok())
        .map(|k| {
            json!({
                "id": k.id, "name": k.name, "status": k.status, "isActive": k.status == "active",
                "keyDisplay": k.display(), "scopes": k.scope_list(),
                "createdAt": k.created_at, "lastUsedAt": k.last_used_at, "revokedAt": k.revoked_at,
                "expiresAt": k.expires_at, "allowedModels": models_from_storage(k.allowed_models.as_deref()),
                "rateLimitPerMinute": k.rate_limit_per_minute,
                "source": if k.name.starts_with(crate::device::KEY_NAME_PREFIX) { "device_login" } else { "created" },
            })
        })
        .collect();
    ok_json(200, &json!({"success": true, "data": data}))
}

/// `POST /api/keys` `{name, expires_at?, allowed_models?}` (session; a
/// device token may create the CLI's key, once).
pub async fn create(req: &mut Request, env: &Env) -> ApiResult {
    let cli = principal::cli_session(req, env).await?;
    let user = &cli.user;
    let body = json_object(req).await?;
    let name = key_name(&body)?;
    principal::only_cli_key(&cli, &name)?;
    let settings = KeySettings::parse(&body, now_ms()).map_err(GatewayError::BadRequest)?;
    dexto_shared::openrouter_keys::ensure(env, &user.id).await?;
    let via = principal::claim_issuance(env, &cli, "api_keys").await?;
    let k = keystore::issue(env, &user.id, &name, GATEWAY_SCOPES).await?;
    if settings.expires_at.is_some() || settings.allowed_models.is_some() || settings.rate_limit_per_minute.is_some() {
        keystore::update(env, &user.id, &k.id, &KeySettings { name: None, ..settings }).await?;
    }
    security_event(req, env, &user.id, "key.create", &k.id, json!({"name": k.name, "via": via})).await?;
    ok_json(
        200,
        &json!({"success": true, "data": {"id": k.id, "fullKey": k.key.expose(), "name": k.name, "keyDisplay": k.display, "scopes": k.scopes, "status": "active"}}),
    )
}

/// `PATCH /api/keys/{id}` `{name?, expires_at?, allowed_models?}` (session):
/// renames a key or changes its expiry or models (`null` clears).
pub async fn update(req: &mut Request, env: &Env, key_id: &str) -> ApiResult {
    let user = principal::session(req, env).await?;
    let body = json_object(req).await?;
    let change = KeySettings::parse(&body, now_ms()).map_err(GatewayError::BadRequest)?;
    let key = keystore::find_owned(env, &user.id, key_id).await?.ok_or_else(|| GatewayError::NotFound("Key not found.".into()))?;
    keystore::update(env, &user.id, &key.id, &change).await?;
    security_event(req, env, &user.id, "key.update", &key.id, body).await?;
    let k = keystore::find_owned(env, &user.id, key_id).await?.ok_or_else(|| GatewayError::NotFound("Key not found.".into()))?;
    ok_json(
        200,
        &json!({"success": true, "data": {"id": k.id, "name": k.name, "status": k.status, "expiresAt": k.expires_at,
            "allowedModels": models_from_storage(k.allowed_models.as_deref()), "rateLimitPerMinute": k.rate_limit_per_minute}}),
    )
}

/// `DELETE /api/keys/{id}` (session; a device token only the CLI's key):
/// revokes one of the caller's keys.
pub async fn delete(req: &mut Request, env: &Env, key_id: &str) -> ApiResult {
    let cli = principal::cli_session(req, env).await?;
    let user = &cli.user;
    let key = keystore::find_owned(env, &user.id, key_id).await?.ok_or_else(|| GatewayError::NotFound("Key not found.".into()))?;
    principal::only_cli_key(&cli, &key.name)?;
    keystore::revoke(env, &user.id, &key.id).await?;
    security_event(req, env, &user.id, "key.revoke", &key.id, json!({"name": key.name})).await?;
    ok_json(200, &json!({"success": true, "id": key.id, "status": "revoked"}))
}

/// `POST /api/keys/{id}/rotate` (session, the dashboard): replaces that key
/// (see `rotate_key`); the new secret is returned once.
pub async fn rotate_one(req: &mut Request, env: &Env, key_id: &str) -> ApiResult {
    let user = principal::session(req, env).await?;
    let old = keystore::find_owned(env, &user.id, key_id).await?.filter(|k| k.status == "active").ok_or_else(|| GatewayError::NotFound("Key not found.".into()))?;
    let issued = rotate_key(req, env, &user.id, &old).await?;
    ok_json(200, &json!({"success": true, "data": {"id": issued.id, "fullKey": issued.key.expose(), "name": issued.name, "keyDisplay": issued.display, "replaces": old.id}}))
}

/// Every rotation goes through here: `keystore::rotate` (same name, scopes,
/// settings, caps and counted spending; one replacement per key), audited.
async fn rotate_key(req: &Request, env: &Env, user_id: &str, old: &KeyRow) -> Result<IssuedKey, GatewayError> {
    let issued = keystore::rotate(env, user_id, old).await?;
    security_event(req, env, user_id, "key.create", &issued.id, json!({"name": issued.name, "via": "rotate", "replaces": old.id})).await?;
    security_event(req, env, user_id, "key.revoke", &old.id, json!({"name": old.name, "via": "rotate", "replaced_by": issued.id})).await?;
    Ok(issued)
}

/// `GET /keys/validate`, `/api/keys/validate` (API key): `{"valid": bool}`.
/// An unknown, revoked or suspended key is a 200 `{"valid": false}` so every
/// CLI generation reads the answer rather than a transport error.
pub async fn validate(req: &mut Request, env: &Env) -> ApiResult {
    if bearer_token(req.headers()).is_none() {
        return Err(GatewayError::MissingAuth);
    }
    let valid = auth::authenticate(req.headers(), env, KeyLookup::Fresh, "gateway:use").await.is_ok();
    ok_json(200, &json!({"valid": valid}))
}

/// `POST /keys/rotate`, `/api/keys/rotate` (session or API key): replace one
/// key and return its successor once. With a key: that key. With a session:
/// the CLI's key (the newest active "Dexto CLI Key", else the newest active
/// key); a user with no active key gets a new default key. Either way the
/// replacement keeps every restriction of the key it replaces (`rotate_key`).
pub async fn rotate(req: &mut Request, env: &Env) -> ApiResult {
    let principal = principal::session_or_key(req, env).await?;
    let user_id = principal.user_id().to_string();
    let keys = active(keystore::list(env, &user_id).await?);
    let target = match &principal {
        Principal::Key(caller) => Some(keys.iter().find(|k| k.id == caller.key_id).ok_or(GatewayError::InvalidAuth)?),
        Principal::Session(_) => keys.iter().find(|k| k.name == DEFAULT_NAME).or_else(|| keys.first()),
    };
    let issued = match target {
        Some(old) => rotate_key(req, env, &user_id, old).await?,
        None => {
            let issued = keystore::issue(env, &user_id, DEFAULT_NAME, GATEWAY_SCOPES).await?;
            security_event(req, env, &user_id, "key.create", &issued.id, json!({"name": issued.name, "via": "rotate"})).await?;
            issued
        }
    };
    ok_json(200, &json!({"success": true, "dextoApiKey": issued.key.expose(), "keyId": issued.id}))
}
