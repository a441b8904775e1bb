//! The signed-in pages. Each handler reads through `Backend` (the APIs),
//! renders with `layout` and escapes every string it did not write itself.

pub mod account;
pub mod billing;
pub mod crypto;
pub mod device;
pub mod direct_key;
pub mod keys;
pub mod models;
pub mod overview;
pub mod plan;
pub mod usage;

use crate::respond::{PageError, PageResult};
use crate::session::Session;
use dexto_shared::error::GatewayError;
use dexto_shared::money::Micros;
use serde_json::Value;
use std::collections::HashMap;
use worker::{Env, Method, Request};

/// Query parameters (last value wins).
pub fn query(req: &Request) -> HashMap<String, String> {
    dexto_shared::url_query::pairs(&req.inner().url()).into_iter().collect()
}

/// An exact amount from an API's JSON (a decimal number or string of USD).
pub fn usd_of(v: &Value) -> Option<Micros> {
    match v {
        Value::String(s) => Micros::parse_usd_exact(s).ok(),
        other => Micros::from_json_usd(other).ok(),
    }
}

/// An API's amount for display; "—" when it is missing or unreadable (never
/// a made-up $0.00).
pub fn show_usd(v: &Value) -> String {
    usd_of(v).map_or_else(|| "—".to_string(), dexto_shared::web::html::usd)
}

pub async fn route(req: &mut Request, env: &Env, session: &Session, segments: &[&str]) -> PageResult {
    match (req.method(), segments) {
        (Method::Get, ["dashboard"]) => overview::page(req, env, session).await,
        (Method::Get, ["dashboard", "keys"]) => keys::page(req, env, session, None).await,
        (Method::Post, ["dashboard", "keys"]) => keys::create(req, env, session).await,
        (Method::Post, ["dashboard", "keys", id, "revoke"]) => keys::revoke(req, env, session, id).await,
        (Method::Post, ["dashboard", "keys", id, "rotate"]) => keys::rotate(req, env, session, id).await,
        (Method::Get, ["dashboard", "direct-key"]) => direct_key::page(req, env, session, None).await,
        (Method::Post, ["dashboard", "direct-key"]) => direct_key::create(req, env, session).await,
        (Method::Post, ["dashboard", "direct-key", action @ ("fund" | "reclaim")]) => direct_key::shift(req, env, session, action).await,
        (Method::Post, ["dashboard", "direct-key", "revoke"]) => direct_key::revoke(req, env, session).await,
        (Method::Get, ["dashboard", "usage"]) => usage::page(req, env, session).await,
        (Method::Get, ["dashboard", "usage", "export"]) => usage::export(req, env, session).await,
        (Method::Get, ["dashboard", "settings", "billing"]) => billing::page(req, env, session).await,
        (Method::Post, ["dashboard", "settings", "billing", "checkout"]) => billing::checkout(req, env, session).await,
        (Method::Post, ["dashboard", "settings", "billing", "plan"]) => plan::change(req, env, session).await,
        (Method::Post, ["dashboard", "settings", "billing", "plan", "cancel"]) => plan::cancel(req, env, session).await,
        (Method::Post, ["dashboard", "settings", "billing", "portal"]) => plan::portal(req, env, session).await,
        (Method::Get, ["dashboard", "settings", "billing", "status"]) => billing::status(req, env, session).await,
        (Method::Post, ["dashboard", "settings", "billing", "crypto"]) => billing::confirm_usdc(req, env, session).await,
        // Answers the billing page's script, so in JSON whatever happens.
        (Method::Post, ["dashboard", "settings", "billing", "wallet"]) => Ok(crypto::link_wallet(req, env, session).await.unwrap_or_else(crate::respond::error_json)),
        (Method::Get, ["dashboard", "account"]) => account::page(req, env, session).await,
        (Method::Post, ["dashboard", "account", "caps"]) => account::set_cap(req, env, session).await,
        (Method::Get, ["dashboard", "models"]) => models::page(req, env, session).await,
        (Method::Get, ["device"]) => device::page(req, env, session).await,
        (Method::Post, ["device"]) => device::decide(req, env, session).await,
        _ => Err(PageError::Gateway(GatewayError::NotFound("No such page.".into()))),
    }
}
