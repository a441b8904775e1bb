//! `GET /device`: the verification page the CLI sends people to. Static (no
//! server-side interpolation, no external assets); its script reads the user
//! code from `?user_code=` and the session from `#access_token=` or a paste
//! box, and calls `POST /api/auth/device/approve|deny`.

use crate::{device, ApiResult};
use dexto_shared::error::GatewayError;
use worker::{Env, Headers, Response};

const PAGE: &str = include_str!("device.html");

/// Inline script and style only; no framing, so the Approve button cannot be
/// clickjacked; no referrer, so the user code does not leak.
const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; \
                   base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub fn serve(env: &Env) -> ApiResult {
    device::enabled(env)?;
    let internal = |e: worker::Error| GatewayError::Internal(format!("device page: {e}"));
    let headers = Headers::new();
    for (name, value) in [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Security-Policy", CSP),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Content-Type-Options", "nosniff"),
        ("Cache-Control", "no-store"),
    ] {
        headers.set(name, value).map_err(internal)?;
    }
    Ok(Response::from_bytes(PAGE.as_bytes().to_vec()).map_err(internal)?.with_headers(headers))
}
