//! Per-user OpenRouter keys (feature `workers`). Each user calls OpenRouter
//! with their own key, minted through the management API with
//! `include_byok_in_limit: true` and a spend `limit`, sealed with AES-256-GCM
//! in D1 (`upstream_keys`), decrypted once per isolate. Without
//! `OPENROUTER_PROVISIONING_KEY` the org key `OPENROUTER_API_KEY` is used.

use crate::error::GatewayError;
use crate::http::now_ms;
use crate::ids::new_id;
use crate::money::{Micros, Picos};
use crate::sealing::{self, SealingKey};
use crate::secret::Secret;
use crate::wallet_client::WalletClient;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use worker::{Env, Fetch, Headers, Method, Request, RequestInit};

thread_local! {
    static OPENED: RefCell<HashMap<String, Secret<String>>> = RefCell::new(HashMap::new());
    /// Read once per isolate: a deploy or a changed secret starts new isolates,
    /// and decoding the sealing keys on every call was per-request work.
    static CONFIG: std::cell::OnceCell<Rc<UpstreamConfig>> = const { std::cell::OnceCell::new() };
}

pub struct UpstreamConfig {
    pub base: String,
    pub org_key: Secret<String>,
    provisioning_key: Option<Secret<String>>,
    /// Current sealing key first, then older ones still able to open values.
    sealing: Vec<SealingKey>,
}

fn internal(e: impl std::fmt::Display) -> GatewayError {
    GatewayError::Internal(format!("upstream keys: {e}"))
}

impl UpstreamConfig {
    /// This isolate's upstream settings (read from `env` the first time).
    pub fn from_env(env: &Env) -> Rc<UpstreamConfig> {
        CONFIG.with(|c| c.get_or_init(|| Rc::new(UpstreamConfig::read(env))).clone())
    }

    fn read(env: &Env) -> UpstreamConfig {
        let var = |n: &str| env.var(n).ok().map(|v| v.to_string()).filter(|v| !v.trim().is_empty());
        let secret = |n: &str| env.secret(n).ok().map(|v| v.to_string()).filter(|v| !v.trim().is_empty());
        let mut sealing = Vec::new();
        for (key, id) in [("ENCRYPTION_KEY", "ENCRYPTION_KEY_ID"), ("ENCRYPTION_KEY_PREVIOUS", "ENCRYPTION_KEY_PREVIOUS_ID")] {
            if let (Some(k), Some(id)) = (secret(key), var(id).or_else(|| (key == "ENCRYPTION_KEY").then(|| "k1".into()))) {
                match SealingKey::from_base64(&id, &k) {
                    Ok(sk) => sealing.push(sk),
                    Err(_) => crate::log::event("config.bad_encryption_key", json!({"name": key})),
                }
            }
        }
        UpstreamConfig {
            base: var("OPENROUTER_BASE_URL").unwrap_or_else(|| "https://openrouter.ai/api/v1".into()).trim_end_matches('/').to_string(),
            org_key: Secret::new(secret("OPENROUTER_API_KEY").unwrap_or_default()),
            provisioning_key: secret("OPENROUTER_PROVISIONING_KEY").map(Secret::new),
            sealing,
        }
    }

    /// Per-user keys are on when both the management key and a sealing key exist.
    pub fn per_user(&self) -> bool {
        self.provisioning_key.is_some() && !self.sealing.is_empty()
    }

    pub(crate) async fn management(&self, method: Method, path: &str, body: Option<Value>) -> Result<(u16, Value), GatewayError> {
        let key = self.provisioning_key.as_ref().ok_or_else(|| internal("no provisioning key"))?;
        let headers = Headers::new();
        // Not the runtime's error text: it could carry the secret value.
        headers.set("Authorization", &format!("Bearer {}", key.expose())).map_err(|_| internal("authorization header"))?;
        headers.set("Content-Type", "application/json").map_err(internal)?;
        let mut init = RequestInit::new();
        init.with_method(method).with_headers(headers);
        if let Some(b) = body {
            init.with_body(Some(b.to_string().into()));
        }
        let req = Request::new_with_init(&format!("{}{path}", self.base), &init).map_err(internal)?;
        crate::ops::count(|o| o.subrequests += 1);
        let mut resp = Fetch::Request(req).send().await.map_err(|_| GatewayError::UpstreamUnavailable)?;
        let status = resp.status_code();
        let value = resp.json::<Value>().await.unwrap_or(Value::Null);
        Ok((status, value))
    }
}

impl UpstreamConfig {
    /// Seals a key with the current sealing key: (ciphertext, key id).
    pub(crate) fn seal(&self, key: &str) -> Result<(String, String), GatewayError> {
        let current = self.sealing.first().ok_or_else(|| internal("no sealing key"))?;
        Ok((current.seal(key), current.id.clone()))
    }
}

#[derive(serde::Deserialize)]
struct Row {
    id: String,
    upstream_hash: String,
    ciphertext: String,
    enc_key_id: String,
    created_at: i64,
    #[serde(default)]
    limit_synced_at: Option<i64>,
}

async fn active_row(env: &Env, user_id: &str) -> Result<Option<Row>, GatewayError> {
    crate::ops::count(|o| o.d1_queries += 1); // a cold isolate or a rotated key only
    crate::db::first(
        &crate::db::database(env)?,
        "SELECT id, upstream_hash, ciphertext, enc_key_id, created_at, limit_synced_at FROM upstream_keys WHERE user_id = ?1 AND status = 'active'",
        &[user_id.into()],
    )
    .await
}

/// The key to call OpenRouter with for this user: theirs (minted on first
/// need), or the org key when per-user keys are off.
pub async fn key_for(env: &Env, user_id: &str) -> Result<Secret<String>, GatewayError> {
    let config = UpstreamConfig::from_env(env);
    if !config.per_user() {
        return Ok(config.org_key.clone());
    }
    if let Some(hit) = OPENED.with(|m| m.borrow().get(user_id).cloned()) {
        return Ok(hit);
    }
    let row = match active_row(env, user_id).await? {
        Some(row) => row,
        None => {
            ensure(env, user_id).await?;
            active_row(env, user_id).await?.ok_or_else(|| internal("minted key not stored"))?
        }
    };
    let key = sealing::open(&row.ciphertext, &row.enc_key_id, &config.sealing).map_err(|e| internal(format!("{e:?}")))?;
    OPENED.with(|m| m.borrow_mut().insert(user_id.to_string(), key.clone()));
    Ok(key)
}

/// Drops the isolate's copy (after the upstream refused it, e.g. rotated away).
pub fn forget(user_id: &str) {
    OPENED.with(|m| m.borrow_mut().remove(user_id));
}

/// Mints the user's upstream key if they have none. Safe under concurrency:
/// D1 allows one active key per user; the loser deletes what it minted.
pub async fn ensure(env: &Env, user_id: &str) -> Result<(), GatewayError> {
    let config = UpstreamConfig::from_env(env);
    if !config.per_user() || active_row(env, user_id).await?.is_some() {
        return Ok(());
    }
    let balance = WalletClient::for_user(env, user_id)?.state().await?.balance;
    let (hash, sealed) = mint(&config, user_id, balance).await?;
    let stored = store(env, &config, user_id, &hash, &sealed, balance, None).await?;
    if !stored {
        delete_upstream(&config, &hash).await;
    }
    Ok(())
}

async fn mint(config: &UpstreamConfig, user_id: &str, balance: Micros) -> Result<(String, String), GatewayError> {
    let body = json!({"name": format!("dexto:{user_id}"), "limit": balance.max(Micros::ZERO).as_json_usd(), "include_byok_in_limit": true});
    let (status, resp) = config.management(Method::Post, "/keys", Some(body)).await?;
    let (Some(hash), Some(key)) = (resp.pointer("/data/hash").and_then(Value::as_str), resp.get("key").and_then(Value::as_str)) else {
        crate::log::event("upstream_key.mint_failed", json!({"user_id": user_id, "status": status}));
        return Err(GatewayError::UpstreamUnavailable);
    };
    let (sealed, _) = config.seal(key)?;
    crate::log::event("upstream_key.minted", json!({"user_id": user_id, "upstream_hash": hash, "limit_micros": balance.0}));
    Ok((hash.to_string(), sealed))
}

/// Stores a sealed key as the user's active one, retiring `replacing` in the
/// same batch. False if another active key won the race.
async fn store(env: &Env, config: &UpstreamConfig, user_id: &str, hash: &str, sealed: &str, limit: Micros, replacing: Option<&str>) -> Result<bool, GatewayError> {
    let db = env.d1("DB").map_err(internal)?;
    let now = now_ms() as f64;
    let mut batch = Vec::new();
    if let Some(old) = replacing {
        batch.push(
            db.prepare("UPDATE upstream_keys SET status = 'retired', retired_at = ?2 WHERE id = ?1 AND status = 'active'")
                .bind(&[old.into(), now.into()])
                .map_err(internal)?,
        );
    }
    batch.push(
        db.prepare(
            "INSERT INTO upstream_keys (id, user_id, upstream_hash, ciphertext, enc_key_id, limit_micros, limit_synced_at, status, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'active', ?7) ON CONFLICT DO NOTHING",
        )
        .bind(&[new_id("uk_").into(), user_id.into(), hash.into(), sealed.into(), config.sealing[0].id.as_str().into(), (limit.0 as f64).into(), now.into()])
        .map_err(internal)?,
    );
    let results = crate::db::batch(&db, batch, crate::db::Retry::IfLocked).await?;
    let inserted = results.last().and_then(crate::db::changes).unwrap_or(0);
    forget(user_id);
    Ok(inserted > 0)
}

pub(crate) async fn delete_upstream(config: &UpstreamConfig, hash: &str) {
    if let Ok((status, _)) = config.management(Method::Delete, &format!("/keys/{hash}"), None).await {
        if status >= 300 {
            crate::log::event("upstream_key.delete_failed", json!({"upstream_hash": hash, "status": status}));
        }
    }
}

/// What an upstream key has spent, by OpenRouter's count (management API):
/// its credit `usage` plus `byok_usage` (the provider's own charge on BYOK
/// requests), exactly — the same total the ledger bills as provider cost, and
/// what the key's `limit` counts (`include_byok_in_limit`).
async fn spent_upstream(config: &UpstreamConfig, hash: &str) -> Result<Picos, GatewayError> {
    spent_of(&upstream_record(config, hash).await?)
}

/// A key record's spending (`usage` + `byok_usage`), exactly.
pub(crate) fn spent_of(key: &Value) -> Result<Picos, GatewayError> {
    let amount = |name: &str| match key.get(name) {
        Some(Value::Number(n)) => Picos::parse_usd(&n.to_string()).map_err(internal),
        _ => Ok(Picos::ZERO),
    };
    Ok(amount("usage")?.plus(amount("byok_usage")?))
}

/// The management API's record of one key (`data` of `GET /keys/{hash}`).
pub(crate) async fn upstream_record(config: &UpstreamConfig, hash: &str) -> Result<Value, GatewayError> {
    let (status, mut key) = config.management(Method::Get, &format!("/keys/{hash}"), None).await?;
    if status != 200 {
        return Err(internal(format!("GET key status {status}")));
    }
    Ok(key["data"].take())
}

/// A USD amount of a key record, exactly (JSON number text → micro-USD, up).
pub(crate) fn usd_field(key: &Value, name: &str) -> Result<Option<Micros>, GatewayError> {
    match key.get(name) {
        Some(Value::Number(n)) => Ok(Some(Picos::parse_usd(&n.to_string()).map_err(internal)?.ceil_micros())),
        _ => Ok(None),
    }
}

/// What a user may know of their upstream key (never the key itself): whether
/// it exists, its limit, what remains of it and what it spent this month.
pub async fn status(env: &Env, user_id: &str) -> Result<Value, GatewayError> {
    let config = UpstreamConfig::from_env(env);
    if !config.per_user() {
        return Ok(json!({"per_user_keys": false, "exists": false}));
    }
    let Some(row) = active_row(env, user_id).await? else { return Ok(json!({"per_user_keys": true, "exists": false})) };
    let key = upstream_record(&config, &row.upstream_hash).await?;
    let usd = |name: &str| -> Result<Value, GatewayError> { Ok(usd_field(&key, name)?.map_or(Value::Null, Micros::as_json_usd)) };
    Ok(json!({
        "per_user_keys": true, "exists": true, "created_at": row.created_at,
        "disabled": key.get("disabled").and_then(Value::as_bool).unwrap_or(false),
        "limit_usd": usd("limit")?, "limit_remaining_usd": usd("limit_remaining")?, "limit_reset": key.get("limit_reset").cloned().unwrap_or(Value::Null),
        "usage_usd": usd("usage")?, "usage_monthly_usd": usd("usage_monthly")?, "limit_synced_at": row.limit_synced_at,
    }))
}

/// Sets the upstream key's `limit` to what it has spent plus the user's
/// balance, so OpenRouter can never spend beyond what the user paid.
pub async fn sync_limit(env: &Env, user_id: &str, balance: Micros) -> Result<(), GatewayError> {
    let config = UpstreamConfig::from_env(env);
    if !config.per_user() {
        return Ok(());
    }
    let Some(row) = active_row(env, user_id).await? else { return Ok(()) };
    let spent = spent_upstream(&config, &row.upstream_hash).await?.ceil_micros();
    let limit = spent.saturating_add(balance.max(Micros::ZERO));
    let (status, _) = config.management(Method::Patch, &format!("/keys/{}", row.upstream_hash), Some(json!({"limit": limit.as_json_usd()}))).await?;
    if status != 200 {
        return Err(internal(format!("PATCH key status {status}")));
    }
    crate::db::run_idempotent(
        &crate::db::database(env)?,
        "UPDATE upstream_keys SET limit_micros = ?2, limit_synced_at = ?3 WHERE id = ?1",
        &[row.id.as_str().into(), (limit.0 as f64).into(), (now_ms() as f64).into()],
    )
    .await
}

/// What the user's current upstream key has spent, as OpenRouter reports it
/// (exactly, in pico-USD), and when that key was minted (its usage counts from
/// then). None when per-user keys are off or the user has none yet.
pub async fn reported_usage(env: &Env, user_id: &str) -> Result<Option<(Picos, i64)>, GatewayError> {
    let config = UpstreamConfig::from_env(env);
    if !config.per_user() {
        return Ok(None);
    }
    let Some(row) = active_row(env, user_id).await? else { return Ok(None) };
    let spent = spent_upstream(&config, &row.upstream_hash).await?;
    Ok(Some((spent, row.created_at)))
}

/// Replaces the user's upstream key: mint a new one with the same remaining
/// allowance, swap atomically in D1, then delete the old one upstream.
pub async fn rotate(env: &Env, user_id: &str) -> Result<(), GatewayError> {
    let config = UpstreamConfig::from_env(env);
    if !config.per_user() {
        return Err(GatewayError::BadRequest("Per-user upstream keys are not enabled.".into()));
    }
    let Some(old) = active_row(env, user_id).await? else {
        return ensure(env, user_id).await;
    };
    let balance = WalletClient::for_user(env, user_id)?.state().await?.balance;
    let (hash, sealed) = mint(&config, user_id, balance).await?;
    if !store(env, &config, user_id, &hash, &sealed, balance, Some(&old.id)).await? {
        delete_upstream(&config, &hash).await;
        return Err(GatewayError::Internal("concurrent upstream key rotation".into()));
    }
    delete_upstream(&config, &old.upstream_hash).await;
    crate::log::event("upstream_key.rotated", json!({"user_id": user_id, "old": old.upstream_hash, "new": hash}));
    Ok(())
}
