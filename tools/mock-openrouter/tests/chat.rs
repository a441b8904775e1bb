//! Non-streaming chat completions against a live mock: exact usage/cost,
//! token counting, errors and faults.

mod common;

use common::*;
use mock_openrouter::spawn_in_background;
use serde_json::json;
use std::time::{Duration, Instant};

#[test]
fn non_stream_usage_and_cost_are_exact() {
    let addr = spawn_in_background();
    // "hello world!" = 12 bytes -> 3 prompt tokens; 8 completion tokens.
    // 3 * 0.0000025 + 8 * 0.00001 = 0.0000075 + 0.00008
    let r = chat(addr, &req("openai/gpt-4o", "hello world!"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    assert!(
        text.contains(r#""cost":0.0000875,"#),
        "exact decimal, no float noise: {text}"
    );
    assert!(
        text.contains(r#""upstream_inference_prompt_cost":0.0000075,"#),
        "{text}"
    );
    assert!(
        text.contains(r#""upstream_inference_completions_cost":0.00008}"#),
        "{text}"
    );
    let v = r.json();
    let gen = r.header("x-generation-id").unwrap();
    assert!(gen.starts_with("gen-"));
    assert_eq!(v["id"], gen);
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "openai/gpt-4o");
    assert_eq!(v["provider"], "Mock");
    let c = &v["choices"][0];
    assert_eq!(c["message"]["role"], "assistant");
    assert_eq!(
        c["message"]["content"],
        "tok0 tok1 tok2 tok3 tok4 tok5 tok6 tok7 "
    );
    assert_eq!(c["finish_reason"], "stop");
    let u = &v["usage"];
    assert_eq!(u["prompt_tokens"], 3);
    assert_eq!(u["completion_tokens"], 8);
    assert_eq!(u["total_tokens"], 11);
    assert_eq!(u["is_byok"], false);
    assert_eq!(
        u["prompt_tokens_details"],
        json!({ "cached_tokens": 0, "cache_write_tokens": 0 })
    );
    assert_eq!(
        u["completion_tokens_details"],
        json!({ "reasoning_tokens": 0 })
    );
    assert_eq!(u["cost_details"]["upstream_inference_cost"], u["cost"]);
}

#[test]
fn token_counting_caps_and_markers() {
    let addr = spawn_in_background();
    // Text parts count; the marker's own bytes count too: 2 + 5 + 18 = 25 bytes -> 7 tokens.
    let body = json!({
        "model": "mock/expensive",
        "max_tokens": 3,
        "messages": [
            { "role": "system", "content": "ab" },
            { "role": "user", "content": [
                { "type": "text", "text": "hello" },
                { "type": "image_url", "image_url": { "url": "x" } },
                { "type": "text", "text": "[[mock:tokens=50]]" },
            ]},
        ],
    });
    let v = chat(addr, &body, None).json();
    assert_eq!(v["usage"]["prompt_tokens"], 7);
    // tokens=50 capped by max_tokens=3 -> finish_reason "length".
    assert_eq!(v["usage"]["completion_tokens"], 3);
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    // 7 * 0.00001 + 3 * 0.00003
    assert!(chat(addr, &body, None)
        .text()
        .contains(r#""cost":0.00016,"#));

    // max_completion_tokens wins over max_tokens; below 8 it caps the default.
    let body = json!({ "model": "openai/gpt-4o-mini", "max_completion_tokens": 2, "max_tokens": 100,
        "messages": [{ "role": "user", "content": "" }] });
    let v = chat(addr, &body, None).json();
    assert_eq!(v["usage"]["prompt_tokens"], 1, "minimum one prompt token");
    assert_eq!(v["usage"]["completion_tokens"], 2);
    assert_eq!(v["choices"][0]["message"]["content"], "tok0 tok1 ");

    // Free model costs exactly 0.
    let r = chat(addr, &req("qwen/qwen3-coder:free", "x"), Some("tokens=20"));
    assert!(r.text().contains(r#""cost":0,"#), "{}", r.text());
    assert_eq!(r.json()["usage"]["completion_tokens"], 20);
}

#[test]
fn auth_and_validation_errors() {
    let addr = spawn_in_background();
    let r = request(
        addr,
        "POST",
        "/chat/completions",
        &[],
        &req("openai/gpt-4o", "hi").to_string(),
    );
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json(),
        json!({ "error": { "code": 401, "message": "No auth credentials found" } })
    );
    assert!(r.header("x-generation-id").is_some());

    let r = chat(addr, &req("nope/model", "hi"), None);
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({ "error": { "code": 400, "message": "nope/model is not a valid model ID" } })
    );

    // Root-mounted route works as well as /api/v1.
    let r = request(
        addr,
        "POST",
        "/chat/completions",
        &[("Authorization", USER)],
        &req("openai/gpt-4o", "hi").to_string(),
    );
    assert_eq!(r.status, 200);
}

#[test]
fn injected_status_errors() {
    let addr = spawn_in_background();
    let r = chat(addr, &req("openai/gpt-4o", "hi"), Some("status=503"));
    assert_eq!(r.status, 503);
    let v = r.json();
    assert_eq!(v["error"]["code"], 503);
    assert!(v["error"]["message"].is_string() && v["error"]["metadata"].is_object());
    assert!(v.get("usage").is_none());

    // Marker form, in message text.
    let r = chat(addr, &req("openai/gpt-4o", "hi [[mock:status=402]]"), None);
    assert_eq!(r.status, 402);
    assert_eq!(
        r.json()["error"]["message"],
        "Insufficient credits. Add more using https://openrouter.ai/credits"
    );
    assert_eq!(r.header("retry-after"), None);

    let r = chat(
        addr,
        &req("openai/gpt-4o", "hi"),
        Some("status=402,reason=in_flight_budget"),
    );
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.json()["error"]["metadata"]["reason"], "in_flight_budget");

    let r = chat(addr, &req("openai/gpt-4o", "hi"), Some("status=429"));
    assert_eq!((r.status, r.header("retry-after")), (429, Some("1")));

    let t = Instant::now();
    let r = chat(
        addr,
        &req("openai/gpt-4o", "hi"),
        Some("delay_ms=300,bogus=7"),
    );
    assert_eq!(r.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
}

#[test]
fn usage_variants() {
    let addr = spawn_in_background();
    let v = chat(addr, &req("openai/gpt-4o", "hi"), Some("no_usage=1")).json();
    assert!(v.get("usage").is_none());

    let v = chat(addr, &req("openai/gpt-4o", "hi"), Some("no_cost=1")).json();
    assert_eq!(v["usage"]["total_tokens"], 9);
    assert!(v["usage"].get("cost").is_none() && v["usage"].get("cost_details").is_none());

    // BYOK: 1 * 0.0000025 + 8 * 0.00001 = 0.0000825 upstream, 5% fee.
    let r = chat(addr, &req("openai/gpt-4o", "hi"), Some("byok=1"));
    let text = r.text();
    assert!(
        text.contains(r#""cost":0.000004125,"is_byok":true"#),
        "{text}"
    );
    assert!(
        text.contains(r#""upstream_inference_cost":0.0000825,"#),
        "{text}"
    );
}

#[test]
fn non_stream_drop_gives_incomplete_reply() {
    let addr = spawn_in_background();
    let r = chat(addr, &req("openai/gpt-4o", "hi"), Some("drop_after=0"));
    assert!(!r.complete, "status {} body {:?}", r.status, r.text());
    assert!(r.body.is_empty());
}

#[test]
fn non_stream_error_after_is_a_200_with_the_error_in_the_body() {
    let addr = spawn_in_background();
    let r = chat(addr, &req("openai/gpt-4o", "hi"), Some("error_after=1,error_usage=1"));
    assert_eq!(r.status, 200, "the model had started: {:?}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!((&v["error"]["code"], &v["error"]["message"]), (&json!(502), &json!(mock_openrouter::faults::MID_STREAM_ERROR)));
    assert!(v["error"]["metadata"]["provider_name"].is_string(), "{v}");
    assert_eq!((&v["choices"][0]["finish_reason"], &v["usage"]["completion_tokens"]), (&json!("error"), &json!(1)));
}

#[test]
fn token_counting_covers_tool_schemas_and_tool_calls() {
    let addr = spawn_in_background();
    let tools = json!([{ "type": "function", "function": { "name": "read_file", "parameters": { "type": "object" } } }]);
    let tools_bytes = tools.to_string().len() as u64;
    let messages = json!([
        { "role": "user", "content": "read a.rs" },
        { "role": "assistant", "content": null, "tool_calls": [{ "id": "c1", "type": "function", "function": { "name": "read_file", "arguments": "{\"path\":\"a.rs\"}" } }] },
        { "role": "tool", "tool_call_id": "c1", "content": "fn main() {}" },
    ]);
    let texts = 9 + (9 + 15) + 12; // contents, the call's name and arguments, the result
    let body = json!({ "model": "openai/gpt-4o", "tools": tools, "messages": messages });
    let v = chat(addr, &body, None).json();
    // ~4 bytes a token over everything the model reads, plus the tool-use preamble.
    assert_eq!(v["usage"]["prompt_tokens"], (texts + tools_bytes).div_ceil(4) + 346);
    // A test can force the worst ratio and a heavier template.
    let v = chat(addr, &body, Some("bytes_per_token=1,message_tokens=16")).json();
    assert_eq!(v["usage"]["prompt_tokens"], texts + tools_bytes + 3 * 16 + 346);
}
