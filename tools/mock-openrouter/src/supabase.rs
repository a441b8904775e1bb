//! A stand-in for a Supabase project's JWKS endpoint
//! (`/auth/v1/.well-known/jwks.json`), so the gateway's session verification
//! runs against real HTTP, and for `GET /auth/v1/user` (what the Dexto CLI's
//! `login --token` calls to learn who the token belongs to). Starts with the fixed test keys of
//! `dexto_shared::jwt_testing`; `PUT /__mock/jwks` replaces the document (key
//! rotation tests).

use crate::util;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use axum::response::Response;
use serde_json::Value;
use std::sync::{Arc, Mutex};

pub struct Jwks(Mutex<Value>);

impl Default for Jwks {
    fn default() -> Self {
        Jwks(Mutex::new(dexto_shared::jwt_testing::jwks()))
    }
}

pub async fn get(State(app): State<Arc<crate::App>>) -> Response {
    let doc = app.jwks.0.lock().expect("jwks lock").clone();
    util::json_response(StatusCode::OK, &doc)
}

/// `GET /auth/v1/user`: the user a session token names. The signature is the
/// gateway's business (it verifies every session itself); here the claims are
/// read and an expired or malformed token is refused, like Supabase does.
pub async fn user(headers: HeaderMap) -> Response {
    let claims = util::bearer(&headers).and_then(|t| {
        let payload = t.split('.').nth(1)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
        serde_json::from_slice::<Value>(&bytes).ok()
    });
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    match claims {
        Some(c) if c["sub"].is_string() && c["exp"].as_i64().is_some_and(|exp| exp > now) => util::json_response(
            StatusCode::OK,
            &serde_json::json!({
                "id": c["sub"], "aud": c["aud"], "role": c["role"], "email": c["email"],
                "app_metadata": {"provider": "email"}, "user_metadata": {}, "created_at": "2026-01-01T00:00:00Z",
            }),
        ),
        _ => util::error_response(401, "invalid JWT: unable to parse or verify signature", None),
    }
}

pub async fn put(State(app): State<Arc<crate::App>>, body: Bytes) -> Response {
    match serde_json::from_slice::<Value>(&body) {
        Ok(doc) if doc.get("keys").is_some_and(Value::is_array) => {
            *app.jwks.0.lock().expect("jwks lock") = doc.clone();
            util::json_response(StatusCode::OK, &doc)
        }
        _ => util::error_response(400, "body must be a JWKS document", None),
    }
}
