//! DEXTO_API_KEY storage (feature `workers`): issue (plaintext returned once,
//! only the SHA-256 stored), list and revoke. Revocation tells the user's
//! wallet object first — it refuses the key on the very next request, even
//! where the key → user mapping is cached — and then marks D1.

use crate::apikey::{display_form, ApiKey};
use crate::key_settings::{models_to_storage, KeySettings};
use crate::error::GatewayError;
use crate::http::now_ms;
use crate::ids::new_id;
use crate::wallet::StatusChange;
use crate::wallet_client::WalletClient;
use serde::{Deserialize, Serialize};
use worker::Env;

pub const SCOPES: &[&str] = &["gateway:use", "admin"];

pub struct IssuedKey {
    pub id: String,
    pub key: ApiKey,
    pub name: String,
    pub display: String,
    pub scopes: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyRow {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub key_prefix: String,
    pub key_last4: String,
    pub scopes: String,
    pub status: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    #[serde(default)]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub allowed_models: Option<String>,
    #[serde(default)]
    pub rate_limit_per_minute: Option<i64>,
}

impl KeyRow {
    pub fn display(&self) -> String {
        display_form(&self.key_prefix, &self.key_last4)
    }

    pub fn scope_list(&self) -> Vec<&str> {
        self.scopes.split_whitespace().collect()
    }
}

fn internal(e: worker::Error) -> GatewayError {
    GatewayError::Internal(format!("keystore: {e}"))
}

pub async fn issue(env: &Env, user_id: &str, name: &str, scopes: &[&str]) -> Result<IssuedKey, GatewayError> {
    let key = ApiKey::generate();
    let (prefix, last4) = key.display_parts();
    let id = new_id("key_");
    crate::db::run(
        &crate::db::database(env)?,
        "INSERT INTO api_keys (id, user_id, key_hash, key_prefix, key_last4, name, scopes, status, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'active', ?8)",
        &[
            id.as_str().into(),
            user_id.into(),
            key.hash_hex().into(),
            prefix.as_str().into(),
            last4.as_str().into(),
            name.into(),
            scopes.join(" ").into(),
            (now_ms() as f64).into(),
        ],
    )
    .await?;
    Ok(IssuedKey { id, key, name: name.into(), display: display_form(&prefix, &last4), scopes: scopes.iter().map(|s| s.to_string()).collect() })
}

/// A user's keys, newest first (revoked ones included).
pub async fn list(env: &Env, user_id: &str) -> Result<Vec<KeyRow>, GatewayError> {
    crate::db::all(
        &crate::db::database(env)?,
        "SELECT id, user_id, name, key_prefix, key_last4, scopes, status, created_at, last_used_at, revoked_at,
                expires_at, allowed_models, rate_limit_per_minute
         FROM api_keys WHERE user_id = ?1 ORDER BY created_at DESC, id DESC",
        &[user_id.into()],
    )
    .await
}

/// One key, if it belongs to `user_id` (callers answer 404 otherwise, so ids
/// of other users' keys are indistinguishable from unknown ones).
pub async fn find_owned(env: &Env, user_id: &str, key_id: &str) -> Result<Option<KeyRow>, GatewayError> {
    Ok(list(env, user_id).await?.into_iter().find(|k| k.id == key_id))
}

/// Applies a settings change to one of the user's keys (name, expiry,
/// allowed models). The data plane sees it within its key cache's TTL.
pub async fn update(env: &Env, user_id: &str, key_id: &str, change: &KeySettings) -> Result<(), GatewayError> {
    let null = || worker::wasm_bindgen::JsValue::NULL;
    let (set_expiry, expiry) = match change.expires_at {
        Some(at) => (1.0, at.map_or_else(null, |v| (v as f64).into())),
        None => (0.0, null()),
    };
    let (set_models, models) = match &change.allowed_models {
        Some(list) => (1.0, list.as_deref().map_or_else(null, |l| models_to_storage(l).into())),
        None => (0.0, null()),
    };
    let (set_rate, rate) = match change.rate_limit_per_minute {
        Some(r) => (1.0, r.map_or_else(null, |v| (v as f64).into())),
        None => (0.0, null()),
    };
    crate::db::run_idempotent(
        &crate::db::database(env)?,
        "UPDATE api_keys SET name = COALESCE(?3, name),
                expires_at = CASE WHEN ?4 = 1 THEN ?5 ELSE expires_at END,
                allowed_models = CASE WHEN ?6 = 1 THEN ?7 ELSE allowed_models END,
                rate_limit_per_minute = CASE WHEN ?8 = 1 THEN ?9 ELSE rate_limit_per_minute END
         WHERE id = ?1 AND user_id = ?2",
        &[
            key_id.into(),
            user_id.into(),
            change.name.as_deref().map_or_else(null, Into::into),
            set_expiry.into(),
            expiry,
            set_models.into(),
            models,
            set_rate.into(),
            rate,
        ],
    )
    .await
}

/// Revokes a key: wallet first (immediate effect), then D1.
pub async fn revoke(env: &Env, user_id: &str, key_id: &str) -> Result<(), GatewayError> {
    WalletClient::for_user(env, user_id)?
        .change_status(&StatusChange { user_id: user_id.into(), revoke_key_id: Some(key_id.into()), ..StatusChange::default() })
        .await?;
    crate::db::run_idempotent(
        &crate::db::database(env)?,
        "UPDATE api_keys SET status = 'revoked', revoked_at = ?3 WHERE id = ?1 AND user_id = ?2 AND status = 'active'",
        &[key_id.into(), user_id.into(), (now_ms() as f64).into()],
    )
    .await
}

/// The one way a key is rotated, whoever asks (the key itself, a session, the
/// dashboard): the replacement has exactly the old key's name, scopes, expiry,
/// allowed models and rate limit, its spend caps and the spending counted
/// against them — a key can never widen its own rights by rotating. At most
/// one replacement per key: a second or concurrent rotation of the same key
/// is a 409, never a second secret.
///
/// Order, so that no failure leaves a key with fewer restrictions:
/// 1. the wallet object copies the key's caps and spending to the new id and
///    refuses the old key from now on (idempotent: a retry copies nothing twice);
/// 2. one D1 batch inserts the replacement (settings copied by the database
///    from the old row, only while it is active) and revokes the old key.
///
/// If (2) fails, the old key is refused by the wallet but still valid in D1,
/// so the same caller can retry the rotation with it.
pub async fn rotate(env: &Env, user_id: &str, old: &KeyRow) -> Result<IssuedKey, GatewayError> {
    let key = ApiKey::generate();
    let (prefix, last4) = key.display_parts();
    let id = new_id("key_");
    WalletClient::for_user(env, user_id)?
        .change_status(&StatusChange {
            user_id: user_id.into(),
            revoke_key_id: Some(old.id.clone()),
            replaced_by: Some(id.clone()),
            ..StatusChange::default()
        })
        .await?;
    let db = env.d1("DB").map_err(internal)?;
    let now = now_ms() as f64;
    let insert = db
        .prepare(
            "INSERT INTO api_keys (id, user_id, key_hash, key_prefix, key_last4, name, scopes, status, created_at,
                                   expires_at, allowed_models, rate_limit_per_minute, replaces)
             SELECT ?1, user_id, ?3, ?4, ?5, name, scopes, 'active', ?6, expires_at, allowed_models, rate_limit_per_minute, id
             FROM api_keys WHERE id = ?7 AND user_id = ?2 AND status = 'active'
             ON CONFLICT DO NOTHING",
        )
        .bind(&[id.as_str().into(), user_id.into(), key.hash_hex().into(), prefix.as_str().into(), last4.as_str().into(), now.into(), old.id.as_str().into()])
        .map_err(internal)?;
    let retire = db
        .prepare("UPDATE api_keys SET status = 'revoked', revoked_at = ?3, replaced_by = ?4 WHERE id = ?1 AND user_id = ?2 AND status = 'active'")
        .bind(&[old.id.as_str().into(), user_id.into(), now.into(), id.as_str().into()])
        .map_err(internal)?;
    let results = crate::db::batch(&db, vec![insert, retire], crate::db::Retry::IfLocked).await?;
    let inserted = results.first().and_then(crate::db::changes).unwrap_or(0);
    if inserted == 0 {
        return Err(GatewayError::Conflict(
            "This key has already been rotated (or revoked): use the key that replaced it, or create a new key in the dashboard.".into(),
        ));
    }
    Ok(IssuedKey { id, key, name: old.name.clone(), display: display_form(&prefix, &last4), scopes: old.scope_list().iter().map(|s| s.to_string()).collect() })
}
