//! The signed-in user, from the session cookies: the access token (verified
//! on every request, like any session) — Supabase's, or one of the identity
//! Worker's own from Sign-In with Ethereum (`siwe.rs`), told apart by its
//! issuer — refreshed through whichever issued it when it is about to
//! expire, and the CSRF secret forms must echo.

use crate::respond::PageError;
use crate::wallet_session::Holder;
use crate::supabase::{Supabase, Tokens};
use dexto_shared::secret::Secret;
use dexto_shared::siwe_auth;
use dexto_shared::web::{cookies, csrf};
use worker::{Env, Request};

pub use crate::signed_in::{own_origin, Session};

/// Refresh when the access token has less than this left, so an API call made
/// with it does not fail half-way through a page.
const REFRESH_MARGIN_SECONDS: i64 = 60;
/// How long a browser stays signed in without visiting (the refresh token's cookie).
const REFRESH_COOKIE_SECONDS: i64 = 30 * 24 * 3600;

pub fn cookie(req: &Request, name: &str) -> Option<String> {
    let header = req.headers().get("Cookie").ok().flatten()?;
    cookies::get(&header, name).map(str::to_string)
}

/// A fresh CSRF secret (256 random bits).
pub fn new_csrf() -> String {
    hex::encode(dexto_shared::ids::random_bytes::<32>())
}

/// The cookies that make a session, after sign-in or a refresh.
pub fn session_cookies(tokens: &Tokens, csrf: &str) -> Vec<String> {
    vec![
        cookies::set(cookies::SESSION, tokens.access.expose(), tokens.expires_in),
        cookies::set(cookies::REFRESH, tokens.refresh.expose(), REFRESH_COOKIE_SECONDS),
        cookies::set(cookies::CSRF, csrf, REFRESH_COOKIE_SECONDS),
    ]
}

pub fn cleared_cookies() -> Vec<String> {
    [cookies::SESSION, cookies::REFRESH, cookies::CSRF].iter().map(|n| cookies::clear(n)).collect()
}

/// The current session, refreshed if needed; None when signed out or the
/// refresh token no longer works.
pub async fn current(req: &Request, env: &Env) -> Result<Option<Session>, PageError> {
    let now_s = dexto_shared::http::now_ms() / 1000;
    let existing = cookie(req, cookies::CSRF).filter(|c| c.len() >= 32);
    let csrf = existing.clone().unwrap_or_else(new_csrf);
    if let Some(token) = cookie(req, cookies::SESSION) {
        if let Some(holder) = holder(req, env, &token).await? {
            if holder.expires_at - now_s > REFRESH_MARGIN_SECONDS {
                let cookies = if existing.is_none() { vec![cookies::set(cookies::CSRF, &csrf, REFRESH_COOKIE_SECONDS)] } else { Vec::new() };
                return Ok(Some(Session { token: Secret::new(token), user_id: holder.user_id, name: holder.name, csrf, cookies }));
            }
        }
    }
    let Some(refresh) = cookie(req, cookies::REFRESH) else { return Ok(None) };
    let refreshed = if siwe_auth::is_refresh_token(&refresh) {
        crate::wallet_session::refresh(req, env, &refresh).await?
    } else {
        match Supabase::from_env(env).refresh(&refresh).await {
            Ok(t) => Some(t),
            Err(dexto_shared::error::GatewayError::InvalidAuth) => None,
            Err(e) => return Err(e.into()),
        }
    };
    let Some(tokens) = refreshed else { return Ok(None) };
    let holder = holder(req, env, tokens.access.expose()).await?.ok_or(dexto_shared::error::GatewayError::InvalidAuth)?;
    let cookies = session_cookies(&tokens, &csrf);
    Ok(Some(Session { token: tokens.access, user_id: holder.user_id, name: holder.name, csrf, cookies }))
}

/// Whose session `token` is, if it is valid: a Supabase token is verified
/// here (JWKS), one of ours by the identity Worker.
async fn holder(req: &Request, env: &Env, token: &str) -> Result<Option<Holder>, PageError> {
    if siwe_auth::is_session_token(token) {
        return crate::wallet_session::holder(req, env, token).await;
    }
    Ok(dexto_shared::session::verify_token(token, env).await.ok().map(|c| Holder { user_id: c.sub, name: c.email.unwrap_or_default(), expires_at: c.exp }))
}

/// Ends the session where it was issued (its refresh token stops working);
/// failing to is logged, and the cookies are cleared anyway.
pub async fn end(req: &Request, env: &Env, session: &Session) {
    let token = session.token.expose();
    let ended = if siwe_auth::is_session_token(token) {
        crate::wallet_session::sign_out(req, env, token).await
    } else {
        Supabase::from_env(env).sign_out(token).await.map_err(PageError::from)
    };
    if let Err(e) = ended {
        dexto_shared::log::event("dashboard.sign_out_failed", serde_json::json!({"user_id": session.user_id, "status": e.status()}));
    }
}

/// Refuses a state change that did not come from our own page.
pub fn check_csrf(req: &Request, session: &Session, form_token: Option<&str>) -> Result<(), PageError> {
    let header = |n: &str| req.headers().get(n).ok().flatten();
    csrf::check(header("Origin").as_deref(), header("Sec-Fetch-Site").as_deref(), &own_origin(req), Some(&session.csrf), form_token).map_err(PageError::Csrf)
}

/// Refuses a cross-site POST where there is no session (and so no CSRF
/// secret) yet: only the same-origin part of the check applies.
pub fn check_same_origin(req: &Request) -> Result<(), PageError> {
    let header = |n: &str| req.headers().get(n).ok().flatten();
    csrf::same_origin(header("Origin").as_deref(), header("Sec-Fetch-Site").as_deref(), &own_origin(req)).map_err(PageError::Csrf)
}
