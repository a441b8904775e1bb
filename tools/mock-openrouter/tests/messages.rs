//! The Anthropic Messages dialect (`/messages`) against a live mock: reply
//! and stream shapes, usage with and without cost, the `max_tokens` ceiling,
//! faults, auth, and what the request log records.

mod common;

use common::*;
use mock_openrouter::spawn_in_background;
use serde_json::{json, Value};

const PATH: &str = "/api/v1/messages";

fn body(content: &str, max_tokens: u64) -> Value {
    json!({ "model": "openai/gpt-4o", "max_tokens": max_tokens, "messages": [{ "role": "user", "content": content }] })
}

fn stream_body(content: &str, max_tokens: u64) -> Value {
    let mut b = body(content, max_tokens);
    b["stream"] = json!(true);
    b
}

#[test]
fn reply_shape_and_exact_usage_priced_like_chat() {
    let addr = spawn_in_background();
    let mut b = body("hello world!", 100);
    b["system"] = json!("ab");
    let r = post_dialect(addr, PATH, &b, None);
    assert_priced_like_chat(addr, &r);
    let v = r.json();
    let gen = r.header("x-generation-id").unwrap();
    assert_eq!(v["id"], format!("msg_{gen}"));
    assert_eq!((v["type"].as_str(), v["role"].as_str()), (Some("message"), Some("assistant")));
    assert_eq!(v["model"], "openai/gpt-4o");
    assert_eq!(v["content"], json!([{ "type": "text", "text": "tok0 tok1 tok2 tok3 tok4 tok5 tok6 tok7 " }]));
    assert_eq!((v["stop_reason"].as_str(), &v["stop_sequence"]), (Some("end_turn"), &Value::Null));
    let u = &v["usage"];
    assert_eq!((u["cache_creation_input_tokens"].as_u64(), u["cache_read_input_tokens"].as_u64()), (Some(0), Some(0)));
    // The generation record has it.
    let g = get(addr, &format!("/generation?id={gen}"), Some(USER)).json();
    assert_eq!((g["data"]["tokens_prompt"].as_u64(), g["data"]["tokens_completion"].as_u64()), (Some(4), Some(8)));
}

#[test]
fn max_tokens_is_required_and_is_the_ceiling() {
    let addr = spawn_in_background();
    let r = post_dialect(addr, PATH, &json!({ "model": "openai/gpt-4o", "messages": [] }), None);
    assert_eq!(r.status, 400);
    assert_eq!(r.json(), json!({ "type": "error", "error": { "type": "invalid_request_error", "message": "max_tokens: Field required" } }));

    let v = post_dialect(addr, PATH, &body("hi [[mock:tokens=50]]", 3), None).json();
    assert_eq!((v["usage"]["output_tokens"].as_u64(), v["stop_reason"].as_str()), (Some(3), Some("max_tokens")));
    assert_eq!(v["content"][0]["text"], "tok0 tok1 tok2 ");
    let v = post_dialect(addr, PATH, &body("hi", 3), Some("tokens=50,ignore_max=1")).json();
    assert_eq!((v["usage"]["output_tokens"].as_u64(), v["stop_reason"].as_str()), (Some(50), Some("end_turn")));

    let r = post_dialect(addr, PATH, &json!({ "model": "nope/model", "max_tokens": 5, "messages": [] }), None);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], json!({ "type": "invalid_request_error", "message": "nope/model is not a valid model ID" }));
}

#[test]
fn key_by_bearer_or_x_api_key_and_refusal_in_anthropic_envelope() {
    let addr = spawn_in_background();
    let b = body("hi", 10).to_string();
    let r = request(addr, "POST", PATH, &[], &b);
    assert_eq!(r.status, 401);
    assert_eq!(r.json(), json!({ "type": "error", "error": { "type": "authentication_error", "message": "No auth credentials found" } }));
    let h = [("x-api-key", "sk-or-v1-test-user"), ("anthropic-version", "2023-06-01")];
    for path in ["/api/v1/messages", "/v1/messages", "/messages"] {
        let r = request(addr, "POST", path, &h, &b);
        assert_eq!((r.status, r.json()["type"].as_str()), (200, Some("message")), "{path}");
    }
}

#[test]
fn usage_variants_and_injected_errors() {
    let addr = spawn_in_background();
    let v = post_dialect(addr, PATH, &body("hi", 10), Some("no_usage=1")).json();
    assert!(v.get("usage").is_none());
    let v = post_dialect(addr, PATH, &body("hi", 10), Some("no_cost=1")).json();
    assert_eq!(v["usage"]["output_tokens"], 8);
    assert!(v["usage"].get("cost").is_none() && v["usage"].get("cost_details").is_none());
    // BYOK: 1 * 0.0000025 + 8 * 0.00001 = 0.0000825 upstream, a 5% fee charged.
    let text = post_dialect(addr, PATH, &body("hi", 10), Some("byok=1")).text();
    assert!(text.contains(r#""cost":0.000004125,"is_byok":true,"cost_details":{"upstream_inference_cost":0.0000825,"#), "{text}");

    for (status, kind) in [(429, "rate_limit_error"), (402, "billing_error"), (529, "overloaded_error"), (503, "overloaded_error")] {
        let r = post_dialect(addr, PATH, &body("hi", 10), Some(&format!("status={status}")));
        assert_eq!((r.status, r.json()["error"]["type"].as_str()), (status, Some(kind)));
        assert_eq!(r.header("retry-after"), (status == 429).then_some("1"));
    }
    let r = post_dialect(addr, PATH, &body("hi", 10), Some("drop_after=0"));
    assert!(!r.complete && r.body.is_empty());
}

#[test]
fn stream_events_in_order_with_usage_at_the_end() {
    let addr = spawn_in_background();
    let r = post_dialect(addr, PATH, &stream_body("hello world!", 100), Some("tokens=3"));
    assert_eq!((r.status, r.header("content-type")), (200, Some("text/event-stream")));
    assert!(r.complete);
    assert_eq!(r.events()[0], Event::Comment("OPENROUTER PROCESSING".into()));
    let ev = named_events(&r);
    assert_eq!(event_names(&ev), ["message_start", "content_block_start", "ping", "content_block_delta",
        "content_block_delta", "content_block_delta", "content_block_stop", "message_delta", "message_stop"]);
    assert!(ev.iter().all(|(name, data)| data["type"] == name.as_str()));
    let start = &ev[0].1["message"];
    let gen = r.header("x-generation-id").unwrap();
    assert_eq!((start["id"].as_str(), start["usage"]["input_tokens"].as_u64()), (Some(format!("msg_{gen}").as_str()), Some(3)));
    assert_eq!(start["content"], json!([]));
    assert_eq!(ev[1].1["content_block"], json!({ "type": "text", "text": "" }));
    for (i, (_, d)) in ev[3..6].iter().enumerate() {
        assert_eq!(d["delta"], json!({ "type": "text_delta", "text": format!("tok{i} ") }));
    }
    let delta = &ev[7].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 3);
    // 3 * 0.0000025 + 3 * 0.00001
    assert!(r.text().contains(r#""cost":0.0000375,"#), "{}", r.text());

    let ev = named_events(&post_dialect(addr, PATH, &stream_body("hi", 2), Some("tokens=5")));
    assert_eq!(ev.iter().filter(|(n, _)| n == "content_block_delta").count(), 2);
    assert_eq!(ev[ev.len() - 2].1["delta"]["stop_reason"], "max_tokens");

    let ev = named_events(&post_dialect(addr, PATH, &stream_body("hi", 9), Some("no_usage=1")));
    assert!(ev[0].1["message"].get("usage").is_none() && ev[ev.len() - 2].1.get("usage").is_none());
}

#[test]
fn stream_errors_and_drops_mid_answer() {
    let addr = spawn_in_background();
    let r = post_dialect(addr, PATH, &stream_body("hi", 100), Some("error_after=1"));
    assert!(r.complete, "an error event ends the stream cleanly");
    let ev = named_events(&r);
    assert_eq!(event_names(&ev)[3..], ["content_block_delta", "error"]);
    assert_eq!(ev[4].1, json!({ "type": "error", "error": { "type": "api_error", "message": mock_openrouter::faults::MID_STREAM_ERROR } }));

    let ev = named_events(&post_dialect(addr, PATH, &stream_body("hi", 100), Some("error_after=1,error_usage=1")));
    assert_eq!(event_names(&ev)[4..], ["message_delta", "error"]);
    assert_eq!((&ev[4].1["delta"]["stop_reason"], ev[4].1["usage"]["output_tokens"].as_u64()), (&Value::Null, Some(1)));

    let r = post_dialect(addr, PATH, &stream_body("hi", 100), Some("drop_after=2"));
    assert!(!r.complete, "no terminating chunk");
    let names = event_names(&named_events(&r)).join(",");
    assert_eq!(names, "message_start,content_block_start,ping,content_block_delta,content_block_delta");
}

#[test]
fn prompt_counts_system_blocks_tool_use_results_and_schemas() {
    let addr = spawn_in_background();
    let tools = json!([{ "name": "read_file", "input_schema": { "type": "object" } }]);
    let tools_bytes = tools.to_string().len() as u64;
    let b = json!({ "model": "openai/gpt-4o", "max_tokens": 10, "tools": tools,
        "system": [{ "type": "text", "text": "sys" }],
        "messages": [
            { "role": "user", "content": "read a.rs" },
            { "role": "assistant", "content": [{ "type": "text", "text": "ok" },
                { "type": "tool_use", "id": "t1", "name": "read_file", "input": { "path": "a.rs" } }] },
            { "role": "user", "content": [{ "type": "tool_result", "tool_use_id": "t1", "content": "fn main() {}" }] },
        ] });
    let texts = 3 + 9 + 2 + (9 + 15) + 12; // system, texts, the call's name and input, the result
    let v = post_dialect(addr, PATH, &b, None).json();
    assert_eq!(v["usage"]["input_tokens"], (texts + tools_bytes).div_ceil(4) + 346);
    // Four turns: the system prompt and three messages.
    let v = post_dialect(addr, PATH, &b, Some("bytes_per_token=1,message_tokens=16")).json();
    assert_eq!(v["usage"]["input_tokens"], texts + tools_bytes + 4 * 16 + 346);
}

#[test]
fn request_log_names_the_dialect_and_keeps_anthropic_headers() {
    let addr = spawn_in_background();
    let h = [("x-api-key", "sk-or-v1-test-user"), ("anthropic-version", "2023-06-01"), ("anthropic-beta", "tools-1")];
    request(addr, "POST", "/v1/messages?beta=true", &h, &body("needle-m", 5).to_string());
    chat(addr, &req("openai/gpt-4o", "needle-c"), None);
    get(addr, "/models", Some(USER));

    let m = recorded(addr, "dialect=messages");
    assert_eq!(m.len(), 1);
    assert_eq!((m[0]["path"].as_str(), m[0]["dialect"].as_str()), (Some("/v1/messages?beta=true"), Some("messages")));
    assert_eq!(m[0]["headers"], json!({ "x-api-key": "sk-or-v1-test-user", "anthropic-version": "2023-06-01", "anthropic-beta": "tools-1" }));
    assert!(m[0]["body"].as_str().unwrap().contains("needle-m"));
    assert_eq!(recorded(addr, "contains=needle-c")[0]["dialect"], "chat");
    assert_eq!(recorded(addr, "contains=models")[0]["dialect"], Value::Null);
    assert_eq!(recorded(addr, "contains=needle-c&dialect=messages").len(), 0);
}

#[test]
fn stream_keepalives_and_hidden_generation_header() {
    let addr = spawn_in_background();
    let r = post_dialect(addr, PATH, &stream_body("hi", 100), Some("tokens=2,keepalive=2,hide_generation=1"));
    assert_eq!(r.header("x-generation-id"), None);
    let comments = r.events().iter().filter(|e| matches!(e, Event::Comment(c) if c == "OPENROUTER PROCESSING")).count();
    assert_eq!(comments, 1 + 2 * 2);
    let id = named_events(&r)[0].1["message"]["id"].as_str().unwrap().to_string();
    let gen = id.strip_prefix("msg_").expect("the generation id behind the prefix");
    // The stream ends only once its generation is recorded.
    assert_eq!(get(addr, &format!("/generation?id={gen}"), Some(USER)).status, 200);
}
