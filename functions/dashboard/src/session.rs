//! The signed-in user, from the session cookies: the Supabase access token
//! (verified on every request, like any session), refreshed through Supabase
//! when it is about to expire, and the CSRF secret forms must echo.

use crate::respond::PageError;
use crate::supabase::{Supabase, Tokens};
use dexto_shared::secret::Secret;
use dexto_shared::web::{cookies, csrf};
use worker::{Env, Request};

/// Refresh when the access token has less than this left, so an API call made
/// with it does not fail half-way through a page.
const REFRESH_MARGIN_SECONDS: i64 = 60;
/// How long a browser stays signed in without visiting (the refresh token's cookie).
const REFRESH_COOKIE_SECONDS: i64 = 30 * 24 * 3600;

pub struct Session {
    pub token: Secret<String>,
    pub user_id: String,
    pub email: String,
    pub csrf: String,
    /// `Set-Cookie` values to send back (after a refresh).
    pub cookies: Vec<String>,
}

impl crate::layout::Viewer for Session {
    fn email(&self) -> &str {
        &self.email
    }
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

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
        if let Ok(claims) = dexto_shared::session::verify_token(&token, env).await {
            if claims.exp - now_s > REFRESH_MARGIN_SECONDS {
                let cookies = if existing.is_none() { vec![cookies::set(cookies::CSRF, &csrf, REFRESH_COOKIE_SECONDS)] } else { Vec::new() };
                return Ok(Some(Session { token: Secret::new(token), user_id: claims.sub, email: claims.email.unwrap_or_default(), csrf, cookies }));
            }
        }
    }
    let Some(refresh) = cookie(req, cookies::REFRESH) else { return Ok(None) };
    let tokens = match Supabase::from_env(env).refresh(&refresh).await {
        Ok(t) => t,
        Err(dexto_shared::error::GatewayError::InvalidAuth) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let claims = dexto_shared::session::verify_token(tokens.access.expose(), env).await?;
    let cookies = session_cookies(&tokens, &csrf);
    Ok(Some(Session { token: tokens.access, user_id: claims.sub, email: claims.email.unwrap_or_default(), csrf, cookies }))
}

/// Our own origin, as the browser sees it (the edge forwards the public URL).
pub fn own_origin(req: &Request) -> String {
    dexto_shared::url_query::origin(&req.inner().url()).unwrap_or_default()
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
