//! A `GatewayError` in each dialect's envelope. The one mapping from error
//! to status, type, code and message stays in `error.rs`; a dialect only
//! chooses the envelope around it:
//! - Chat and Responses: OpenAI's `{"error":{"message","type","code"}}`
//!   (`GatewayError::body`, with `balance`/`needed` on a 402);
//! - Messages: Anthropic's `{"type":"error","error":{"type","message"}}`,
//!   the type from the status as Anthropic documents it
//!   (`anthropic_error_type`).
//!
//! Mid-stream (the 200 already sent) an error is one SSE event: chat's
//! `data: {"error":…}`, Anthropic's `event: error`, and for Responses a
//! terminal `response.failed` (what Codex CLI reads a failed turn from).

use super::Dialect;
use crate::error::GatewayError;
use serde::Serialize;
use serde_json::{json, Value};

/// Where to add credit, for clients that do not know Dexto (Claude Code,
/// Anthropic SDKs): appended to a 402's message in the Anthropic envelope.
/// (Chat's 402 message stays the exact sentence every Dexto CLI parses.)
pub const TOP_UP_HINT: &str = "Add credit at /dashboard/settings/billing on this API's origin, or run `dexto billing --buy`.";

/// Anthropic's documented error type for an HTTP status (docs "Errors" and
/// the SDKs' `ErrorObject`): 402 is `billing_error`, 413
/// `request_too_large`, 504 `timeout_error`, 529 (and 503) `overloaded_error`;
/// any other 4xx `invalid_request_error`, any other 5xx `api_error`.
pub fn anthropic_error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        503 | 529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

impl Dialect {
    /// The error response body in this dialect's envelope (status:
    /// `err.status()`, the same in every dialect).
    pub fn error_body(self, err: &GatewayError) -> Value {
        let openai = err.body();
        if self != Dialect::Messages {
            return openai;
        }
        let mut message = err.message();
        if let GatewayError::InsufficientCredits { .. } = err {
            message = format!("{message} {TOP_UP_HINT}");
        }
        let mut error = json!({"type": anthropic_error_type(err.status()), "message": message});
        for extra in ["balance", "needed"] {
            if let Some(usd) = openai["error"].get(extra) {
                error[extra] = usd.clone();
            }
        }
        json!({"type": "error", "error": error})
    }
}

/// A failure after the stream began, as one SSE event in the stream's dialect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamFailure {
    pub status: u16,
    /// OpenAI error type (chat's frame).
    pub error_type: &'static str,
    pub code: &'static str,
    pub message: String,
}

impl StreamFailure {
    pub fn of(err: &GatewayError) -> StreamFailure {
        StreamFailure { status: err.status(), error_type: err.error_type(), code: err.code(), message: err.message() }
    }

    /// The upstream connection broke mid-stream (what was delivered is billed).
    pub fn interrupted() -> StreamFailure {
        StreamFailure { status: 502, error_type: "api_error", code: "upstream_stream_interrupted", message: "The model provider closed the stream early.".into() }
    }

    /// The SSE event. Responses: `next` is the `sequence_number` it takes and
    /// the response id it ends (`DialectMeter::next_event`); the others ignore it.
    pub fn event(&self, dialect: Dialect, next: (u64, Option<&str>)) -> Vec<u8> {
        let (name, data) = match dialect {
            Dialect::Chat => (None, to_json(&ChatFrame { error: ChatError { message: &self.message, r#type: self.error_type, code: self.code } })),
            Dialect::Messages => {
                let error = json!({"type": anthropic_error_type(self.status), "message": self.message});
                (Some("error"), to_json(&AnthropicFrame { r#type: "error", error }))
            }
            Dialect::Responses => {
                let (sequence_number, id) = next;
                let response = json!({"id": id, "object": "response", "status": "failed",
                    "error": {"code": responses_error_code(self.status), "message": self.message}});
                (Some("response.failed"), to_json(&ResponsesFrame { r#type: "response.failed", sequence_number, response }))
            }
        };
        let name = name.map(|n| format!("event: {n}\n")).unwrap_or_default();
        format!("{name}data: {data}\n\n").into_bytes()
    }
}

/// OpenAI's `response.error.code` for a status (the codes OpenRouter's
/// Responses API uses): Codex CLI retries a failed turn unless the code says
/// otherwise, as it would a 5xx.
pub(super) fn responses_error_code(status: u16) -> &'static str {
    match status {
        400 | 413 | 422 => "invalid_prompt",
        429 => "rate_limit_exceeded",
        _ => "server_error",
    }
}

/// The status an Anthropic error type stands for (the reverse of
/// `anthropic_error_type`, kept beside it).
pub(super) fn status_of_anthropic_type(kind: &str) -> u16 {
    match kind {
        "invalid_request_error" => 400,
        "billing_error" => 402,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "overloaded_error" => 529,
        _ => 500,
    }
}

/// The status an OpenAI string code stands for (Responses, and chat errors
/// that carry one): the reverse of `responses_error_code`, and OpenAI's others.
pub(super) fn status_of_code(code: &str) -> u16 {
    match code {
        "invalid_prompt" | "context_length_exceeded" | "invalid_request_error" => 400,
        "insufficient_quota" => 402,
        "rate_limit_exceeded" => 429,
        _ => 500,
    }
}

fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("an error frame serialises")
}

/// Field order as chat's frame has always been written.
#[derive(Serialize)]
struct ChatFrame<'a> {
    error: ChatError<'a>,
}

#[derive(Serialize)]
struct ChatError<'a> {
    message: &'a str,
    r#type: &'a str,
    code: &'a str,
}

#[derive(Serialize)]
struct AnthropicFrame {
    r#type: &'static str,
    error: Value,
}

#[derive(Serialize)]
struct ResponsesFrame {
    r#type: &'static str,
    sequence_number: u64,
    response: Value,
}
