use crate::dialects::{anthropic_error_type, Dialect, StreamFailure, TOP_UP_HINT};
use crate::error::GatewayError;
use crate::money::Micros;
use serde_json::json;

#[test]
fn anthropic_types_follow_the_status_as_anthropic_documents_them() {
    let table = [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (402, "billing_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (405, "invalid_request_error"),
        (409, "invalid_request_error"),
        (413, "request_too_large"),
        (422, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "overloaded_error"),
        (504, "timeout_error"),
        (529, "overloaded_error"),
    ];
    for (status, kind) in table {
        assert_eq!(anthropic_error_type(status), kind, "{status}");
    }
}

#[test]
fn every_gateway_error_gets_the_anthropic_envelope_with_its_own_message() {
    for err in [
        GatewayError::MissingAuth,
        GatewayError::InvalidAuth,
        GatewayError::Forbidden("This API key may not use `m`.".into()),
        GatewayError::WalletFrozen,
        GatewayError::ModelNotFound("claude-sonnet-9".into()),
        GatewayError::BadRequest("`max_tokens` is required".into()),
        GatewayError::PayloadTooLarge { limit_bytes: 4 },
        GatewayError::RateLimited { retry_after_secs: 3 },
        GatewayError::UpstreamUnavailable,
        GatewayError::UpstreamTimeout,
        GatewayError::UpstreamRejected { status: 422 },
    ] {
        let body = Dialect::Messages.error_body(&err);
        assert_eq!(body, json!({"type": "error", "error": {"type": anthropic_error_type(err.status()), "message": err.message()}}), "{err:?}");
    }
}

#[test]
fn a_402_names_the_balance_and_how_to_top_up_in_a_billing_error() {
    let err = GatewayError::InsufficientCredits { available: Micros(420_000), needed: Some((Micros(1_230_000), 1024)) };
    let body = Dialect::Messages.error_body(&err);
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "billing_error");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("Insufficient credits. Balance: $0.42. This request needs at least $1.23"), "{message}");
    assert!(message.ends_with(TOP_UP_HINT), "{message}");
    assert_eq!((body["error"]["balance"].clone(), body["error"]["needed"].clone()), (json!(0.42), json!(1.23)));
}

#[test]
fn chat_and_responses_keep_the_openai_envelope_every_cli_parses() {
    let err = GatewayError::InsufficientCredits { available: Micros(420_000), needed: None };
    for dialect in [Dialect::Chat, Dialect::Responses] {
        assert_eq!(dialect.error_body(&err), err.body());
    }
    assert!(!Dialect::Messages.error_body(&GatewayError::Internal("D1 said sk-or-v1-x".into())).to_string().contains("sk-or"));
}

#[test]
fn mid_stream_errors_are_one_event_in_each_dialect() {
    let interrupted = StreamFailure::interrupted();
    let chat = String::from_utf8(interrupted.event(Dialect::Chat, (0, None))).unwrap();
    // Byte for byte the frame chat streams have always ended with.
    let legacy = r#"data: {"error":{"message":"The model provider closed the stream early.","type":"api_error","code":"upstream_stream_interrupted"}}"#;
    assert_eq!(chat, format!("{legacy}\n\n"));
    let messages = String::from_utf8(interrupted.event(Dialect::Messages, (0, None))).unwrap();
    assert_eq!(messages, "event: error\ndata: {\"type\":\"error\",\"error\":{\"message\":\"The model provider closed the stream early.\",\"type\":\"api_error\"}}\n\n");
    let responses = String::from_utf8(interrupted.event(Dialect::Responses, (8, Some("resp_gen-1")))).unwrap();
    assert_eq!(
        responses,
        "event: response.failed\ndata: {\"type\":\"response.failed\",\"sequence_number\":8,\"response\":{\"error\":{\"code\":\"server_error\",\
         \"message\":\"The model provider closed the stream early.\"},\"id\":\"resp_gen-1\",\"object\":\"response\",\"status\":\"failed\"}}\n\n"
    );
    let limited = StreamFailure::of(&GatewayError::RateLimited { retry_after_secs: 2 });
    let event = String::from_utf8(limited.event(Dialect::Responses, (0, None))).unwrap();
    assert!(event.contains("\"code\":\"rate_limit_exceeded\"") && event.contains("\"id\":null"), "{event}");
    let event = String::from_utf8(limited.event(Dialect::Messages, (0, None))).unwrap();
    assert!(event.contains("\"type\":\"rate_limit_error\""), "{event}");
}
