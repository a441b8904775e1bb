//! Signing in and out. Sign-in is Supabase's hosted flow with PKCE: `start`
//! keeps a verifier in a short-lived httpOnly cookie and sends the browser to
//! Supabase; Supabase sends it back to `callback?code=…`, which exchanges the
//! code (with the verifier) for a session, verifies the access token like
//! every other session and sets the session cookies. Magic links take the
//! same route back. Nothing secret ever appears in a URL we build. Signing
//! in with an Ethereum wallet is the page script's and `siwe.rs`'s.

use crate::layout;
use crate::respond::{Page, PageError, PageResult};
use crate::session::{self, own_origin};
use crate::supabase::Supabase;
use dexto_shared::error::GatewayError;
use dexto_shared::web::html::esc;
use dexto_shared::web::{cookies, pkce};
use worker::{Env, Request};

const PKCE_COOKIE_SECONDS: i64 = 600;

/// Only our own pages are valid places to return to after sign-in.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if (n.starts_with("/dashboard") || n.starts_with("/device")) && !n.contains("//") && !n.contains('\\') && n.len() < 512 => n.to_string(),
        _ => "/dashboard".into(),
    }
}

fn query(req: &Request, name: &str) -> Option<String> {
    dexto_shared::url_query::pairs(&req.inner().url()).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn callback_url(req: &Request) -> String {
    format!("{}/dashboard/auth/callback", own_origin(req))
}

/// A new PKCE verifier stored with where to go next; returns (challenge, cookie).
fn begin(next: &str) -> (String, String) {
    let verifier = pkce::verifier(dexto_shared::ids::random_bytes::<32>());
    let value = format!("{verifier}.{}", hex::encode(next));
    (pkce::challenge(&verifier), cookies::set(cookies::PKCE, &value, PKCE_COOKIE_SECONDS))
}

/// `GET /dashboard/login?next=…`
pub fn login_page(req: &Request, env: &Env) -> PageResult {
    let next = safe_next(query(req, "next").as_deref());
    let supabase = Supabase::from_env(env);
    let buttons: String = supabase
        .providers
        .iter()
        .map(|p| {
            format!(
                r#"<a class="button" href="/dashboard/auth/start?provider={}&amp;next={}">Continue with {}</a>"#,
                esc(&dexto_shared::url_query::encode(p)),
                esc(&dexto_shared::url_query::encode(&next)),
                esc(&capitalised(p))
            )
        })
        .collect();
    let notice = match query(req, "sent").as_deref() {
        Some(_) => r#"<p class="notice" role="status">Check your email for a sign-in link.</p>"#,
        None if query(req, "signed_out").is_some() => r#"<p class="notice" role="status">You are signed out.</p>"#,
        None => "",
    };
    let body = format!(
        r#"<h1>Sign in to Dexto</h1>{notice}<p>Use the account you use with the Dexto CLI.</p>
<div class="providers">{buttons}
<button type="button" class="button" id="siwe" data-next="{next}" hidden>Sign in with Ethereum</button></div>
<p id="siwe-status" role="status" aria-live="polite"></p>
<form method="post" action="/dashboard/auth/magic-link" class="stack">
<input type="hidden" name="next" value="{next}">
<label for="email">Email me a sign-in link</label>
<input id="email" name="email" type="email" autocomplete="email" required>
<button type="submit">Send link</button></form>"#,
        next = esc(&next)
    );
    Ok(Page::html(layout::bare("Sign in", &body)))
}

fn capitalised(s: &str) -> String {
    match s {
        "github" => "GitHub".into(),
        "gitlab" => "GitLab".into(),
        "linkedin_oidc" => "LinkedIn".into(),
        _ => {
            let mut c = s.chars();
            c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
        }
    }
}

/// `GET /dashboard/auth/start?provider=…&next=…`
pub fn start(req: &Request, env: &Env) -> PageResult {
    let supabase = Supabase::from_env(env);
    let provider = query(req, "provider").unwrap_or_default();
    if !supabase.providers.contains(&provider) {
        return Err(GatewayError::BadRequest("Unknown sign-in provider.".into()).into());
    }
    let (challenge, cookie) = begin(&safe_next(query(req, "next").as_deref()));
    Ok(Page::redirect(supabase.authorize_url(&provider, &callback_url(req), &challenge)).with_cookies(vec![cookie]))
}

/// `POST /dashboard/auth/magic-link` (form: email, next). No session yet, so
/// no CSRF secret: the same-origin check is what stops cross-site sends.
pub async fn magic_link(req: &mut Request, env: &Env) -> PageResult {
    let form = crate::form::read(req).await?;
    session::check_same_origin(req)?;
    let email = form.get("email").map(|e| e.trim().to_string()).filter(|e| e.contains('@') && e.len() <= 254);
    let email = email.ok_or_else(|| GatewayError::BadRequest("Enter a valid email address.".into()))?;
    throttle_magic_link(req, env, &email).await?;
    let next = safe_next(form.get("next").map(String::as_str));
    let (challenge, cookie) = begin(&next);
    Supabase::from_env(env).send_magic_link(&email, &callback_url(req), &challenge).await?;
    Ok(Page::redirect(format!("/dashboard/login?sent=1&next={}", dexto_shared::url_query::encode(&next))).with_cookies(vec![cookie]))
}

/// Magic links spend the Supabase project's email quota and need no account:
/// throttled per client IP and per address (`[[ratelimits]]`; a binding that
/// is not configured does not limit).
async fn throttle_magic_link(req: &Request, env: &Env, email: &str) -> Result<(), PageError> {
    let ip = req.headers().get("CF-Connecting-IP").ok().flatten().unwrap_or_else(|| "unknown".into());
    let limits = [("MAGIC_LINK_PER_IP", format!("ip:{ip}")), ("MAGIC_LINK_PER_EMAIL", format!("email:{}", email.to_ascii_lowercase()))];
    Ok(dexto_shared::throttle::check(env, "dashboard.magic_link", &limits).await?)
}

/// `GET /dashboard/auth/callback?code=…`
pub async fn callback(req: &Request, env: &Env) -> PageResult {
    let failed = |why: &str| PageError::Api { status: 400, message: format!("Sign-in did not complete ({why}). Please try again.") };
    let pending = session::cookie(req, cookies::PKCE).ok_or_else(|| failed("the sign-in expired"))?;
    let (verifier, next_hex) = pending.split_once('.').ok_or_else(|| failed("the sign-in expired"))?;
    let next = safe_next(hex::decode(next_hex).ok().and_then(|b| String::from_utf8(b).ok()).as_deref());
    let code = query(req, "code").ok_or_else(|| failed("no code was returned"))?;
    let tokens = Supabase::from_env(env).exchange_code(&code, verifier).await.map_err(|e| match e {
        GatewayError::InvalidAuth => failed("the code was not accepted"),
        other => other.into(),
    })?;
    let claims = dexto_shared::session::verify_token(tokens.access.expose(), env).await?;
    dexto_shared::log::event("dashboard.sign_in", serde_json::json!({"user_id": claims.sub}));
    let mut cookies = session::session_cookies(&tokens, &session::new_csrf());
    cookies.push(dexto_shared::web::cookies::clear(dexto_shared::web::cookies::PKCE));
    Ok(Page::redirect(next).with_cookies(cookies))
}

/// `POST /dashboard/auth/logout` (CSRF): ends the session where it was
/// issued (Supabase, or the identity Worker for a wallet's) too.
pub async fn logout(req: &mut Request, env: &Env) -> PageResult {
    let form = crate::form::read(req).await?;
    session::check_same_origin(req)?;
    if let Some(s) = session::current(req, env).await? {
        session::check_csrf(req, &s, form.get("csrf").map(String::as_str))?;
        session::end(req, env, &s).await;
    }
    Ok(Page::redirect("/dashboard/login?signed_out=1").with_cookies(session::cleared_cookies()))
}
