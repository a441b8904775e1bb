//! The OpenAI Responses dialect (`/responses`) against a live mock: reply and
//! stream shapes, usage with and without cost, the `max_output_tokens`
//! ceiling, statelessness, faults, auth, and what the request log records.

mod common;

use common::*;
use mock_openrouter::spawn_in_background;
use serde_json::{json, Value};

const PATH: &str = "/api/v1/responses";

fn body(input: &str) -> Value {
    json!({ "model": "openai/gpt-4o", "input": input })
}

fn stream_body(input: &str) -> Value {
    json!({ "model": "openai/gpt-4o", "input": input, "stream": true })
}

#[test]
fn reply_shape_and_exact_usage_priced_like_chat() {
    let addr = spawn_in_background();
    let b = json!({ "model": "openai/gpt-4o", "instructions": "ab", "input": "hello world!", "store": true });
    let r = post_dialect(addr, PATH, &b, None);
    assert_priced_like_chat(addr, &r);
    let v = r.json();
    let gen = r.header("x-generation-id").unwrap();
    assert_eq!(v["id"], format!("resp_{gen}"));
    assert_eq!((v["object"].as_str(), v["status"].as_str()), (Some("response"), Some("completed")));
    assert_eq!((&v["error"], &v["incomplete_details"]), (&Value::Null, &Value::Null));
    assert_eq!(v["store"], false, "stateless: nothing is stored");
    let out = &v["output"][0];
    assert_eq!((out["type"].as_str(), out["role"].as_str(), out["status"].as_str()), (Some("message"), Some("assistant"), Some("completed")));
    assert_eq!(out["content"], json!([{ "type": "output_text", "text": "tok0 tok1 tok2 tok3 tok4 tok5 tok6 tok7 ", "annotations": [] }]));
    let u = &v["usage"];
    assert_eq!(u["total_tokens"], 12);
    assert_eq!((&u["input_tokens_details"], &u["output_tokens_details"]), (&json!({ "cached_tokens": 0 }), &json!({ "reasoning_tokens": 0 })));
}

#[test]
fn max_output_tokens_is_the_ceiling() {
    let addr = spawn_in_background();
    let mut b = body("hi [[mock:tokens=50]]");
    b["max_output_tokens"] = json!(3);
    let v = post_dialect(addr, PATH, &b, None).json();
    assert_eq!((v["status"].as_str(), v["usage"]["output_tokens"].as_u64()), (Some("incomplete"), Some(3)));
    assert_eq!(v["incomplete_details"], json!({ "reason": "max_output_tokens" }));
    assert_eq!(v["output"][0]["content"][0]["text"], "tok0 tok1 tok2 ");
    let v = post_dialect(addr, PATH, &b, Some("ignore_max=1")).json();
    assert_eq!((v["status"].as_str(), v["usage"]["output_tokens"].as_u64()), (Some("completed"), Some(50)));
}

#[test]
fn stateless_auth_and_errors_in_the_responses_envelope() {
    let addr = spawn_in_background();
    let mut b = body("hi");
    b["previous_response_id"] = json!("resp_earlier");
    let r = post_dialect(addr, PATH, &b, None);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "invalid_prompt");
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("previous_response_id"));

    let r = request(addr, "POST", PATH, &[("x-api-key", "sk-or-v1-test-user")], &body("hi").to_string());
    assert_eq!(r.status, 401, "a bearer key only");
    assert_eq!(r.json(), json!({ "error": { "code": "server_error", "message": "No auth credentials found" }, "metadata": null }));
    for path in ["/v1/responses", "/responses"] {
        assert_eq!(post_dialect(addr, path, &body("hi"), None).json()["object"], "response", "{path}");
    }
    let r = post_dialect(addr, PATH, &json!({ "model": "nope/model", "input": "hi" }), None);
    assert_eq!((r.status, r.json()["error"]["message"].as_str()), (400, Some("nope/model is not a valid model ID")));

    let r = post_dialect(addr, PATH, &body("hi"), Some("status=429"));
    assert_eq!((r.status, r.header("retry-after")), (429, Some("1")));
    assert_eq!(r.json()["error"]["code"], "rate_limit_exceeded");
    let r = post_dialect(addr, PATH, &body("hi"), Some("status=503"));
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (503, Some("server_error")));
    assert_eq!(r.json()["metadata"]["provider_name"], "Mock");
    let r = post_dialect(addr, PATH, &body("hi"), Some("status=402,reason=in_flight_budget"));
    assert_eq!((r.status, r.header("retry-after")), (402, Some("1")));
    assert_eq!(r.json()["metadata"]["reason"], "in_flight_budget");
}

#[test]
fn usage_variants() {
    let addr = spawn_in_background();
    assert!(post_dialect(addr, PATH, &body("hi"), Some("no_usage=1")).json().get("usage").is_none());
    let v = post_dialect(addr, PATH, &body("hi"), Some("no_cost=1")).json();
    assert_eq!(v["usage"]["total_tokens"], 9);
    assert!(v["usage"].get("cost").is_none() && v["usage"].get("cost_details").is_none());
    // BYOK: 1 * 0.0000025 + 8 * 0.00001 = 0.0000825 upstream, a 5% fee charged.
    let text = post_dialect(addr, PATH, &body("hi"), Some("byok=1")).text();
    assert!(text.contains(r#""cost":0.000004125,"is_byok":true,"cost_details":{"upstream_inference_cost":0.0000825,"#), "{text}");
    let r = post_dialect(addr, PATH, &body("hi"), Some("drop_after=0"));
    assert!(!r.complete && r.body.is_empty());
}

#[test]
fn stream_events_numbered_in_order_with_usage_at_the_end() {
    let addr = spawn_in_background();
    let r = post_dialect(addr, PATH, &stream_body("hello world!"), Some("tokens=2"));
    assert_eq!((r.status, r.header("content-type")), (200, Some("text/event-stream")));
    assert!(r.complete);
    let ev = named_events(&r);
    assert_eq!(event_names(&ev), ["response.created", "response.in_progress", "response.output_item.added",
        "response.content_part.added", "response.output_text.delta", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"]);
    for (seq, (name, data)) in ev.iter().enumerate() {
        assert_eq!((data["type"].as_str(), data["sequence_number"].as_u64()), (Some(name.as_str()), Some(seq as u64)));
    }
    let gen = r.header("x-generation-id").unwrap();
    assert_eq!(ev[0].1["response"]["id"], format!("resp_{gen}"));
    assert_eq!((ev[0].1["response"]["status"].as_str(), &ev[0].1["response"]["output"]), (Some("in_progress"), &json!([])));
    assert_eq!((ev[4].1["delta"].as_str(), ev[5].1["delta"].as_str()), (Some("tok0 "), Some("tok1 ")));
    assert_eq!(ev[6].1["text"], "tok0 tok1 ");
    let done = &ev[9].1["response"];
    assert_eq!((done["status"].as_str(), done["usage"]["output_tokens"].as_u64()), (Some("completed"), Some(2)));
    assert_eq!(done["output"][0]["content"][0]["text"], "tok0 tok1 ");
    // 3 * 0.0000025 + 2 * 0.00001
    assert!(r.text().contains(r#""cost":0.0000275,"#), "{}", r.text());

    let mut capped = stream_body("hi");
    capped["max_output_tokens"] = json!(1);
    let ev = named_events(&post_dialect(addr, PATH, &capped, None));
    let (name, last) = ev.last().unwrap();
    assert_eq!((name.as_str(), last["response"]["status"].as_str()), ("response.incomplete", Some("incomplete")));
    assert_eq!(last["response"]["usage"]["output_tokens"], 1);
}

#[test]
fn stream_fails_or_drops_mid_answer() {
    let addr = spawn_in_background();
    let r = post_dialect(addr, PATH, &stream_body("hi"), Some("error_after=1"));
    assert!(r.complete, "a failed event ends the stream cleanly");
    let ev = named_events(&r);
    assert_eq!(event_names(&ev)[4..], ["response.output_text.delta", "response.failed"]);
    let failed = &ev[5].1;
    assert_eq!(failed["sequence_number"], 5);
    assert_eq!(failed["response"]["status"], "failed");
    assert_eq!(failed["response"]["error"], json!({ "code": "server_error", "message": mock_openrouter::faults::MID_STREAM_ERROR }));
    assert!(failed["response"].get("usage").is_none());
    let ev = named_events(&post_dialect(addr, PATH, &stream_body("hi"), Some("error_after=1,error_usage=1")));
    assert_eq!(ev.last().unwrap().1["response"]["usage"]["output_tokens"], 1);

    let r = post_dialect(addr, PATH, &stream_body("hi"), Some("drop_after=2"));
    assert!(!r.complete, "no terminating chunk");
    let ev = named_events(&r);
    assert_eq!(ev.iter().filter(|(n, _)| n == "response.output_text.delta").count(), 2);
    assert!(ev.iter().all(|(n, _)| n != "response.completed"));
}

#[test]
fn prompt_counts_instructions_items_calls_and_schemas() {
    let addr = spawn_in_background();
    let tools = json!([{ "type": "function", "name": "read_file", "parameters": { "type": "object" } }]);
    let tools_bytes = tools.to_string().len() as u64;
    let b = json!({ "model": "openai/gpt-4o", "tools": tools, "instructions": "sys", "input": [
        { "type": "message", "role": "user", "content": [{ "type": "input_text", "text": "read a.rs" }] },
        { "type": "function_call", "call_id": "c1", "name": "read_file", "arguments": "{\"path\":\"a.rs\"}" },
        { "type": "function_call_output", "call_id": "c1", "output": "fn main() {}" },
        { "role": "assistant", "content": "ok" },
    ] });
    let texts = 3 + 9 + (9 + 15) + 12 + 2; // instructions, text, the call's name and arguments, its output, a reply
    let v = post_dialect(addr, PATH, &b, None).json();
    assert_eq!(v["usage"]["input_tokens"], (texts + tools_bytes).div_ceil(4) + 346);
    // Five turns: the instructions and four items.
    let v = post_dialect(addr, PATH, &b, Some("bytes_per_token=1,message_tokens=16")).json();
    assert_eq!(v["usage"]["input_tokens"], texts + tools_bytes + 5 * 16 + 346);
}

#[test]
fn request_log_names_the_dialect() {
    let addr = spawn_in_background();
    post_dialect(addr, "/v1/responses", &body("needle-r"), None);
    let r = recorded(addr, "dialect=responses");
    assert_eq!(r.len(), 1);
    assert_eq!((r[0]["path"].as_str(), r[0]["authorization"].as_str()), (Some("/v1/responses"), Some(USER)));
    assert!(r[0]["body"].as_str().unwrap().contains("needle-r"));
    assert_eq!(r[0]["headers"], json!({}));
}
