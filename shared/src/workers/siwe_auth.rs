//! Sign-In with Ethereum in the Workers (feature `workers`): nonces (single
//! use, 10 minutes, in D1), the checks of `chain::siwe` plus the signer, the
//! account an address belongs to, and sessions of our own — HS256 access
//! tokens (1 h, issuer `dexto-siwe`, naming their session `sid`) and a
//! refresh token (30 days, rotated on use, stored as its SHA-256). Such a
//! token is accepted wherever a Supabase session is (`session.rs`), and stops
//! working as soon as its session is revoked or its address unlinked.

use crate::chain::personal_sign::signer;
use crate::chain::siwe::{Expect, Refusal, SiweMessage};
use crate::chain::Address;
use crate::db::{self, ms};
use crate::error::{Credential, GatewayError};
use crate::http::now_ms;
use crate::jwt::{self, KeySet, Policy};
use crate::session::SessionUser;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use worker::{Env, Request};

pub const ISSUER: &str = "dexto-siwe";
pub const NONCE_TTL_MS: i64 = 10 * 60 * 1000;
const ACCESS_TTL_SECS: i64 = 3600;
const REFRESH_TTL_MS: i64 = 30 * 24 * 3600 * 1000;
/// How our refresh tokens start (a Supabase one never does).
pub const REFRESH_PREFIX: &str = "dxr_";
/// The condition of a session (`auth_sessions` named `s`) that still
/// stands but for time: not signed out, its address still linked to its
/// account (unlinking ends its sessions at once).
macro_rules! standing {
    () => {
        "s.revoked_at IS NULL AND EXISTS (SELECT 1 FROM wallet_addresses w WHERE w.address = s.address AND w.user_id = s.user_id)"
    };
}

/// The chain signed in on when `EVM_CHAIN_ID` is not set: Base.
const DEFAULT_CHAIN_ID: u64 = 8453;

/// What a sign-in expects of its message here: `SIWE_DOMAIN` (else the
/// request's own host) and `EVM_CHAIN_ID`.
pub fn expectation(req: &Request, env: &Env) -> (String, u64) {
    let var = |n: &str| env.var(n).ok().map(|v| v.to_string()).filter(|v| !v.is_empty());
    // The request's own authority (host[:port]), read from the URL string:
    // `Request::url()` would link the `url` crate (~200 KB) into the Worker.
    let domain = var("SIWE_DOMAIN").unwrap_or_else(|| {
        let origin = crate::url_query::origin(&req.inner().url()).unwrap_or_default();
        origin.split_once("://").map_or(origin.clone(), |(_, authority)| authority.to_string())
    });
    let chain_id = var("EVM_CHAIN_ID").and_then(|c| c.parse().ok()).unwrap_or(DEFAULT_CHAIN_ID);
    (domain, chain_id)
}

/// Issues a nonce (and drops expired ones, so the table stays small).
pub async fn new_nonce(env: &Env) -> Result<(String, i64), GatewayError> {
    let db = db::database(env)?;
    let now = now_ms();
    let nonce = hex::encode(crate::ids::random_bytes::<16>());
    let expires_at = now + NONCE_TTL_MS;
    db::run(&db, "DELETE FROM siwe_nonces WHERE expires_at < ?1", &[ms(now - NONCE_TTL_MS)]).await?;
    db::run(&db, "INSERT INTO siwe_nonces (nonce, expires_at) VALUES (?1, ?2)", &[nonce.as_str().into(), ms(expires_at)]).await?;
    Ok((nonce, expires_at))
}

/// The address that signed `message`, once every check has passed and its
/// nonce is consumed; `statement`: the one the message must carry (a link).
/// Nothing is written unless it succeeds.
pub async fn proven_address(req: &Request, env: &Env, message: &str, signature: &str, statement: Option<&str>) -> Result<Address, GatewayError> {
    let parsed = SiweMessage::parse(message)?;
    if let Some(expected) = statement.filter(|e| parsed.statement.as_deref() != Some(*e)) {
        return Err(Refusal::WrongStatement { expected: expected.to_string() }.into());
    }
    let (domain, chain_id) = expectation(req, env);
    let now = now_ms();
    parsed.check(&Expect { domain: &domain, chain_id, now_ms: now, max_age_ms: NONCE_TTL_MS })?;
    match signer(message.as_bytes(), signature) {
        Ok(address) if address == parsed.address => {}
        Ok(_) => return Err(Refusal::BadSignature("signed by another address".into()).into()),
        Err(e) => return Err(Refusal::BadSignature(format!("{e:?}")).into()),
    }
    let db = db::database(env)?;
    let consumed: Option<Value> = db::returning(
        &db,
        "UPDATE siwe_nonces SET used_at = ?2 WHERE nonce = ?1 AND used_at IS NULL AND expires_at > ?2 RETURNING nonce",
        &[parsed.nonce.as_str().into(), ms(now)],
    )
    .await?;
    consumed.ok_or(Refusal::UnknownNonce)?;
    Ok(parsed.address)
}

#[derive(Deserialize)]
struct Owner {
    user_id: String,
}

/// The account `address` belongs to, if any.
pub async fn owner(env: &Env, address: &Address) -> Result<Option<String>, GatewayError> {
    let row: Option<Owner> = db::first(&db::database(env)?, "SELECT user_id FROM wallet_addresses WHERE address = ?1", &[address.checksummed().into()]).await?;
    Ok(row.map(|r| r.user_id))
}

/// The id of the account an address creates when it signs in first.
pub fn wallet_first_id(address: &Address) -> String {
    format!("eth:{}", address.checksummed())
}

/// Links `address` to `user_id` (idempotent); an address that belongs to
/// another account is a conflict.
pub async fn link(env: &Env, user_id: &str, address: &Address) -> Result<(), GatewayError> {
    let db = db::database(env)?;
    db::run_idempotent(
        &db,
        "INSERT INTO wallet_addresses (address, user_id, linked_at) VALUES (?1, ?2, ?3) ON CONFLICT(address) DO NOTHING",
        &[address.checksummed().into(), user_id.into(), ms(now_ms())],
    )
    .await?;
    match owner(env, address).await? {
        Some(owner) if owner == user_id => {
            // USDC this address sent before it was linked is now this
            // account's: the billing cron credits it once final.
            db::run_idempotent(
                &db,
                "UPDATE crypto_transfers SET user_id = ?1, status = 'pending' WHERE from_address = ?2 AND status = 'unclaimed'",
                &[user_id.into(), address.checksummed().into()],
            )
            .await
        }
        _ => Err(GatewayError::Conflict(format!(
            "The address {address} belongs to another Dexto account; sign in with it there, or unlink it from that account first."
        ))),
    }
}

fn signing_key(env: &Env) -> Result<Vec<u8>, GatewayError> {
    if let Some(secret) = env.secret("SESSION_SIGNING_SECRET").ok().map(|s| s.to_string()).filter(|s| !s.is_empty()) {
        return Ok(secret.into_bytes());
    }
    // Derived from the sealing key when no secret of its own is configured.
    let base = env.secret("ENCRYPTION_KEY").map_err(|_| GatewayError::Internal("ENCRYPTION_KEY not configured".into()))?.to_string();
    Ok(jwt::derived_hs256_key(&base, crate::chain::siwe::SESSION_KEY_PURPOSE))
}

fn refresh_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn access_token(key: &[u8], user_id: &str, session_id: &str, address: &Address) -> String {
    let now = now_ms() / 1000;
    let claims = json!({"iss": ISSUER, "aud": "authenticated", "role": "authenticated", "sub": user_id, "sid": session_id,
        "address": address.checksummed(), "amr": ["siwe"], "iat": now, "exp": now + ACCESS_TTL_SECS});
    jwt::sign_hs256(&claims, key)
}

/// Opens a session for `user_id`, signed in by `address`.
pub async fn open_session(env: &Env, user_id: &str, address: &Address) -> Result<Value, GatewayError> {
    let key = signing_key(env)?;
    let session_id = crate::ids::new_id("ses_");
    let refresh = format!("{REFRESH_PREFIX}{}", hex::encode(crate::ids::random_bytes::<32>()));
    let now = now_ms();
    db::run(
        &db::database(env)?,
        "INSERT INTO auth_sessions (id, user_id, address, refresh_hash, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        &[session_id.as_str().into(), user_id.into(), address.checksummed().into(), refresh_hash(&refresh).into(), ms(now), ms(now + REFRESH_TTL_MS)],
    )
    .await?;
    Ok(session_body(&access_token(&key, user_id, &session_id, address), &refresh, user_id, address))
}

fn session_body(access: &str, refresh: &str, user_id: &str, address: &Address) -> Value {
    json!({"access_token": access, "token_type": "bearer", "expires_in": ACCESS_TTL_SECS, "refresh_token": refresh,
        "user": {"id": user_id, "address": address.checksummed()}})
}

#[derive(Deserialize)]
struct SessionRow {
    id: String,
    user_id: String,
    address: String,
}

/// A new access token and refresh token for a live session's refresh token
/// (the old refresh token stops working).
pub async fn refresh(env: &Env, refresh_token: &str) -> Result<Value, GatewayError> {
    let db = db::database(env)?;
    let now = now_ms();
    let fresh = format!("{REFRESH_PREFIX}{}", hex::encode(crate::ids::random_bytes::<32>()));
    let row: Option<SessionRow> = db::returning(
        &db,
        concat!("UPDATE auth_sessions AS s SET refresh_hash = ?2 WHERE s.refresh_hash = ?1 AND s.expires_at > ?3 AND ", standing!(), " RETURNING id, user_id, address"),
        &[refresh_hash(refresh_token).into(), refresh_hash(&fresh).into(), ms(now)],
    )
    .await?;
    let Some(row) = row else {
        // Past its 30 days but ended no other way: "sign in again".
        let by_time = concat!("SELECT 1 AS found FROM auth_sessions s WHERE s.refresh_hash = ?1 AND s.expires_at <= ?2 AND ", standing!());
        return Err(match found(&db, by_time, &[refresh_hash(refresh_token).into(), ms(now)]).await? {
            true => GatewayError::Expired(Credential::Session),
            false => GatewayError::InvalidAuth,
        });
    };
    let address = Address::parse_checksummed(&row.address).map_err(|_| GatewayError::Internal("stored address".into()))?;
    crate::session::ensure_user(env, &row.user_id, "").await?;
    Ok(session_body(&access_token(&signing_key(env)?, &row.user_id, &row.id, &address), &fresh, &row.user_id, &address))
}

/// Whether a bearer token is one of ours (its issuer), before verifying it.
pub fn is_session_token(token: &str) -> bool {
    claims_unverified(token).is_some_and(|c| c["iss"] == ISSUER)
}

/// Whether a refresh token is one of ours (a front end keeping both kinds
/// of session tells them apart by it once the access token is gone).
pub fn is_refresh_token(token: &str) -> bool {
    token.starts_with(REFRESH_PREFIX)
}

/// A token's claims, signature not checked: trust them only after `verify`
/// accepted the token.
pub fn claims_unverified(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

/// The session an access token names, if the token is valid and its
/// session neither revoked nor expired.
pub async fn verify(env: &Env, token: &str) -> Result<(SessionUser, String), GatewayError> {
    let key = signing_key(env)?;
    let policy = Policy { issuer: ISSUER, audience: "authenticated", hs256_secret: Some(&key) };
    let verified = jwt::verify(token, &KeySet::default(), &policy, now_ms() / 1000);
    let session_id = claims_unverified(token).and_then(|c| c["sid"].as_str().map(str::to_string)).ok_or(GatewayError::InvalidAuth)?;
    let standing_session = concat!("SELECT 1 AS found FROM auth_sessions s WHERE s.id = ?1 AND ", standing!());
    let claims = match verified {
        // Ours in every other respect (the age is checked last): "sign in
        // again" only if nothing but time ended it. Read on that refusal only.
        Err(jwt::JwtError::Expired) if !found(&db::database(env)?, standing_session, &[session_id.as_str().into()]).await? => return Err(GatewayError::InvalidAuth),
        verified => verified.map_err(GatewayError::from)?,
    };
    // The session and its account in one read (a session's user always exists).
    #[derive(Deserialize)]
    struct Live {
        status: String,
        email: String,
    }
    let live: Option<Live> = db::first(
        &db::database(env)?,
        concat!("SELECT u.status, u.email FROM auth_sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?1 AND s.user_id = ?2 AND s.expires_at > ?3 AND ", standing!()),
        &[session_id.as_str().into(), claims.sub.as_str().into(), ms(now_ms())],
    )
    .await?;
    let live = live.ok_or(GatewayError::InvalidAuth)?;
    if live.status == "suspended" {
        return Err(GatewayError::UserSuspended);
    }
    let user = SessionUser { id: claims.sub, email: live.email };
    Ok((user, session_id))
}

/// Whether `sql` (a `SELECT 1 AS found …`) finds a row.
async fn found(db: &worker::D1Database, sql: &str, args: &[worker::wasm_bindgen::JsValue]) -> Result<bool, GatewayError> {
    Ok(db::first::<Value>(db, sql, args).await?.is_some())
}

/// Ends every session `address` opened on `user_id`'s account (it was
/// unlinked: whoever holds its key no longer speaks for the account).
pub async fn revoke_address_sessions(env: &Env, user_id: &str, address: &Address) -> Result<(), GatewayError> {
    db::run_idempotent(
        &db::database(env)?,
        "UPDATE auth_sessions SET revoked_at = ?3 WHERE user_id = ?1 AND address = ?2 AND revoked_at IS NULL",
        &[user_id.into(), address.checksummed().into(), ms(now_ms())],
    )
    .await
}

/// Ends a session: its access and refresh tokens stop working at once.
pub async fn revoke(env: &Env, session_id: &str) -> Result<(), GatewayError> {
    db::run_idempotent(&db::database(env)?, "UPDATE auth_sessions SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL", &[session_id.into(), ms(now_ms())]).await
}
