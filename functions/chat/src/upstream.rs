//! The call to OpenRouter (or whatever `OPENROUTER_BASE_URL` points at). The
//! client's body is forwarded byte-for-byte, so OpenRouter-only fields
//! (`provider`, `reasoning`, `plugins`, `models`, …) reach it untouched; only our
//! upstream key replaces the client's credentials.

use crate::config::Config;
use dexto_shared::dialects::Dialect;
use dexto_shared::error::GatewayError;
use dexto_shared::openrouter_keys;
use dexto_shared::secret::Secret;
use dexto_shared::usage::{from_generation, UpstreamUsage};
use crate::deadlines::Deadlines;
use dexto_shared::http::now_ms;
use std::cell::Cell;
use std::rc::Rc;
use worker::{AbortController, Fetch, Headers, Method, Request, RequestInit, Response};

/// What goes upstream: the dialect's path, the body, and the client headers
/// it passes on (`anthropic-version`, `anthropic-beta`).
pub struct Call<'a> {
    pub dialect: Dialect,
    pub body: &'a [u8],
    pub headers: &'a [(String, String)],
}

/// Sends the model call; resolves when response headers arrive, or fails
/// with a timeout after `upstream_timeout_ms` (a deadline on the wallet
/// object's one timer: wallet/deadlines.rs).
pub async fn send(config: &Config, key: &Secret<String>, call: &Call<'_>, deadlines: &Deadlines) -> Result<Response, GatewayError> {
    let headers = Headers::new();
    let auth = format!("Bearer {}", key.expose());
    let set = |name: &str, value: &str| headers.set(name, value).map_err(|_| GatewayError::Internal("headers".into()));
    for (name, value) in call.headers {
        set(name, value)?;
    }
    set("Authorization", &auth)?;
    set("Content-Type", "application/json")?;
    set("HTTP-Referer", "https://dexto.ai")?;
    set("X-Title", "Dexto")?;
    let mut init = RequestInit::new();
    let payload = js_sys_bytes(call.body);
    init.with_method(Method::Post).with_headers(headers).with_body(Some(payload));
    let url = format!("{}{}", config.upstream_base, call.dialect.upstream_path());
    dexto_shared::ops::count(|o| o.subrequests += 1);
    let req = Request::new_with_init(&url, &init).map_err(|_| GatewayError::Internal("upstream request".into()))?;

    let controller = AbortController::default();
    let signal = controller.signal();
    let timed_out = Rc::new(Cell::new(false));
    let flag = timed_out.clone();
    // Cancelled (dropped) once the headers are in: the body is not timed here.
    let _deadline = deadlines.at(now_ms() + config.upstream_timeout_ms as i64, move || {
        flag.set(true);
        controller.abort();
    });
    match Fetch::Request(req).send_with_signal(&signal).await {
        // The deadline's action can run in the same turn as the headers'
        // arrival, after them: its abort then cuts the body, so the reply is
        // a timeout (the sweep's), not a body that will fail to read.
        Ok(_) if timed_out.get() => Err(GatewayError::UpstreamTimeout),
        Ok(resp) => Ok(resp),
        Err(_) if timed_out.get() => Err(GatewayError::UpstreamTimeout),
        // The error text can carry the upstream URL: log nothing of it to the client.
        Err(_) => Err(GatewayError::UpstreamUnavailable),
    }
}

/// The upstream's record of a generation (`GET /generation?id=`), read with
/// the user's upstream key (the one that made the call): its usage and whether
/// it was cancelled; `Ok(None)` while the upstream has no record (404) or one
/// that reports neither tokens nor cost. Shared by the hold sweep and the
/// reconciliation of `needs_review` usage.
pub async fn generation(env: &worker::Env, config: &Config, user_id: &str, id: &str) -> Result<Option<(UpstreamUsage, bool)>, String> {
    let key = openrouter_keys::key_for(env, user_id).await.map_err(|e: GatewayError| format!("{e:?}"))?;
    let headers = Headers::new();
    // Not the runtime's error text: it could carry the secret value.
    headers.set("Authorization", &format!("Bearer {}", key.expose())).map_err(|_| "authorization header".to_string())?;
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let url = format!("{}/generation?id={}", config.upstream_base, dexto_shared::url_query::encode(id));
    let req = Request::new_with_init(&url, &init).map_err(|e| e.to_string())?;
    // The error text can carry the upstream URL: report only the status.
    let mut resp = Fetch::Request(req).send().await.map_err(|_| "generation lookup failed".to_string())?;
    match resp.status_code() {
        200 => {
            let body: serde_json::Value = resp.json().await.map_err(|_| "generation body unreadable".to_string())?;
            Ok(from_generation(&body))
        }
        404 => Ok(None),
        status => Err(format!("generation lookup: status {status}")),
    }
}

fn js_sys_bytes(body: &[u8]) -> wasm_bindgen::JsValue {
    worker::js_sys::Uint8Array::from(body).into()
}
