//! Session authentication (feature `workers`): a session opened by Sign-In
//! with Ethereum (`siwe_auth.rs`), or a Supabase one — this verifies the access
//! token (`jwt.rs`) against the project's JWKS — cached in the isolate for at
//! most 10 minutes and refetched (at most every 30 s) when a token names an
//! unknown `kid` — or the legacy HS256 secret, then creates the user on first
//! sight and refuses suspended users.
//!
//! Two doors: [`authenticate`] takes full sessions only, and answers a
//! device token (what a 1.6.9–1.7.x CLI got from a device login) with 403;
//! [`authenticate_cli`] also takes a device token, and is called only by the
//! endpoints that CLI needs (provisioning its key, balance, usage), which
//! then hold it to what it may do. A new endpoint is therefore closed to
//! device tokens unless it opts in.

use crate::device_token::DeviceGrant;
use crate::error::GatewayError;
use crate::http::{bearer_token, now_ms};
use crate::jwt::{self, JwtError, KeySet, Policy};
use std::cell::RefCell;
use worker::{Env, Fetch, Request};

const JWKS_TTL_MS: i64 = 10 * 60 * 1000;
/// Default floor between refetches triggered by unknown `kid`s (a flood of
/// made-up kids must not become a flood of JWKS fetches).
const JWKS_REFETCH_MIN_MS: i64 = 30 * 1000;

#[derive(Clone, Debug)]
pub struct SessionUser {
    pub id: String,
    pub email: String,
}

struct Cached {
    keys: KeySet,
    fetched_at: i64,
}

thread_local! {
    static JWKS: RefCell<Option<Cached>> = const { RefCell::new(None) };
}

pub struct SessionConfig {
    pub issuer: String,
    pub audience: String,
    pub jwks_url: Option<String>,
    pub hs256_secret: Option<String>,
    pub refetch_min_ms: i64,
}

impl SessionConfig {
    pub fn from_env(env: &Env) -> SessionConfig {
        let var = |n: &str| env.var(n).ok().map(|v| v.to_string()).filter(|v| !v.is_empty());
        let base = var("SUPABASE_URL").map(|u| u.trim_end_matches('/').to_string());
        SessionConfig {
            issuer: var("SUPABASE_JWT_ISSUER").or_else(|| base.as_ref().map(|b| format!("{b}/auth/v1"))).unwrap_or_default(),
            audience: var("SUPABASE_JWT_AUDIENCE").unwrap_or_else(|| "authenticated".into()),
            jwks_url: var("SUPABASE_JWKS_URL").or_else(|| base.map(|b| format!("{b}/auth/v1/.well-known/jwks.json"))),
            hs256_secret: env.secret("SUPABASE_JWT_SECRET").ok().map(|s| s.to_string()).filter(|s| !s.is_empty()),
            refetch_min_ms: var("SUPABASE_JWKS_MIN_REFETCH_SECONDS").and_then(|v| v.parse::<i64>().ok()).map_or(JWKS_REFETCH_MIN_MS, |s| s * 1000),
        }
    }
}

/// Authenticates `Authorization: Bearer <Supabase access token>`: a full
/// session. A (valid) device token gets 403 saying to use the dashboard.
pub async fn authenticate(headers: &worker::Headers, env: &Env) -> Result<SessionUser, GatewayError> {
    match authenticate_cli(headers, env).await? {
        CliSession { device: Some(_), .. } => Err(GatewayError::Forbidden(crate::device::DEVICE_TOKEN_REFUSED.into())),
        CliSession { user, device: None } => Ok(user),
    }
}

/// A full session, or a device token (`device` is then set, and the caller
/// must keep it to what a device token may do).
pub struct CliSession {
    pub user: SessionUser,
    pub device: Option<DeviceGrant>,
}

/// Authenticates a Supabase access token or a device token. Only for the
/// endpoints a 1.6.9–1.7.x CLI calls with what its device login gave it.
pub async fn authenticate_cli(headers: &worker::Headers, env: &Env) -> Result<CliSession, GatewayError> {
    let token = bearer_token(headers).ok_or(GatewayError::MissingAuth)?;
    if crate::device::is_device_token(&token) {
        let (user, grant) = crate::device_token::verify(env, &token).await?;
        return Ok(CliSession { user, device: Some(grant) });
    }
    if crate::siwe_auth::is_session_token(&token) {
        // A session opened by Sign-In with Ethereum (siwe_auth.rs).
        let (user, _) = crate::siwe_auth::verify(env, &token).await?;
        return Ok(CliSession { user, device: None });
    }
    let claims = verify_token(&token, env).await?;
    let user = ensure_user(env, &claims.sub, claims.email.as_deref().unwrap_or("")).await?;
    Ok(CliSession { user, device: None })
}

/// Verifies a token and returns its claims (no user lookup).
pub async fn verify_token(token: &str, env: &Env) -> Result<jwt::SessionClaims, GatewayError> {
    let config = SessionConfig::from_env(env);
    if config.issuer.is_empty() {
        return Err(GatewayError::Internal("SUPABASE_URL / SUPABASE_JWT_ISSUER not configured".into()));
    }
    let policy = Policy { issuer: &config.issuer, audience: &config.audience, hs256_secret: config.hs256_secret.as_deref().map(str::as_bytes) };
    let now = now_ms();
    let mut keys = current_keys(&config, now, false).await;
    if jwt::needs_key(token, &keys) {
        keys = current_keys(&config, now, true).await;
    }
    jwt::verify(token, &keys, &policy, now / 1000).map_err(|e| {
        let reason = match e {
            JwtError::Expired => "expired",
            JwtError::UnknownKid => "unknown_kid",
            JwtError::BadSignature => "bad_signature",
            JwtError::UnsupportedAlg(_) => "unsupported_alg",
            _ => "bad_claims",
        };
        crate::log::event("session.rejected", serde_json::json!({"reason": reason}));
        GatewayError::from(e)
    })
}

async fn current_keys(config: &SessionConfig, now: i64, refetch: bool) -> KeySet {
    let cached = JWKS.with(|c| c.borrow().as_ref().map(|c| (c.keys.clone(), c.fetched_at)));
    let stale = match &cached {
        Some((_, at)) if refetch => now - at >= config.refetch_min_ms,
        Some((_, at)) => now - at >= JWKS_TTL_MS,
        None => true,
    };
    if !stale {
        return cached.map(|c| c.0).unwrap_or_default();
    }
    let Some(url) = &config.jwks_url else { return KeySet::default() };
    match fetch_jwks(url).await {
        Some(keys) => {
            JWKS.with(|c| *c.borrow_mut() = Some(Cached { keys: keys.clone(), fetched_at: now }));
            keys
        }
        // Keep serving the last good set when the JWKS endpoint blinks.
        None => cached.map(|c| c.0).unwrap_or_default(),
    }
}

async fn fetch_jwks(url: &str) -> Option<KeySet> {
    let req = Request::new(url, worker::Method::Get).ok()?;
    let mut resp = Fetch::Request(req).send().await.ok()?;
    if resp.status_code() != 200 {
        crate::log::event("session.jwks_fetch_failed", serde_json::json!({"status": resp.status_code()}));
        return None;
    }
    let doc: serde_json::Value = resp.json().await.ok()?;
    Some(KeySet::from_jwks(&doc))
}

/// Creates the user (and an empty balance) on first sight; refuses suspended
/// users. The usual case — a known user — is one read and no write.
pub async fn ensure_user(env: &Env, id: &str, email: &str) -> Result<SessionUser, GatewayError> {
    #[derive(serde::Deserialize)]
    struct Row {
        status: String,
        email: String,
    }
    let db = crate::db::database(env)?;
    let lookup = "SELECT status, email FROM users WHERE id = ?1";
    let row = match crate::db::first::<Row>(&db, lookup, &[id.into()]).await? {
        Some(row) => row,
        None => {
            let now = crate::db::ms(now_ms());
            crate::db::batch(
                &db,
                vec![
                db.prepare("INSERT INTO users (id, email, status, created_at, updated_at) VALUES (?1, ?2, 'active', ?3, ?3) ON CONFLICT(id) DO NOTHING")
                    .bind(&[id.into(), email.into(), now.clone()])
                    .map_err(internal)?,
                db.prepare("INSERT INTO balances (user_id, balance_micros, version, updated_at) VALUES (?1, 0, 0, ?2) ON CONFLICT(user_id) DO NOTHING")
                    .bind(&[id.into(), now])
                    .map_err(internal)?,
            ],
                // Both inserts do nothing if the rows exist: safe to repeat.
                crate::db::Retry::Idempotent,
            )
            .await?;
            // A concurrent first request may have created it: read what is stored.
            crate::db::first::<Row>(&db, lookup, &[id.into()]).await?.ok_or_else(|| internal("user row missing"))?
        }
    };
    if row.status == "suspended" {
        return Err(GatewayError::UserSuspended);
    }
    Ok(SessionUser { id: id.to_string(), email: row.email })
}

fn internal(e: impl std::fmt::Display) -> GatewayError {
    GatewayError::Internal(format!("session: {e}"))
}
