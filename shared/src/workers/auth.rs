//! API-key authentication (feature `workers`): `Bearer dxk_…` → SHA-256 →
//! (user, key, scopes, expiry, allowed models). The data plane may cache it in
//! the isolate (`KeyLookup::Cached`, for `KEY_CACHE_TTL_SECONDS`, default 30)
//! because its wallet call checks revocation on every request, and an expiry
//! is checked against the clock every time; settings changes (allowed models)
//! reach it within the TTL. Other callers read D1 each time
//! (`KeyLookup::Fresh`) so a revoked key is refused on the very next request.

use crate::apikey::ApiKey;
use crate::error::{Credential, GatewayError};
use crate::http::{bearer_token, now_ms};
use crate::negative_cache::NegativeCache;
use std::cell::RefCell;
use std::collections::HashMap;
use worker::{Env, Headers};

#[derive(Clone, Debug)]
pub struct Caller {
    pub user_id: String,
    pub key_id: String,
    pub scopes: Vec<String>,
    /// After this instant the key is refused (`expired_api_key`).
    pub expires_at: Option<i64>,
    /// The only models this key may call (None: any allowed model).
    pub allowed_models: Option<Vec<String>>,
    /// The key's own requests-per-minute limit.
    pub rate_limit_per_minute: Option<u32>,
}

impl Caller {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope || s == "admin")
    }

    /// Whether this key may call `model`.
    pub fn may_use(&self, model: &str) -> bool {
        self.allowed_models.as_ref().is_none_or(|list| list.iter().any(|m| m == model))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum KeyLookup {
    /// Isolate cache; only where revocation is checked elsewhere (the wallet).
    Cached,
    /// D1 on every call.
    Fresh,
}

/// Bounded so a flood of distinct valid keys cannot grow the isolate without limit.
const CACHE_CAPACITY: usize = 10_000;

/// How long an isolate remembers that a key hash is unknown. Issued keys are
/// 32 random bytes, so a hash unknown now is not about to be issued.
const UNKNOWN_TTL_MS: i64 = 5 * 60_000;

thread_local! {
    static KEY_CACHE: RefCell<HashMap<String, (Caller, i64)>> = RefCell::new(HashMap::new());
    static UNKNOWN: RefCell<NegativeCache> = RefCell::new(NegativeCache::new(UNKNOWN_TTL_MS, CACHE_CAPACITY));
}

/// Authenticates an API key that must carry `scope`.
pub async fn authenticate(headers: &Headers, env: &Env, lookup: KeyLookup, scope: &str) -> Result<Caller, GatewayError> {
    let token = bearer_token(headers).ok_or(GatewayError::MissingAuth)?;
    let key = ApiKey::parse(&token).map_err(|_| GatewayError::InvalidAuth)?;
    let hash = key.hash_hex();
    // A well-formed key that does not exist costs one D1 read per isolate per TTL.
    if UNKNOWN.with(|u| u.borrow().known_absent(&hash, now_ms())) {
        return Err(GatewayError::InvalidAuth);
    }
    let now = now_ms();
    let ttl_ms = env.var("KEY_CACHE_TTL_SECONDS").ok().and_then(|v| v.to_string().trim().parse::<i64>().ok()).unwrap_or(30) * 1000;
    let cached = match lookup {
        KeyLookup::Cached => KEY_CACHE.with(|c| c.borrow().get(&hash).filter(|(_, at)| now - at < ttl_ms).map(|(caller, _)| caller.clone())),
        KeyLookup::Fresh => None,
    };
    let caller = match cached {
        Some(hit) => hit,
        None => {
            let caller = lookup_active(env, &hash).await?;
            if lookup == KeyLookup::Cached {
                KEY_CACHE.with(|c| {
                    let mut cache = c.borrow_mut();
                    if cache.len() >= CACHE_CAPACITY {
                        cache.clear();
                    }
                    cache.insert(hash, (caller.clone(), now));
                });
            }
            caller
        }
    };
    if caller.expires_at.is_some_and(|at| at <= now) {
        return Err(GatewayError::Expired(Credential::ApiKey)); // refused like a revoked key, saying why
    }
    if !caller.has_scope(scope) {
        return Err(GatewayError::Forbidden(format!("This API key lacks the `{scope}` scope.")));
    }
    Ok(caller)
}

async fn lookup_active(env: &Env, hash: &str) -> Result<Caller, GatewayError> {
    #[derive(serde::Deserialize)]
    struct Row {
        id: String,
        user_id: String,
        status: String,
        scopes: String,
        user_status: String,
        expires_at: Option<i64>,
        allowed_models: Option<String>,
        rate_limit_per_minute: Option<i64>,
    }
    let db = env.d1("DB").map_err(internal)?;
    crate::ops::count(|o| o.d1_queries += 1); // rows: `first` reports none (a cold key only)
    let row: Option<Row> = crate::db::first(
        &db,
        "SELECT k.id, k.user_id, k.status, k.scopes, u.status AS user_status, k.expires_at, k.allowed_models, k.rate_limit_per_minute
         FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = ?1",
        &[hash.into()],
    )
    .await?;
    let Some(row) = row else {
        UNKNOWN.with(|u| u.borrow_mut().remember(hash, now_ms()));
        return Err(GatewayError::InvalidAuth);
    };
    let row = Some(row).filter(|r| r.status == "active").ok_or(GatewayError::InvalidAuth)?;
    if row.user_status == "suspended" {
        return Err(GatewayError::UserSuspended);
    }
    Ok(Caller {
        user_id: row.user_id,
        key_id: row.id,
        scopes: row.scopes.split_whitespace().map(str::to_string).collect(),
        expires_at: row.expires_at,
        allowed_models: crate::key_settings::models_from_storage(row.allowed_models.as_deref()),
        rate_limit_per_minute: row.rate_limit_per_minute.and_then(|r| u32::try_from(r).ok()).filter(|r| *r > 0),
    })
}

fn internal(e: worker::Error) -> GatewayError {
    GatewayError::Internal(format!("key lookup: {e}"))
}

/// The operator's `ADMIN_TOKEN` as a bearer token (compared in constant time).
/// An unset or trivially short token disables what it guards rather than
/// opening it.
pub fn admin(headers: &Headers, env: &Env) -> Result<(), GatewayError> {
    let expected = env.secret("ADMIN_TOKEN").map(|s| s.to_string()).unwrap_or_default();
    if expected.len() < 16 {
        return Err(GatewayError::Forbidden("The admin API is not configured.".into()));
    }
    let presented = bearer_token(headers).ok_or(GatewayError::MissingAuth)?;
    if !crate::secret::constant_time_eq(presented.as_bytes(), expected.as_bytes()) {
        return Err(GatewayError::InvalidAuth);
    }
    Ok(())
}
