//! `dexto-usage`: where a user's money went, from the ledger (one source of
//! truth). API-key auth (`gateway:use`, read fresh from D1 so a revoked key is
//! refused at once) or the owner's session (dashboard); every query is bound
//! to the caller's user id.
//!
//! - `GET /me/usage`, `GET /api/account/usage`: balance + month-to-date (CLI and plan shapes)
//! - `GET /me/usage/history`: keyset-paginated rows with filters
//! - `GET /me/usage/summary?group_by=day|model|key&from=&to=`
//! - `GET /me/usage/export?format=csv|json&from=&to=` (streamed)

mod db;
mod export;
mod history;
mod me;

use dexto_shared::auth::{authenticate, KeyLookup};
use dexto_shared::error::GatewayError;
use dexto_shared::http::error_response;
use std::collections::HashMap;
use worker::{event, Context, Env, Method, Request, Response, Result};

pub type UsageResult = std::result::Result<Response, GatewayError>;

/// The request's query parameters (the last value wins).
pub struct Params(HashMap<String, String>);

impl Params {
    pub fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let path = req.path();
    route(&req, &env).await.or_else(|err| {
        if let GatewayError::Internal(detail) = &err {
            dexto_shared::log::event("usage.internal_error", serde_json::json!({"path": path, "detail": detail}));
        }
        error_response(&err, None)
    })
}

async fn route(req: &Request, env: &Env) -> UsageResult {
    let path = req.path();
    let known = matches!(
        path.as_str(),
        "/me/usage" | "/api/account/usage" | "/me/usage/history" | "/me/usage/summary" | "/me/usage/export"
    );
    if !known {
        return Err(GatewayError::NotFound(format!("No route for {path}.")));
    }
    if req.method() != Method::Get {
        return Err(GatewayError::MethodNotAllowed);
    }
    // The CLI's usage shapes are readable with its device login too; history,
    // summaries and exports are the dashboard's (a full session).
    let cli_shape = matches!(path.as_str(), "/me/usage" | "/api/account/usage");
    let user_id = account(req, env, cli_shape).await?;
    let params = Params(dexto_shared::url_query::pairs(&req.inner().url()).into_iter().collect());
    match path.as_str() {
        "/me/usage/history" => history::page(env, &user_id, &params).await,
        "/me/usage/summary" => history::summary(env, &user_id, &params).await,
        "/me/usage/export" => export::stream(env, &user_id, &params).await,
        _ => me::usage(env, &user_id).await,
    }
}

/// Whose usage: a `dxk_` key with `gateway:use` (read fresh, so a revoked key
/// is refused at once), the account owner's Supabase session (the
/// dashboard), or — where `device_token_ok` — a CLI's device token.
async fn account(req: &Request, env: &Env, device_token_ok: bool) -> std::result::Result<String, GatewayError> {
    let token = dexto_shared::http::bearer_token(req.headers()).ok_or(GatewayError::MissingAuth)?;
    if token.starts_with(dexto_shared::apikey::KEY_PREFIX) {
        Ok(authenticate(req.headers(), env, KeyLookup::Fresh, "gateway:use").await?.user_id)
    } else if device_token_ok {
        Ok(dexto_shared::session::authenticate_cli(req.headers(), env).await?.user.id)
    } else {
        Ok(dexto_shared::session::authenticate(req.headers(), env).await?.id)
    }
}
