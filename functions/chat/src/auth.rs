//! API-key authentication for the data plane. The key hash → (user, key) mapping
//! never changes, so it is cached in the isolate after one D1 read; whether the
//! key is still active is decided by the wallet object in the same call as the
//! hold, so a revocation takes effect on the very next request.

use dexto_shared::apikey::ApiKey;
use dexto_shared::error::GatewayError;
use dexto_shared::http::bearer_token;
use std::cell::RefCell;
use std::collections::HashMap;
use worker::{Env, Headers};

#[derive(Clone, Debug)]
pub struct Caller {
    pub user_id: String,
    pub key_id: String,
}

/// Bounded so a flood of distinct valid keys cannot grow the isolate without limit.
const CACHE_CAPACITY: usize = 10_000;

thread_local! {
    static KEY_CACHE: RefCell<HashMap<String, Caller>> = RefCell::new(HashMap::new());
}

pub async fn authenticate(headers: &Headers, env: &Env) -> Result<Caller, GatewayError> {
    let token = bearer_token(headers).ok_or(GatewayError::MissingAuth)?;
    let key = ApiKey::parse(&token).map_err(|_| GatewayError::InvalidAuth)?;
    let hash = key.hash_hex();
    if let Some(hit) = KEY_CACHE.with(|c| c.borrow().get(&hash).cloned()) {
        return Ok(hit);
    }
    #[derive(serde::Deserialize)]
    struct Row {
        id: String,
        user_id: String,
        status: String,
        scopes: String,
    }
    let db = env.d1("DB").map_err(internal)?;
    let row: Option<Row> = db
        .prepare("SELECT id, user_id, status, scopes FROM api_keys WHERE key_hash = ?1")
        .bind(&[hash.as_str().into()])
        .map_err(internal)?
        .first(None)
        .await
        .map_err(internal)?;
    let row = row.filter(|r| r.status == "active").ok_or(GatewayError::InvalidAuth)?;
    if !row.scopes.split_whitespace().any(|s| s == "gateway:use" || s == "admin") {
        return Err(GatewayError::Forbidden("This API key may not call the gateway.".into()));
    }
    let caller = Caller { user_id: row.user_id, key_id: row.id };
    KEY_CACHE.with(|c| {
        let mut cache = c.borrow_mut();
        if cache.len() >= CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(hash, caller.clone());
    });
    Ok(caller)
}

fn internal(e: worker::Error) -> GatewayError {
    GatewayError::Internal(format!("key lookup: {e}"))
}
