//! Per-request fault-injection directives.
//!
//! Tests steer the mock either with an `X-Mock-Fault` header or with a
//! `[[mock:k=v,...]]` marker inside message text (useful when the caller under
//! test does not forward custom headers upstream). Both are comma-separated
//! `key=value` lists; later values win, unknown keys are ignored so tests
//! written for a newer mock don't break an older one.

pub const HEADER: &str = "x-mock-fault";
const MARKER_OPEN: &str = "[[mock:";
const MARKER_CLOSE: &str = "]]";

/// What a provider's failure mid-stream says, as OpenRouter passes it on: the
/// provider's own words, which name its internals (the gateway must not pass
/// them to its clients).
pub const MID_STREAM_ERROR: &str = "Provider returned error: MockProvider failed at http://10.0.0.7:8080/v1/generate (trace 4f2a)";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// Sleep before response headers.
    pub delay_ms: Option<u64>,
    /// Reply with this HTTP status and an OpenRouter error envelope.
    pub status: Option<u16>,
    /// `metadata.reason` for the status error (a 402 with a reason is an
    /// in-flight budget refusal and gets `Retry-After`).
    pub reason: Option<String>,
    /// Exact completion token count (still capped by max_tokens unless
    /// `ignore_max=1`).
    pub tokens: Option<u64>,
    /// Pretend the provider ignored max_tokens.
    pub ignore_max: bool,
    /// Sleep between streamed frames.
    pub chunk_delay_ms: Option<u64>,
    /// Extra `: OPENROUTER PROCESSING` comments after each content frame.
    pub keepalive: Option<u64>,
    /// Mid-stream error frame after N content frames (non-stream: a 200
    /// whose body carries the error after N tokens, chat and Responses).
    pub error_after: Option<u64>,
    /// The error frame (or failed reply) also carries usage for what was sent.
    pub error_usage: bool,
    /// Abort the connection after N content frames (non-stream: before body).
    pub drop_after: Option<u64>,
    pub no_usage: bool,
    pub no_cost: bool,
    /// Usage frame with `choices: []` (OpenAI style).
    pub openai_usage: bool,
    pub byok: bool,
    /// Pad each token's text to this many bytes (large streams for backpressure tests).
    pub pad: Option<u64>,
    /// Omit the `X-Generation-Id` response header (the id is then only in the body).
    pub hide_generation: bool,
    /// Prompt bytes per token (default 4, what real tokenizers average on
    /// English and code; 1 is the worst any tokenizer can do).
    pub bytes_per_token: Option<u64>,
    /// Template tokens per message (default 0).
    pub message_tokens: Option<u64>,
    /// The first token's text is this many bytes, as an image model's base64
    /// image: one SSE event when streamed, a huge body when not.
    pub image_bytes: Option<u64>,
    /// Non-stream: send the headers at once and the body this much later, a
    /// newline first (OpenRouter keeps a slow reply's connection open with
    /// whitespace before the JSON).
    pub body_delay_ms: Option<u64>,
    /// Answer 204 No Content: a reply without a body, which the gateway
    /// cannot stream (its stream set-up fails).
    pub no_content: bool,
}

impl Faults {
    /// Applies one `k=v,k=v` list on top of the current values.
    pub fn apply(&mut self, list: &str) {
        for item in list.split(',') {
            let Some((k, v)) = item.split_once('=') else {
                continue;
            };
            let (k, v) = (k.trim(), v.trim());
            let num = || v.parse::<u64>().ok();
            let flag = v == "1" || v.eq_ignore_ascii_case("true");
            match k {
                "delay_ms" => self.delay_ms = num().or(self.delay_ms),
                "status" => self.status = v.parse::<u16>().ok().or(self.status),
                "reason" => self.reason = Some(v.to_string()),
                "tokens" => self.tokens = num().or(self.tokens),
                "ignore_max" => self.ignore_max = flag,
                "chunk_delay_ms" => self.chunk_delay_ms = num().or(self.chunk_delay_ms),
                "keepalive" => self.keepalive = num().or(self.keepalive),
                "error_after" => self.error_after = num().or(self.error_after),
                "error_usage" => self.error_usage = flag,
                "drop_after" => self.drop_after = num().or(self.drop_after),
                "no_usage" => self.no_usage = flag,
                "no_cost" => self.no_cost = flag,
                "openai_usage" => self.openai_usage = flag,
                "byok" => self.byok = flag,
                "pad" => self.pad = num().or(self.pad),
                "hide_generation" => self.hide_generation = flag,
                "bytes_per_token" => self.bytes_per_token = num().filter(|n| *n > 0).or(self.bytes_per_token),
                "message_tokens" => self.message_tokens = num().or(self.message_tokens),
                "image_bytes" => self.image_bytes = num().or(self.image_bytes),
                "no_content" => self.no_content = flag,
                "body_delay_ms" => self.body_delay_ms = num().or(self.body_delay_ms),
                _ => {}
            }
        }
    }

    /// Applies every `[[mock:...]]` marker found in `text`.
    pub fn apply_markers(&mut self, text: &str) {
        let mut rest = text;
        while let Some(start) = rest.find(MARKER_OPEN) {
            let after = &rest[start + MARKER_OPEN.len()..];
            let Some(end) = after.find(MARKER_CLOSE) else {
                break;
            };
            self.apply(&after[..end]);
            rest = &after[end + MARKER_CLOSE.len()..];
        }
    }

    pub fn from_header(headers: &axum::http::HeaderMap) -> Faults {
        let mut f = Faults::default();
        for v in headers.get_all(HEADER) {
            if let Ok(s) = v.to_str() {
                f.apply(s);
            }
        }
        f
    }
}

/// The message used in error envelopes for an injected status, mirroring
/// OpenRouter's wording where it is known.
pub fn status_message(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "No auth credentials found",
        402 => "Insufficient credits. Add more using https://openrouter.ai/credits",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request timed out",
        413 => "Request too large",
        422 => "Unprocessable Entity",
        429 => "Rate limit exceeded",
        500 => "Internal Server Error",
        502 => "Upstream provider error",
        503 => "Service Unavailable",
        524 => "Provider timed out",
        529 => "Provider is overloaded",
        _ => "Mock injected error",
    }
}

/// An injected `status=N` error (only 4xx/5xx count), for any dialect to
/// write in its own envelope.
pub struct InjectedError {
    pub status: u16,
    pub message: &'static str,
    pub metadata: serde_json::Value,
    /// OpenRouter sends `Retry-After` on 429s and in-flight-budget 402s (a
    /// 402 given a `reason`).
    retry_after: bool,
}

impl InjectedError {
    /// Adds the headers OpenRouter sends with this error to `resp`.
    pub fn headers(&self, mut resp: axum::response::Response) -> axum::response::Response {
        if self.retry_after {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        resp
    }
}

pub fn injected_error(f: &Faults) -> Option<InjectedError> {
    let status = f.status.filter(|s| (400..=599).contains(s))?;
    let mut metadata = serde_json::Map::new();
    if status != 402 {
        metadata.insert("provider_name".into(), "Mock".into());
    }
    if let Some(r) = &f.reason {
        metadata.insert("reason".into(), r.clone().into());
    }
    Some(InjectedError {
        status,
        message: status_message(status),
        metadata: metadata.into(),
        retry_after: status == 429 || (status == 402 && f.reason.is_some()),
    })
}

/// The injected error in OpenRouter's own envelope (routes without a dialect).
pub fn injected_status_response(f: &Faults) -> Option<axum::response::Response> {
    let e = injected_error(f)?;
    Some(e.headers(crate::util::error_response(e.status, e.message, Some(e.metadata.clone()))))
}

/// A 200 whose body fails at once: hyper then drops the connection without a
/// complete body, which is what a client sees when the upstream link breaks.
pub fn aborted_response() -> axum::response::Response {
    let failing = futures::stream::once(async {
        Err::<axum::body::Bytes, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "mock drop_after",
        ))
    });
    let mut resp = axum::response::Response::new(axum::body::Body::from_stream(failing));
    resp.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_markers() {
        let mut f = Faults::default();
        f.apply("status=503, delay_ms=200,bogus=1,novalue");
        assert_eq!(f.status, Some(503));
        assert_eq!(f.delay_ms, Some(200));
        f.apply_markers("hi [[mock:tokens=3,byok=1]] and [[mock:status=429]] [[mock:open");
        assert_eq!(f.tokens, Some(3));
        f.apply("image_bytes=3145728,no_content=1");
        assert_eq!((f.image_bytes, f.no_content), (Some(3_145_728), true));
        assert!(f.byok);
        assert_eq!(f.status, Some(429));
    }
}
