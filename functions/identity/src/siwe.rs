//! Sign-In with Ethereum (EIP-4361), the endpoints; the checks, nonces,
//! accounts and sessions are `dexto_shared::siwe_auth`.
//!
//! - `GET /api/auth/siwe/nonce` (no auth, throttled per IP): `{nonce,
//!   expires_at, domain, chain_id}` — what the message must name.
//! - `POST /api/auth/siwe/verify {message, signature}`: a session; an
//!   address never seen before creates its own (wallet-first) account.
//! - `POST /api/auth/siwe/refresh {refresh_token}`, `POST /api/auth/siwe/logout` (session).
//! - `GET /api/auth/siwe/session` (session): whose session it is and until
//!   when — for the dashboard, which cannot verify our tokens itself.
//! - `GET /api/auth/siwe/addresses`, `POST /api/auth/siwe/link {message,
//!   signature}` (the statement must be `link_statement` of the account),
//!   `DELETE /api/auth/siwe/addresses/{address}` (session; ends the sessions
//!   that address opened): the addresses of the signed-in account.

use crate::principal;
use crate::ApiResult;
use dexto_shared::chain::Address;
use dexto_shared::db;
use dexto_shared::error::GatewayError;
use dexto_shared::http::{bearer_token, json_object, ok_json};
use dexto_shared::siwe_auth;
use serde_json::{json, Value};
use worker::{Env, Request};

pub async fn nonce(req: &Request, env: &Env) -> ApiResult {
    let ip = req.headers().get("CF-Connecting-IP").ok().flatten().unwrap_or_else(|| "unknown".into());
    let limits = [("SIWE_NONCE_PER_IP", format!("ip:{ip}")), ("SIWE_NONCE_GLOBAL", "all".to_string())];
    dexto_shared::throttle::check(env, "siwe.nonce", &limits).await?;
    let (nonce, expires_at) = siwe_auth::new_nonce(env).await?;
    let (domain, chain_id) = siwe_auth::expectation(req, env);
    ok_json(200, &json!({"nonce": nonce, "expires_at": dexto_shared::time::rfc3339(expires_at), "domain": domain, "chain_id": chain_id}))
}

/// The `{message, signature}` of a request body.
async fn signed(req: &mut Request) -> Result<(String, String), GatewayError> {
    let body = json_object(req).await?;
    let field = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_string);
    match (field("message"), field("signature")) {
        (Some(message), Some(signature)) => Ok((message, signature)),
        _ => Err(GatewayError::BadRequest("Send {\"message\": the EIP-4361 text, \"signature\": its personal_sign signature (0x…)}.".into())),
    }
}

pub async fn verify(req: &mut Request, env: &Env) -> ApiResult {
    let (message, signature) = signed(req).await?;
    let address = siwe_auth::proven_address(req, env, &message, &signature, None).await?;
    let owner = siwe_auth::owner(env, &address).await?;
    let user_id = owner.clone().unwrap_or_else(|| siwe_auth::wallet_first_id(&address));
    // Creates a wallet-first account on first sight; refuses a suspended one.
    dexto_shared::session::ensure_user(env, &user_id, "").await?;
    if owner.is_none() {
        siwe_auth::link(env, &user_id, &address).await?;
    }
    let session = siwe_auth::open_session(env, &user_id, &address).await?;
    crate::security_event(req, env, &user_id, "siwe.sign_in", &address.checksummed(), json!({})).await?;
    ok_json(200, &session)
}

pub async fn refresh(req: &mut Request, env: &Env) -> ApiResult {
    let body = json_object(req).await?;
    let token = body.get("refresh_token").and_then(Value::as_str).ok_or_else(|| GatewayError::BadRequest("Send {\"refresh_token\": \"dxr_…\"}.".into()))?;
    ok_json(200, &siwe_auth::refresh(env, token).await?)
}

pub async fn logout(req: &Request, env: &Env) -> ApiResult {
    let token = bearer_token(req.headers()).filter(|t| siwe_auth::is_session_token(t)).ok_or(GatewayError::MissingAuth)?;
    let (user, session_id) = siwe_auth::verify(env, &token).await?;
    siwe_auth::revoke(env, &session_id).await?;
    crate::security_event(req, env, &user.id, "siwe.sign_out", &session_id, json!({})).await?;
    ok_json(200, &json!({"success": true}))
}

pub async fn session(req: &Request, env: &Env) -> ApiResult {
    let token = bearer_token(req.headers()).filter(|t| siwe_auth::is_session_token(t)).ok_or(GatewayError::MissingAuth)?;
    let (user, _) = siwe_auth::verify(env, &token).await?;
    // `verify` accepted the token: its claims are ours.
    let claims = siwe_auth::claims_unverified(&token).unwrap_or_default();
    ok_json(200, &json!({"user": {"id": user.id, "email": user.email, "address": claims["address"]}, "expires_at": claims["exp"]}))
}

pub async fn addresses(req: &Request, env: &Env) -> ApiResult {
    let user = principal::session(req, env).await?;
    let rows: Vec<Value> = db::all(
        &db::database(env)?,
        "SELECT address, linked_at FROM wallet_addresses WHERE user_id = ?1 ORDER BY linked_at",
        &[user.id.as_str().into()],
    )
    .await?;
    ok_json(200, &json!({"data": rows}))
}

pub async fn link(req: &mut Request, env: &Env) -> ApiResult {
    let user = principal::session(req, env).await?;
    let (message, signature) = signed(req).await?;
    let statement = dexto_shared::chain::siwe::link_statement(&user.id);
    let address = siwe_auth::proven_address(req, env, &message, &signature, Some(&statement)).await?;
    siwe_auth::link(env, &user.id, &address).await?;
    crate::security_event(req, env, &user.id, "siwe.link", &address.checksummed(), json!({})).await?;
    ok_json(200, &json!({"address": address.checksummed(), "user_id": user.id}))
}

pub async fn unlink(req: &Request, env: &Env, address: &str) -> ApiResult {
    let user = principal::session(req, env).await?;
    let address = Address::parse(address).map_err(|_| GatewayError::BadRequest(format!("`{address}` is not an Ethereum address.")))?;
    if siwe_auth::wallet_first_id(&address) == user.id {
        return Err(GatewayError::Conflict(format!("{address} is this account's own sign-in address; it cannot be unlinked.")));
    }
    let db = db::database(env)?;
    let removed: Option<Value> = db::returning(
        &db,
        "DELETE FROM wallet_addresses WHERE address = ?1 AND user_id = ?2 RETURNING address",
        &[address.checksummed().into(), user.id.as_str().into()],
    )
    .await?;
    removed.ok_or_else(|| GatewayError::NotFound(format!("{address} is not linked to this account.")))?;
    siwe_auth::revoke_address_sessions(env, &user.id, &address).await?;
    crate::security_event(req, env, &user.id, "siwe.unlink", &address.checksummed(), json!({})).await?;
    ok_json(200, &json!({"success": true}))
}
