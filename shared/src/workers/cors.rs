//! CORS for a token-only API: no cookies, never credentials. Only origins on
//! the `CORS_ALLOWED_ORIGINS` allow-list (comma-separated; default
//! `https://dexto.ai`) get CORS headers; an unlisted origin is never reflected.

use worker::{Env, Headers, Method, Request, Response, Result};

const ALLOW_METHODS: &str = "GET, POST, PATCH, DELETE, OPTIONS";
const ALLOW_HEADERS: &str = "Authorization, Content-Type, Last-Event-ID, X-Dexto-Source, X-Dexto-Session-ID, X-Dexto-Version";
const EXPOSE_HEADERS: &str = "X-Dexto-Request-ID, X-Dexto-Cost-USD, X-Dexto-Cost-Cents, X-Dexto-Credits-Remaining, X-Dexto-RateLimit-Remaining, Retry-After";

/// The request's `Origin`, if it is on the allow-list.
pub fn allowed_origin(req: &Request, env: &Env) -> Option<String> {
    let origin = req.headers().get("Origin").ok().flatten()?;
    let list = env.var("CORS_ALLOWED_ORIGINS").map(|v| v.to_string()).unwrap_or_else(|_| "https://dexto.ai".into());
    list.split(',').map(str::trim).any(|o| !o.is_empty() && o == origin).then_some(origin)
}

/// Answers a preflight (`OPTIONS` with `Access-Control-Request-Method`):
/// 204 with the policy for a listed origin, 403 without CORS headers otherwise.
pub fn preflight(req: &Request, origin: Option<&str>) -> Result<Option<Response>> {
    let is_preflight = req.method() == Method::Options && req.headers().get("Access-Control-Request-Method")?.is_some();
    if !is_preflight {
        return Ok(None);
    }
    let Some(origin) = origin else {
        return Ok(Some(Response::empty()?.with_status(403)));
    };
    let headers = Headers::new();
    headers.set("Access-Control-Allow-Origin", origin)?;
    headers.set("Access-Control-Allow-Methods", ALLOW_METHODS)?;
    headers.set("Access-Control-Allow-Headers", ALLOW_HEADERS)?;
    headers.set("Access-Control-Max-Age", "600")?;
    headers.set("Vary", "Origin")?;
    Ok(Some(Response::empty()?.with_status(204).with_headers(headers)))
}

/// Adds CORS headers to a response for a listed origin. Responses from other
/// Workers have immutable headers, so they are copied into a fresh set.
pub fn decorate(resp: Response, origin: &str) -> Result<Response> {
    let headers = Headers::new();
    for (k, v) in resp.headers().entries() {
        headers.append(&k, &v)?;
    }
    headers.set("Access-Control-Allow-Origin", origin)?;
    headers.set("Access-Control-Expose-Headers", EXPOSE_HEADERS)?;
    headers.append("Vary", "Origin")?;
    Ok(resp.with_headers(headers))
}
