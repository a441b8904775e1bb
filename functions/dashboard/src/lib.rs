//! `dexto-dashboard`: the account dashboard on the API's own origin —
//! `/dashboard/*` (overview, keys, usage, billing, account, models), `/device`
//! (approving a CLI sign-in) and `/billing` (the old top-up link). Pages are
//! rendered here from the other Workers' JSON APIs (`backend.rs`), as the
//! signed-in user; the session is Supabase's, or the identity Worker's from
//! Sign-In with Ethereum, kept in httpOnly cookies (`session.rs`,
//! `signin.rs`, `siwe.rs`). See docs/ARCHITECTURE.md "Dashboard".

mod assets;
mod backend;
mod form;
mod layout;
mod pages;
mod respond;
mod session;
mod signin;
mod signed_in;
mod siwe;
mod supabase;
mod wallet_session;

use respond::{into_response, Page, PageError, PageResult};
use worker::{event, Context, Env, Method, Request, Response, Result};

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let path = req.path();
    let checkout_origin = env.var("CHECKOUT_ORIGIN").map(|v| v.to_string()).unwrap_or_else(|_| "https://checkout.stripe.com".into());
    // Cookies the session set (a refresh rotates the refresh token) go out
    // with whatever the outcome is, error pages included: a lost rotated
    // token would sign the user out at the next refresh.
    let mut cookies = Vec::new();
    let mut page = route(&mut req, &env, &path, &mut cookies).await.unwrap_or_else(|err| {
        log_internal(&path, &err);
        respond::error_page(err)
    });
    page.cookies.extend(cookies);
    into_response(page, &respond::csp(&checkout_origin))
}

fn log_internal(path: &str, err: &PageError) {
    if let PageError::Gateway(dexto_shared::error::GatewayError::Internal(detail)) = err {
        dexto_shared::log::event("dashboard.internal_error", serde_json::json!({"path": path, "detail": detail}));
    }
}

async fn route(req: &mut Request, env: &Env, path: &str, cookies: &mut Vec<String>) -> PageResult {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (req.method(), segments.as_slice()) {
        (Method::Get, ["dashboard", "assets", name]) => assets::serve(name),
        (Method::Get, ["dashboard", "login"]) => signin::login_page(req, env),
        (Method::Get, ["dashboard", "auth", "start"]) => signin::start(req, env),
        (Method::Post, ["dashboard", "auth", "magic-link"]) => signin::magic_link(req, env).await,
        // Answers the sign-in page's script, so in JSON whatever happens.
        (Method::Post, ["dashboard", "auth", "siwe"]) => Ok(siwe::sign_in(req, env).await.unwrap_or_else(|err| {
            log_internal(path, &err);
            respond::error_json(err)
        })),
        (Method::Get, ["dashboard", "auth", "callback"]) => signin::callback(req, env).await,
        (Method::Post, ["dashboard", "auth", "logout"]) => signin::logout(req, env).await,
        (_, ["device"]) if env.var("DEVICE_LOGIN_ENABLED").is_ok_and(|v| v.to_string() == "false") => {
            Err(PageError::Gateway(dexto_shared::error::GatewayError::NotFound("Device login is not enabled on this server.".into())))
        }
        // `dexto billing --buy` on older releases opened /billing?credits_usd=N.
        (Method::Get, ["billing"]) => {
            let query = req.inner().url().split_once('?').map(|(_, q)| format!("?{q}")).unwrap_or_default();
            Ok(Page::redirect(format!("/dashboard/settings/billing{query}")))
        }
        _ => {
            let query = req.inner().url().split_once('?').map(|(_, q)| format!("?{q}")).unwrap_or_default();
            let next = format!("{path}{query}");
            let Some(session) = session::current(req, env).await? else {
                // Signed out, or a refresh token that no longer works: drop
                // the dead cookies so later pages do not try them again.
                cookies.extend(session::cleared_cookies());
                return Err(PageError::SignIn { next });
            };
            cookies.extend(session.cookies.iter().cloned());
            pages::route(req, env, &session, &segments).await.map_err(|e| match e {
                // The session ended between pages (revoked at Supabase): sign in again.
                PageError::SignIn { .. } => PageError::SignIn { next },
                other => other,
            })
        }
    }
}
