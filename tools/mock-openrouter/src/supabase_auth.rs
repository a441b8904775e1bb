//! A stand-in for Supabase Auth's hosted sign-in, for the dashboard: the PKCE
//! authorization-code flow (`GET /auth/v1/authorize` → the provider's page →
//! back to `redirect_to?code=…`), magic links (`POST /auth/v1/otp`, the email
//! readable at `GET /__mock/auth/mailbox`), `POST /auth/v1/token` with
//! `grant_type=pkce` and `grant_type=refresh_token` (refresh tokens rotate,
//! a used one is refused, as Supabase does), and `POST /auth/v1/logout`.
//! Access tokens are ES256 with the fixed test key whose JWKS this mock
//! serves, issued by `http://<Host>/auth/v1` — the issuer the gateway expects
//! when `SUPABASE_URL` points here.
//!
//! Users: an email maps to a stable `sub` (`dev@example.com` → `dev-user`,
//! the user `npm run dev` seeds; others `user-<hex>`); `PUT /__mock/auth`
//! sets `{"expires_in": N}` (token lifetime, seconds).

use crate::util;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

pub const DEV_EMAIL: &str = "dev@example.com";
pub const DEV_USER: &str = "dev-user";

pub struct Auth {
    /// code → (PKCE challenge, email)
    codes: Mutex<HashMap<String, (String, String)>>,
    /// live refresh token → email
    refresh: Mutex<HashMap<String, String>>,
    /// email → the last magic link sent
    mailbox: Mutex<HashMap<String, String>>,
    expires_in: AtomicI64,
}

impl Default for Auth {
    fn default() -> Self {
        Auth { codes: Default::default(), refresh: Default::default(), mailbox: Default::default(), expires_in: AtomicI64::new(3600) }
    }
}

pub fn sub_for(email: &str) -> String {
    if email == DEV_EMAIL {
        return DEV_USER.into();
    }
    let digest = Sha256::digest(email.as_bytes());
    format!("user-{}", digest.iter().take(8).map(|b| format!("{b:02x}")).collect::<String>())
}

fn auth_error(status: u16, code: &str, message: &str) -> Response {
    util::json_response(StatusCode::from_u16(status).unwrap(), &json!({"code": status, "error_code": code, "msg": message}))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn with_code(redirect_to: &str, code: &str) -> String {
    let sep = if redirect_to.contains('?') { '&' } else { '?' };
    format!("{redirect_to}{sep}code={code}")
}

/// `GET /auth/v1/authorize`: what the OAuth provider would show — here one
/// form that signs in as the typed email.
pub async fn authorize_page(Query(q): Query<HashMap<String, String>>) -> Response {
    let (Some(redirect_to), Some(challenge)) = (q.get("redirect_to"), q.get("code_challenge")) else {
        return auth_error(400, "validation_failed", "redirect_to and code_challenge are required");
    };
    if q.get("code_challenge_method").map(|m| m.to_ascii_lowercase()) != Some("s256".into()) {
        return auth_error(400, "validation_failed", "code_challenge_method must be s256");
    }
    let provider = q.get("provider").map_or("email", String::as_str);
    Html(format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Mock Supabase sign-in</title></head>
<body><h1>Sign in with {provider} (mock)</h1>
<form method="post" action="/auth/v1/authorize">
<input type="hidden" name="redirect_to" value="{r}"><input type="hidden" name="code_challenge" value="{c}">
<label for="email">Email</label> <input id="email" name="email" type="email" value="{DEV_EMAIL}">
<button id="continue" type="submit">Continue</button></form></body></html>"#,
        provider = html_escape(provider),
        r = html_escape(redirect_to),
        c = html_escape(challenge),
    ))
    .into_response()
}

/// `POST /auth/v1/authorize` (the form above): a one-time code, back to the app.
pub async fn authorize_submit(State(app): State<Arc<crate::App>>, body: Bytes) -> Response {
    let form = util::parse_form(&body);
    let (Some(redirect_to), Some(challenge), Some(email)) = (form.get("redirect_to"), form.get("code_challenge"), form.get("email")) else {
        return auth_error(400, "validation_failed", "missing fields");
    };
    let code = app.ids_hex(32);
    app.auth.codes.lock().unwrap().insert(code.clone(), (challenge.clone(), email.clone()));
    (StatusCode::SEE_OTHER, [(header::LOCATION, with_code(redirect_to, &code))]).into_response()
}

/// `POST /auth/v1/otp?redirect_to=…`: "sends" a magic link (PKCE flavour).
pub async fn otp(State(app): State<Arc<crate::App>>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or_default();
    let (Some(email), Some(challenge)) = (body["email"].as_str(), body["code_challenge"].as_str()) else {
        return auth_error(400, "validation_failed", "email and code_challenge are required");
    };
    let Some(redirect_to) = q.get("redirect_to") else { return auth_error(400, "validation_failed", "redirect_to is required") };
    let code = app.ids_hex(32);
    app.auth.codes.lock().unwrap().insert(code.clone(), (challenge.to_string(), email.to_string()));
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    let link = format!("http://{host}/auth/v1/verify?type=magiclink&token={code}&redirect_to={}", crate::util::percent_encode(redirect_to));
    app.auth.mailbox.lock().unwrap().insert(email.to_string(), link);
    util::json_response(StatusCode::OK, &json!({}))
}

/// `GET /auth/v1/verify`: the magic link's target; redirects with the code.
pub async fn verify(Query(q): Query<HashMap<String, String>>) -> Response {
    match (q.get("token"), q.get("redirect_to")) {
        (Some(code), Some(to)) => (StatusCode::SEE_OTHER, [(header::LOCATION, with_code(to, code))]).into_response(),
        _ => auth_error(400, "validation_failed", "bad link"),
    }
}

/// `GET /__mock/auth/mailbox?email=…`: the last magic link sent there.
pub async fn mailbox(State(app): State<Arc<crate::App>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let link = q.get("email").and_then(|e| app.auth.mailbox.lock().unwrap().get(e).cloned());
    util::json_response(StatusCode::OK, &json!({"link": link}))
}

/// `PUT /__mock/auth`: `{"expires_in": seconds}`.
pub async fn configure(State(app): State<Arc<crate::App>>, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or_default();
    if let Some(s) = body["expires_in"].as_i64() {
        app.auth.expires_in.store(s, Ordering::Relaxed);
    }
    util::json_response(StatusCode::OK, &json!({"expires_in": app.auth.expires_in.load(Ordering::Relaxed)}))
}

fn session(app: &crate::App, host: &str, email: &str) -> Value {
    let now = util::now_secs() as i64;
    let expires_in = app.auth.expires_in.load(Ordering::Relaxed);
    let sub = sub_for(email);
    let claims = json!({"sub": sub, "email": email, "iss": format!("http://{host}/auth/v1"), "aud": "authenticated",
        "role": "authenticated", "iat": now, "exp": now + expires_in, "session_id": app.ids_hex(16)});
    let refresh = app.ids_hex(24);
    app.auth.refresh.lock().unwrap().insert(refresh.clone(), email.to_string());
    json!({"access_token": dexto_shared::jwt_testing::sign_es256(&claims, dexto_shared::jwt_testing::EC_KID),
        "token_type": "bearer", "expires_in": expires_in, "expires_at": now + expires_in, "refresh_token": refresh,
        "user": {"id": sub, "aud": "authenticated", "role": "authenticated", "email": email}})
}

/// `POST /auth/v1/token?grant_type=pkce|refresh_token`.
pub async fn token(State(app): State<Arc<crate::App>>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or_default();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1").to_string();
    let email = match q.get("grant_type").map(String::as_str) {
        Some("pkce") => {
            let (Some(code), Some(verifier)) = (body["auth_code"].as_str(), body["code_verifier"].as_str()) else {
                return auth_error(400, "validation_failed", "auth_code and code_verifier are required");
            };
            let Some((challenge, email)) = app.auth.codes.lock().unwrap().remove(code) else {
                return auth_error(404, "flow_state_not_found", "invalid flow state, no valid flow state found");
            };
            if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != challenge {
                return auth_error(403, "bad_code_verifier", "code challenge does not match previously saved code verifier");
            }
            email
        }
        Some("refresh_token") => {
            let token = body["refresh_token"].as_str().unwrap_or("");
            match app.auth.refresh.lock().unwrap().remove(token) {
                Some(email) => email,
                None => return auth_error(400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found"),
            }
        }
        _ => return auth_error(400, "unsupported_grant_type", "unsupported grant_type"),
    };
    util::json_response(StatusCode::OK, &session(&app, &host, &email))
}

/// `POST /auth/v1/logout` (Bearer access token): ends every session of that user.
pub async fn logout(State(app): State<Arc<crate::App>>, headers: HeaderMap) -> Response {
    let email = util::bearer(&headers)
        .and_then(|t| t.split('.').nth(1))
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|c| c["email"].as_str().map(str::to_string));
    let Some(email) = email else { return auth_error(401, "no_authorization", "This endpoint requires a Bearer token") };
    app.auth.refresh.lock().unwrap().retain(|_, e| *e != email);
    StatusCode::NO_CONTENT.into_response()
}
