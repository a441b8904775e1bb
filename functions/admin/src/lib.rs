//! `dexto-admin`: operator API under `/admin`, authenticated by the
//! `ADMIN_TOKEN` secret. Creates users and keys, grants credit through the
//! user's wallet object, and shows a user's authoritative wallet state.

mod audit_api;
mod keys;
mod metrics;
mod models;
mod plans;
mod search;
mod settlements;
mod users;

use dexto_shared::error::GatewayError;
use dexto_shared::http::error_response;
use worker::{event, Context, Env, Method, Request, Response, Result};

pub type AdminResult = std::result::Result<Response, GatewayError>;

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let result = match dexto_shared::auth::admin(req.headers(), &env) {
        Ok(()) => route(&mut req, &env).await,
        Err(e) => Err(e),
    };
    result.or_else(|err| {
        if let GatewayError::Internal(detail) = &err {
            dexto_shared::log::event("admin.internal_error", serde_json::json!({"path": req.path(), "detail": detail}));
        }
        error_response(&err, None)
    })
}

async fn route(req: &mut Request, env: &Env) -> AdminResult {
    let ctx = AuditCtx::of(req, "admin");
    let path = req.path();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (req.method(), segments.as_slice()) {
        (Method::Post, ["admin", "users"]) => users::create(req, env, &ctx).await,
        (Method::Get, ["admin", "users"]) => search::users(req, env).await,
        (Method::Get, ["admin", "users", id, "keys"]) => search::keys(env, id).await,
        (Method::Get, ["admin", "users", id]) => users::show(env, id).await,
        (Method::Patch, ["admin", "users", id]) => users::set_status(req, env, &ctx, id).await,
        (Method::Post, ["admin", "users", id, "credits"]) => users::credit(req, env, &ctx, id).await,
        (Method::Post, ["admin", "users", id, "keys"]) => keys::create(req, env, &ctx, id).await,
        (Method::Post, ["admin", "users", id, "settlements"]) => settlements::settle(req, env, &ctx, id).await,
        (Method::Post, ["admin", "users", id, "holds", "sweep"]) => settlements::sweep(env, &ctx, id).await,
        (Method::Put, ["admin", "users", id, "caps"]) => users::set_cap(req, env, &ctx, id).await,
        (Method::Post, ["admin", "keys", id, "revoke"]) => keys::revoke(env, &ctx, id).await,
        (Method::Get, ["admin", "models"]) => models::list(env).await,
        (Method::Get, ["admin", "plans"]) => plans::list(env).await,
        (Method::Post, ["admin", "plans"]) => plans::put(req, env, &ctx).await,
        (Method::Post, ["admin", "plans", "periods"]) => plans::run_periods(req, env, &ctx).await,
        (Method::Delete, ["admin", "plans", id]) => plans::delete(env, &ctx, id).await,
        (Method::Get, ["admin", "audit"]) => audit_api::list(req, env).await,
        (Method::Get, ["admin", "metrics"]) => metrics::show(req, env).await,
        (Method::Get, ["admin", "reconciliation"]) => metrics::findings(env).await,
        (Method::Post, ["admin", "models"]) => models::add(req, env, &ctx).await,
        (Method::Patch, ["admin", "models", rest @ ..]) if !rest.is_empty() => models::set_markup(req, env, &ctx, &models::model_from_path(rest)).await,
        (Method::Delete, ["admin", "models", rest @ ..]) if !rest.is_empty() => models::remove(env, &ctx, &models::model_from_path(rest)).await,
        _ => Err(GatewayError::NotFound(format!("No admin route for {} {path}.", req.method()))),
    }
}

/// Parses a JSON object body (400 otherwise).
pub async fn json_body(req: &mut Request) -> std::result::Result<serde_json::Value, GatewayError> {
    dexto_shared::http::json_object(req).await
}

pub use dexto_shared::db::error as d1_error;

pub use dexto_shared::audit::AuditCtx;

/// Records an operator action (never secrets) for later audit. The subject
/// of `user.*`, `key.*` and `wallet.*` actions is the user they concern.
pub async fn audit(env: &Env, ctx: &AuditCtx, action: &str, subject: &str, detail: serde_json::Value) -> std::result::Result<(), GatewayError> {
    let user = ["user.", "key.", "wallet."].iter().any(|p| action.starts_with(p)).then_some(subject);
    dexto_shared::audit::record(env, ctx, action, user, subject, &detail).await
}
