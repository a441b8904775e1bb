mod errors;
mod messages_request;
mod responses_request;
mod stream_meter;
mod usage;

use crate::chat_request::{ChatRequest, RequestError};
use crate::dialects::Dialect;
use serde_json::Value;

fn read(dialect: Dialect, body: &Value) -> Result<ChatRequest, RequestError> {
    dialect.read(body.to_string().as_bytes())
}

/// `body` is refused with a message that contains `needle`.
fn refused(dialect: Dialect, body: &Value, needle: &str) {
    match read(dialect, body) {
        Err(RequestError::Invalid(msg)) => assert!(msg.contains(needle), "{body}: {msg}"),
        other => panic!("{body}: {other:?}"),
    }
}
