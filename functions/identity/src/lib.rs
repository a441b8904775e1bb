//! `dexto-identity`: the control plane for people and the CLI. Supabase
//! sessions, the DEXTO_API_KEY lifecycle (both CLI generations), per-user
//! OpenRouter keys (managed, and direct ones funded from the wallet) and
//! device login. Every path answers in one origin; shapes
//! follow `../shared/reference/dexto-client.md` exactly.

mod device;
mod device_approval;
mod direct_keys_api;
mod keys_api;
mod principal;
mod siwe;

use dexto_shared::error::GatewayError;
use dexto_shared::http::error_response;
use worker::{event, Context, Env, Method, Request, Response, Result};

pub type ApiResult = std::result::Result<Response, GatewayError>;

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let path = req.path();
    let result = route(&mut req, &env, &path).await;
    result.or_else(|err| {
        if let GatewayError::Internal(detail) = &err {
            dexto_shared::log::event("identity.internal_error", serde_json::json!({"path": path, "detail": detail}));
        }
        error_response(&err, None)
    })
}

/// `POST /api/openrouter-key/rotate` (session): the new key is never returned.
/// `GET /api/caps`, `PUT /api/caps` `{"scope": "user"|"key", "key_id"?, "window", "limit_usd"}`
/// (session): a user's own spend caps, with what counts against each now.
async fn caps(req: &mut Request, env: &Env, set: bool) -> ApiResult {
    let user = principal::session(req, env).await?;
    let change = if set {
        let body = dexto_shared::http::json_object(req).await?;
        Some(dexto_shared::caps::parse_change(&body).map_err(GatewayError::BadRequest)?)
    } else {
        None
    };
    // A user changes only their own caps; an operator's stay as they are.
    let caps = dexto_shared::caps_api::apply(env, &user.id, dexto_shared::caps::Owner::User, change.clone()).await?;
    if let Some((scope, window, limit)) = change {
        let detail = serde_json::json!({"scope": scope, "window": window, "limit_micros": limit.map(|l| l.0)});
        security_event(req, env, &user.id, "caps.set", &user.id, detail).await?;
    }
    dexto_shared::http::ok_json(200, &serde_json::json!({"caps": caps}))
}

/// Records a security event of `user_id` (key lifecycle, device login,
/// caps), with this request's id and client IP; the user can read it back.
pub async fn security_event(req: &Request, env: &Env, user_id: &str, action: &str, subject: &str, detail: serde_json::Value) -> ApiResultUnit {
    let ctx = dexto_shared::audit::AuditCtx::of(req, "user").as_user(user_id);
    dexto_shared::audit::record(env, &ctx, action, Some(user_id), subject, &detail).await
}

type ApiResultUnit = std::result::Result<(), GatewayError>;

/// Which audit entries a user sees of their own: their security events.
const OWN_EVENTS: &[&str] = &["key.", "device.", "caps.", "siwe.", "direct_key."];

/// `GET /api/audit?cursor=&limit=` (session): the caller's own security
/// events, newest first (keys created, revoked, rotated; device logins; caps).
async fn own_audit(req: &mut Request, env: &Env) -> ApiResult {
    let user = principal::session(req, env).await?;
    let pairs = dexto_shared::url_query::pairs(&req.inner().url());
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let cursor = get("cursor").and_then(|c| c.parse::<i64>().ok());
    let limit = get("limit").and_then(|l| l.parse::<i64>().ok()).filter(|l| (1..=200).contains(l)).unwrap_or(50);
    let q = dexto_shared::audit::Query { user_id: Some(&user.id), action: None, cursor, limit };
    let mut page = dexto_shared::audit::list(env, &q).await?;
    if let Some(rows) = page["data"].as_array_mut() {
        rows.retain(|r| r["action"].as_str().is_some_and(|a| OWN_EVENTS.iter().any(|p| a.starts_with(p))));
        for r in rows.iter_mut() {
            // Other people's addresses (an operator's) are not the user's to see.
            if r["actor"] == "admin" {
                r["client_ip"] = serde_json::Value::Null;
            }
        }
    }
    dexto_shared::http::ok_json(200, &page)
}

/// Each rotation makes three calls with the shared management key, whose
/// rate limit every user's provisioning depends on: throttled per user and
/// overall (`UPSTREAM_ROTATE_PER_USER`, `UPSTREAM_ROTATE_GLOBAL`).
async fn rotate_upstream(req: &mut Request, env: &Env) -> ApiResult {
    let user = principal::session(req, env).await?;
    let limits = [("UPSTREAM_ROTATE_PER_USER", format!("user:{}", user.id)), ("UPSTREAM_ROTATE_GLOBAL", "all".to_string())];
    dexto_shared::throttle::check(env, "upstream_key.rotate", &limits).await?;
    dexto_shared::openrouter_keys::rotate(env, &user.id).await?;
    dexto_shared::http::ok_json(200, &serde_json::json!({"success": true}))
}

/// `GET /api/openrouter-key` (session): the upstream key's status, never the key.
async fn upstream_status(req: &mut Request, env: &Env) -> ApiResult {
    let user = principal::session(req, env).await?;
    dexto_shared::http::ok_json(200, &dexto_shared::openrouter_keys::status(env, &user.id).await?)
}

async fn route(req: &mut Request, env: &Env, path: &str) -> ApiResult {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (req.method(), segments.as_slice()) {
        (Method::Post, ["api", "provision"]) => keys_api::provision(req, env).await,
        (Method::Post, ["keys", "provision"]) => keys_api::provision_named(req, env).await,
        (Method::Get, ["api", "keys"]) => keys_api::list(req, env).await,
        (Method::Post, ["api", "keys"]) => keys_api::create(req, env).await,
        (Method::Get, ["keys", "validate"] | ["api", "keys", "validate"]) => keys_api::validate(req, env).await,
        (Method::Post, ["keys", "rotate"] | ["api", "keys", "rotate"]) => keys_api::rotate(req, env).await,
        (Method::Delete, ["api", "keys", id]) => keys_api::delete(req, env, id).await,
        (Method::Patch, ["api", "keys", id]) => keys_api::update(req, env, id).await,
        (Method::Post, ["api", "openrouter-key", "rotate"]) => rotate_upstream(req, env).await,
        (Method::Get, ["api", "openrouter-key"]) => upstream_status(req, env).await,
        (Method::Post, ["api", "openrouter-provision"]) => direct_keys_api::provision(req, env).await,
        (Method::Get, ["api", "openrouter-provision"]) => direct_keys_api::status(req, env).await,
        (Method::Delete, ["api", "openrouter-provision"]) => direct_keys_api::revoke(req, env).await,
        (Method::Post, ["api", "openrouter-provision", "fund"]) => direct_keys_api::fund(req, env).await,
        (Method::Post, ["api", "openrouter-provision", "reclaim"]) => direct_keys_api::reclaim(req, env).await,
        (Method::Post, ["api", "keys", id, "rotate"]) => keys_api::rotate_one(req, env, id).await,
        (Method::Get, ["api", "audit"]) => own_audit(req, env).await,
        (Method::Get, ["api", "caps"]) => caps(req, env, false).await,
        (Method::Put, ["api", "caps"]) => caps(req, env, true).await,
        (Method::Post, ["auth", "device", "start"] | ["api", "auth", "device", "start"]) => device::start(req, env).await,
        (Method::Post, ["auth", "device", "poll"] | ["api", "auth", "device", "poll"]) => device::poll(req, env).await,
        (Method::Get, ["api", "auth", "device", "pending"]) => device_approval::pending(req, env).await,
        (Method::Post, ["api", "auth", "device", "approve"]) => device_approval::decide(req, env, device_approval::Decision::Approve).await,
        (Method::Post, ["api", "auth", "device", "deny"]) => device_approval::decide(req, env, device_approval::Decision::Deny).await,
        (Method::Get, ["api", "auth", "siwe", "nonce"]) => siwe::nonce(req, env).await,
        (Method::Post, ["api", "auth", "siwe", "verify"]) => siwe::verify(req, env).await,
        (Method::Post, ["api", "auth", "siwe", "refresh"]) => siwe::refresh(req, env).await,
        (Method::Post, ["api", "auth", "siwe", "logout"]) => siwe::logout(req, env).await,
        (Method::Get, ["api", "auth", "siwe", "session"]) => siwe::session(req, env).await,
        (Method::Get, ["api", "auth", "siwe", "addresses"]) => siwe::addresses(req, env).await,
        (Method::Post, ["api", "auth", "siwe", "link"]) => siwe::link(req, env).await,
        (Method::Delete, ["api", "auth", "siwe", "addresses", address]) => siwe::unlink(req, env, address).await,
        _ => Err(GatewayError::NotFound(format!("No route for {} {path}.", req.method()))),
    }
}
