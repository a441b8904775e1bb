//! The one place a `GatewayError` becomes an HTTP response, plus JSON helpers,
//! for every Worker (feature `workers`).

use crate::dialects::Dialect;
use crate::error::GatewayError;
use worker::{Headers, Response, Result};

pub const REQUEST_ID_HEADER: &str = "X-Dexto-Request-ID";
/// Every error response names its code here too (the same as the body's
/// `error.code`), so a caller can count refusals without reading the body.
pub const ERROR_CODE_HEADER: &str = "X-Dexto-Error-Code";

pub fn json_response(status: u16, body: &serde_json::Value) -> Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    Ok(Response::from_bytes(body.to_string().into_bytes())?
        .with_status(status)
        .with_headers(headers))
}

/// Renders an error in the OpenAI envelope with its status, `Retry-After` where
/// it applies, and the request id when there is one.
pub fn error_response(err: &GatewayError, request_id: Option<&str>) -> Result<Response> {
    error_response_in(Dialect::Chat, err, request_id)
}

/// The error in the envelope of the API the client spoke (same status and code).
pub fn error_response_in(dialect: Dialect, err: &GatewayError, request_id: Option<&str>) -> Result<Response> {
    let mut resp = json_response(err.status(), &dialect.error_body(err))?;
    let headers = resp.headers_mut();
    headers.set(ERROR_CODE_HEADER, err.code())?;
    if dialect == Dialect::Messages && err.status() < 500 && !matches!(err.status(), 408 | 409 | 429) {
        // Anthropic's clients retry a 4xx (Claude Code: ten times) unless told not to.
        headers.set("x-should-retry", "false")?;
    }
    if let Some(secs) = err.retry_after_secs() {
        headers.set("Retry-After", &secs.to_string())?;
        if err.status() == 429 && matches!(err, GatewayError::RateLimited { .. } | GatewayError::TooManyConcurrent { .. }) {
            // Our own limits: nothing is left until the retry.
            headers.set("X-Dexto-RateLimit-Remaining", "0")?;
        }
    }
    if let Some(id) = request_id {
        headers.set(REQUEST_ID_HEADER, id)?;
    }
    Ok(resp)
}

/// A refused chat request: one `chat.rejected` log line (status, code, and
/// for internal errors their detail, which clients never see; plus `context`
/// such as user, key and model), then the error response.
pub fn rejected(err: &GatewayError, request_id: &str, context: serde_json::Value) -> Result<Response> {
    rejected_in(Dialect::Chat, err, request_id, context)
}

/// `rejected`, answered in the envelope of the API the client spoke.
pub fn rejected_in(dialect: Dialect, err: &GatewayError, request_id: &str, context: serde_json::Value) -> Result<Response> {
    let detail = match err {
        GatewayError::Internal(d) => Some(d.clone()),
        _ => None,
    };
    let mut line = serde_json::json!({"request_id": request_id, "status": err.status(), "code": err.code(), "detail": detail, "dialect": dialect});
    if let (Some(line), Some(extra)) = (line.as_object_mut(), context.as_object()) {
        line.extend(extra.clone());
    }
    crate::log::event("chat.rejected", line);
    error_response_in(dialect, err, Some(request_id))
}

/// The bearer token of `Authorization: Bearer …`, if present and non-empty.
pub fn bearer_token(headers: &Headers) -> Option<String> {
    let value = headers.get("Authorization").ok().flatten()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_string())
}

/// The caller's `Idempotency-Key` header, if usable (non-empty, at most 200
/// bytes): a retried POST that carries the same one must not act twice.
pub fn idempotency_key(req: &worker::Request) -> Option<String> {
    req.headers().get("Idempotency-Key").ok().flatten().filter(|k| !k.is_empty() && k.len() <= 200)
}

/// Constant-time equality for secrets presented by callers (admin token).
pub use crate::secret::constant_time_eq;

pub fn now_ms() -> i64 {
    worker::Date::now().as_millis() as i64
}

/// The clock for phase timing, in ms. Deployed Workers advance it only
/// across I/O, so phases of pure CPU read 0 there: the breakdown is a local
/// tool (`npm run bench`), where it advances in whole milliseconds and means
/// over many requests carry the figure.
pub fn clock_ms() -> f64 {
    worker::js_sys::Date::now()
}

/// Reads a JSON object body; an empty body counts as `{}`. 400 with the
/// parser's reason otherwise.
pub async fn json_object(req: &mut worker::Request) -> Result2<serde_json::Value> {
    let bytes = read_body(req, CONTROL_BODY_LIMIT).await?;
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(serde_json::json!({}));
    }
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| GatewayError::BadRequest(format!("Body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(GatewayError::BadRequest("Body must be a JSON object.".into()));
    }
    Ok(value)
}

type Result2<T> = std::result::Result<T, GatewayError>;

/// Largest JSON body a control-plane endpoint reads (names, amounts, codes).
pub const CONTROL_BODY_LIMIT: usize = 64 * 1024;

/// Reads a request body, refusing (413) as soon as it exceeds `limit`: the
/// declared Content-Length first, then the bytes actually received, so a
/// chunked body is never read past the limit either.
pub async fn read_body(req: &mut worker::Request, limit: usize) -> Result2<Vec<u8>> {
    use futures::StreamExt;
    let too_large = || GatewayError::PayloadTooLarge { limit_bytes: limit };
    let declared = req.headers().get("content-length").ok().flatten().and_then(|v| v.trim().parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    if declared.is_some() {
        // HTTP framing holds the body to its declared length: read it in one
        // call (a stream costs a runtime round trip per chunk).
        return req.bytes().await.map_err(|_| GatewayError::BadRequest("Could not read the body.".into()));
    }
    let Ok(mut stream) = req.stream() else {
        return Ok(Vec::new()); // no body
    };
    let mut body = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| GatewayError::BadRequest("Could not read the body.".into()))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A JSON response whose serialisation cannot fail the handler.
pub fn ok_json(status: u16, body: &serde_json::Value) -> Result2<Response> {
    json_response(status, body).map_err(|e| GatewayError::Internal(e.to_string()))
}
