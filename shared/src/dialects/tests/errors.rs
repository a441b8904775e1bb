use crate::dialects::{anthropic_error_type, redact_upstream_error, Dialect, DialectMeter, StreamFailure, TOP_UP_HINT};
use crate::error::{Credential, GatewayError};
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
        GatewayError::Expired(Credential::ApiKey),
        GatewayError::Expired(Credential::Session),
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

#[test]
fn an_upstream_error_mid_stream_keeps_its_shape_but_not_its_words() {
    // As the stream pump passes each event on: through the dialect's meter,
    // which notes the error for billing.
    let passed_on = |dialect: Dialect, event: Vec<u8>| -> Vec<u8> {
        let mut meter = DialectMeter::new(dialect);
        let (_, out) = meter.observe(event.clone());
        assert_eq!(meter.seen.error.is_some(), out != event, "an event is rewritten exactly when the meter notes an error");
        out
    };
    let data = |event: &[u8]| -> serde_json::Value {
        let text = String::from_utf8(event.to_vec()).unwrap();
        serde_json::from_str(text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap()).unwrap()
    };
    let chat = br#"data: {"id":"gen-1","error":{"code":402,"message":"Insufficient credits. Add more using https://openrouter.ai/credits","metadata":{"raw":"acct 123"}},"choices":[{"index":0,"delta":{},"finish_reason":"error"}]}

"#;
    let out = passed_on(Dialect::Chat, chat.to_vec());
    let v = data(&out);
    assert_eq!(v["error"], json!({"code": 402, "message": GatewayError::UpstreamRejected { status: 402 }.message()}));
    assert_eq!((&v["id"], &v["choices"][0]["finish_reason"]), (&json!("gen-1"), &json!("error")), "the rest as sent");

    let messages = b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Provider X at https://internal overloaded\"}}\n\n";
    let out = passed_on(Dialect::Messages, messages.to_vec());
    assert!(out.starts_with(b"event: error\ndata: "), "{}", String::from_utf8_lossy(&out));
    let v = data(&out);
    assert_eq!(v["error"]["type"], "overloaded_error");
    assert!(!v.to_string().contains("https://"), "{v}");

    let failed = b"event: response.failed\ndata: {\"type\":\"response.failed\",\"sequence_number\":4,\"response\":{\"id\":\"resp_1\",\"status\":\"failed\",\"error\":{\"code\":\"rate_limit_exceeded\",\"message\":\"Provider Y says: slow down (org-123)\"}}}\n\n";
    let v = data(&passed_on(Dialect::Responses, failed.to_vec()));
    assert_eq!((&v["sequence_number"], &v["response"]["error"]["code"]), (&json!(4), &json!("rate_limit_exceeded")));
    assert!(v["response"]["error"]["message"].as_str().unwrap().starts_with("The model provider is rate limiting"), "{v}");
    let error = b"event: error\ndata: {\"type\":\"error\",\"code\":\"server_error\",\"message\":\"stack at openrouter.ts:12\",\"sequence_number\":2}\n\n";
    let v = data(&passed_on(Dialect::Responses, error.to_vec()));
    assert!(!v["message"].as_str().unwrap().contains("openrouter"), "{v}");
    assert_eq!(v["sequence_number"], 2);

    // Anything else passes as it came.
    let plain = b"data: {\"choices\":[{\"delta\":{\"content\":\"error\"}}]}\n\n".to_vec();
    assert_eq!(passed_on(Dialect::Chat, plain.clone()), plain);
}

#[test]
fn an_upstream_error_in_a_200_reply_or_in_other_shapes_is_redacted_too() {
    // A non-stream Responses reply that failed, a chat reply with an error, a string error.
    let mut failed = json!({"id": "resp_1", "status": "failed", "error": {"code": "rate_limit_exceeded", "message": "org-9 over quota"}, "usage": null});
    assert!(redact_upstream_error(Dialect::Responses, &mut failed));
    assert_eq!(failed["error"]["code"], "rate_limit_exceeded");
    assert!(failed["error"]["message"].as_str().unwrap().starts_with("The model provider is rate limiting"), "{failed}");
    let mut chat = json!({"id": "gen-1", "error": {"code": "server_error", "message": "see https://internal", "metadata": {"raw": "x"}}});
    assert!(redact_upstream_error(Dialect::Chat, &mut chat));
    assert_eq!(chat["error"], json!({"code": "server_error", "message": "The model provider failed while answering: retry, or use another model."}));
    let mut failed_in_words = json!({"type": "response.failed", "response": {"id": "resp_2", "status": "failed", "error": "provider at https://internal gave up"}});
    assert!(redact_upstream_error(Dialect::Responses, &mut failed_in_words));
    assert!(failed_in_words["response"]["error"]["message"].is_string() && !failed_in_words.to_string().contains("internal"), "{failed_in_words}");
    let mut bare = json!({"error": "upstream said https://internal"});
    assert!(redact_upstream_error(Dialect::Chat, &mut bare));
    assert!(!bare.to_string().contains("internal"), "{bare}");
    // Replies without an error are left alone (Responses' `"error": null` included).
    let mut fine = json!({"id": "resp_2", "status": "completed", "error": null});
    assert!(!redact_upstream_error(Dialect::Responses, &mut fine));
    let mut message = json!({"id": "msg_1", "type": "message", "content": [{"type": "text", "text": "error"}]});
    assert!(!redact_upstream_error(Dialect::Messages, &mut message));
}

#[test]
fn the_reverse_error_tables_agree_with_the_forward_ones() {
    use crate::dialects::errors::{responses_error_code, status_of_anthropic_type, status_of_code};
    for status in [400, 402, 404, 413, 429, 500, 529] {
        let kind = anthropic_error_type(status);
        assert_eq!(anthropic_error_type(status_of_anthropic_type(kind)), kind, "{status}");
    }
    for status in [400, 429, 500] {
        let code = responses_error_code(status);
        assert_eq!(responses_error_code(status_of_code(code)), code, "{status}");
    }
}
