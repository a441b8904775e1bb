//! Sign-In with Ethereum, as the dashboard uses it. The sign-in page's script
//! has the wallet sign an EIP-4361 message and posts it here; the identity
//! Worker checks it and opens one of its own sessions, which becomes this
//! browser's cookie session exactly like a Supabase one (checked, refreshed
//! and ended through the identity Worker: `wallet_session.rs`).

use crate::backend::Backend;
use crate::respond::{Page, PageBody, PageResult};
use crate::session;
use crate::signin::safe_next;
use crate::supabase::Tokens;
use dexto_shared::error::GatewayError;
use serde_json::{json, Value};
use worker::{Env, Method, Request};

/// `POST /dashboard/auth/siwe` (JSON `{message, signature, next}`, sent by
/// the sign-in page's script). No session yet, so no CSRF secret: the
/// same-origin check is what stops another site signing a browser in to an
/// account of its choosing. Answers JSON (`{next}`) for the waiting script.
pub async fn sign_in(req: &mut Request, env: &Env) -> PageResult {
    session::check_same_origin(req)?;
    let body = dexto_shared::http::json_object(req).await?;
    let text = |name: &str| body.get(name).and_then(Value::as_str).unwrap_or("").to_string();
    let next = safe_next(body.get("next").and_then(Value::as_str));
    let signed = json!({"message": text("message"), "signature": text("signature")});
    let opened = Backend::with_token(env, req, None).send("IDENTITY", Method::Post, "/api/auth/siwe/verify", signed).await?;
    let tokens = Tokens::from_grant(&opened).ok_or(GatewayError::UpstreamUnavailable)?;
    dexto_shared::log::event("dashboard.sign_in", json!({"user_id": opened["user"]["id"], "method": "siwe"}));
    let cookies = session::session_cookies(&tokens, &session::new_csrf());
    Ok(Page { status: 200, body: PageBody::Json(json!({"next": next})), cookies })
}

