//! A Sign-In with Ethereum session as the dashboard keeps it: checked,
//! refreshed and ended by the identity Worker (over its service binding),
//! the only holder of the key our access tokens are signed with.

use crate::backend::Backend;
use crate::respond::PageError;
use crate::supabase::Tokens;
use dexto_shared::error::GatewayError;
use serde_json::{json, Value};
use worker::{Env, Method, Request};

/// Whose session an access token is, and until when (seconds).
pub struct Holder {
    pub user_id: String,
    /// The account's email, else the address it signed in with.
    pub name: String,
    pub expires_at: i64,
}

/// The holder of a Sign-In with Ethereum access token; None when the
/// identity Worker refuses it (expired, revoked, forged).
pub async fn holder(req: &Request, env: &Env, token: &str) -> Result<Option<Holder>, PageError> {
    match Backend::with_token(env, req, Some(token)).get("IDENTITY", "/api/auth/siwe/session").await {
        Ok(v) => {
            let text = |p: &str| v.pointer(p).and_then(Value::as_str).unwrap_or("").to_string();
            let name = Some(text("/user/email")).filter(|e| !e.is_empty()).unwrap_or_else(|| text("/user/address"));
            Ok(Some(Holder { user_id: text("/user/id"), name, expires_at: v["expires_at"].as_i64().unwrap_or(0) }))
        }
        Err(PageError::SignIn { .. }) => Ok(None),
        Err(other) => Err(other),
    }
}

/// New tokens for a live session's refresh token (rotated); None when it is
/// refused. A failing identity Worker is an error, not a sign-out.
pub async fn refresh(req: &Request, env: &Env, refresh_token: &str) -> Result<Option<Tokens>, PageError> {
    match Backend::with_token(env, req, None).send("IDENTITY", Method::Post, "/api/auth/siwe/refresh", json!({"refresh_token": refresh_token})).await {
        Ok(v) => Ok(Some(Tokens::from_grant(&v).ok_or(GatewayError::UpstreamUnavailable)?)),
        Err(PageError::Api { status: 400 | 401 | 403, .. }) => Ok(None),
        Err(other) => Err(other),
    }
}

/// Ends the session at once (its refresh token stops working too).
pub async fn sign_out(req: &Request, env: &Env, token: &str) -> Result<(), PageError> {
    Backend::with_token(env, req, Some(token)).send("IDENTITY", Method::Post, "/api/auth/siwe/logout", json!({})).await.map(|_| ())
}
