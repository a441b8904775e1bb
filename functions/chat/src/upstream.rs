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
use futures::future::{select, Either};
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit, Response};

/// What goes upstream: the dialect's path, the body, and the client headers
/// it passes on (`anthropic-version`, `anthropic-beta`).
pub struct Call<'a> {
    pub dialect: Dialect,
    pub body: &'a [u8],
    pub headers: &'a [(String, String)],
}

/// Sends the model call; resolves when response headers arrive, or fails
/// with a timeout after `upstream_timeout_ms`.
pub async fn send(config: &Config, key: &Secret<String>, call: &Call<'_>) -> Result<Response, GatewayError> {
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
    let fetcher = Fetch::Request(req);
    let fetch = Box::pin(fetcher.send_with_signal(&signal));
    let timeout = Box::pin(Delay::from(std::time::Duration::from_millis(config.upstream_timeout_ms)));
    let winner = select(fetch, timeout).await;
    // Bound to a local so the borrowed request and signal outlive the match.
    #[allow(clippy::let_and_return)]
    let result = match winner {
        Either::Left((Ok(resp), _)) => Ok(resp),
        // The error text can carry the upstream URL: log nothing of it to the client.
        Either::Left((Err(_), _)) => Err(GatewayError::UpstreamUnavailable),
        Either::Right(_) => {
            controller.abort();
            Err(GatewayError::UpstreamTimeout)
        }
    };
    result
}

/// The upstream's record of a generation (`GET /generation?id=`), read with
/// the user's upstream key (the one that made the call): its usage and whether
/// it was cancelled; `Ok(None)` while the upstream has no record (404) or one
/// that reports neither tokens nor cost. Shared by the hold sweep and the
/// reconciliation of `needs_review` usage.
pub async fn generation(env: &worker::Env, config: &Config, user_id: &str, id: &str) -> Result<Option<(UpstreamUsage, bool)>, String> {
    let key = openrouter_keys::key_for(env, user_id).await.map_err(|e: GatewayError| format!("{e:?}"))?;
    let headers = Headers::new();
    headers.set("Authorization", &format!("Bearer {}", key.expose())).map_err(|e| e.to_string())?;
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
