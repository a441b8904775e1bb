//! A stand-in for a Supabase project's JWKS endpoint
//! (`/auth/v1/.well-known/jwks.json`), so the gateway's session verification
//! runs against real HTTP. Starts with the fixed test keys of
//! `dexto_shared::jwt_testing`; `PUT /__mock/jwks` replaces the document (key
//! rotation tests).

use crate::util;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
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

pub async fn put(State(app): State<Arc<crate::App>>, body: Bytes) -> Response {
    match serde_json::from_slice::<Value>(&body) {
        Ok(doc) if doc.get("keys").is_some_and(Value::is_array) => {
            *app.jwks.0.lock().expect("jwks lock") = doc.clone();
            util::json_response(StatusCode::OK, &doc)
        }
        _ => util::error_response(400, "body must be a JWKS document", None),
    }
}
