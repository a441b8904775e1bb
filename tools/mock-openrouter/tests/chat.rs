//! Chat completions against a live mock: exact usage/cost, streaming frame
//! order, and fault injection.

mod common;

use common::*;
use mock_openrouter::spawn_in_background;
use serde_json::{json, Value};
use std::io::Read;
use std::time::{Duration, Instant};

fn req(model: &str, content: &str) -> Value {
    json!({ "model": model, "messages": [{ "role": "user", "content": content }] })
}

fn stream_req(content: &str) -> Value {
    json!({ "model": "openai/gpt-4o", "stream": true, "messages": [{ "role": "user", "content": content }] })
}

fn data_frames(r: &Reply) -> Vec<Value> {
    r.events()
        .iter()
        .filter(|e| matches!(e, Event::Data(d) if d != "[DONE]"))
        .map(Event::json)
        .collect()
}

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
fn stream_frame_order() {
    let addr = spawn_in_background();
    let r = chat(addr, &stream_req("hello world!"), Some("tokens=3"));
    assert_eq!(r.status, 200);
    assert!(r.complete);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let gen = r.header("x-generation-id").unwrap().to_string();
    let ev = r.events();
    assert_eq!(ev[0], Event::Comment("OPENROUTER PROCESSING".into()));
    assert_eq!(ev.last().unwrap(), &Event::Data("[DONE]".into()));
    let frames = data_frames(&r);
    assert_eq!(frames.len(), 4, "3 content + 1 usage");
    for (i, f) in frames[..3].iter().enumerate() {
        assert_eq!(f["object"], "chat.completion.chunk");
        assert_eq!(f["id"], gen.as_str());
        assert_eq!(f["choices"][0]["delta"]["content"], format!("tok{i} "));
        assert!(f.get("usage").is_none());
    }
    assert_eq!(frames[0]["choices"][0]["delta"]["role"], "assistant");
    let last = &frames[3];
    assert_eq!(
        last["choices"].as_array().unwrap().len(),
        1,
        "OpenRouter-style usage frame"
    );
    assert_eq!(last["choices"][0]["delta"], json!({}));
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["usage"]["completion_tokens"], 3);
    // 3 * 0.0000025 + 3 * 0.00001
    assert!(r.text().contains(r#""cost":0.0000375,"#));
}

#[test]
fn stream_openai_usage_keepalive_and_no_usage() {
    let addr = spawn_in_background();
    let r = chat(
        addr,
        &stream_req("hi"),
        Some("tokens=2,openai_usage=1,keepalive=2"),
    );
    let comments = r
        .events()
        .iter()
        .filter(|e| matches!(e, Event::Comment(_)))
        .count();
    assert_eq!(comments, 1 + 2 * 2);
    let frames = data_frames(&r);
    assert_eq!(frames.len(), 4, "2 content + finish + usage");
    assert_eq!(frames[2]["choices"][0]["finish_reason"], "stop");
    assert_eq!(frames[3]["choices"], json!([]));
    assert_eq!(frames[3]["usage"]["completion_tokens"], 2);

    let r = chat(addr, &stream_req("hi [[mock:no_usage=1,tokens=1]]"), None);
    let frames = data_frames(&r);
    assert_eq!(frames.len(), 2);
    assert!(frames.iter().all(|f| f.get("usage").is_none()));
    assert_eq!(r.events().last().unwrap(), &Event::Data("[DONE]".into()));
}

#[test]
fn stream_error_after() {
    let addr = spawn_in_background();
    let r = chat(addr, &stream_req("hi"), Some("error_after=2"));
    assert!(r.complete, "ends cleanly");
    assert!(!r.text().contains("[DONE]"));
    let frames = data_frames(&r);
    assert_eq!(frames.len(), 3);
    let e = &frames[2];
    assert_eq!(
        e["error"],
        json!({ "code": 502, "message": "Upstream provider error" })
    );
    assert_eq!(e["choices"][0]["finish_reason"], "error");
    assert!(e.get("usage").is_none());

    let frames = data_frames(&chat(addr, &stream_req("hi"), Some("error_after=0")));
    assert_eq!(frames.len(), 1);
    assert!(frames[0]["error"].is_object());

    let frames = data_frames(&chat(
        addr,
        &stream_req("hi"),
        Some("error_after=1,error_usage=1"),
    ));
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[1]["usage"]["completion_tokens"], 1);
}

#[test]
fn stream_drop_after() {
    let addr = spawn_in_background();
    let r = chat(addr, &stream_req("hi"), Some("drop_after=2"));
    assert_eq!(r.status, 200);
    assert!(!r.complete, "no terminating chunk");
    let frames = data_frames(&r);
    assert_eq!(frames.len(), 2);
    assert!(!r.text().contains("[DONE]"));
}

#[test]
fn stream_frames_are_not_buffered() {
    let addr = spawn_in_background();
    let body = stream_req("hi").to_string();
    let t = Instant::now();
    let mut s = send(
        addr,
        "POST",
        "/api/v1/chat/completions",
        &[
            ("Authorization", USER),
            ("X-Mock-Fault", "tokens=2,chunk_delay_ms=500"),
        ],
        &body,
    );
    let (mut seen, mut buf, mut first) = (Vec::new(), [0u8; 4096], None);
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
        if first.is_none() && String::from_utf8_lossy(&seen).contains("tok0") {
            first = Some(t.elapsed());
        }
    }
    let total = t.elapsed();
    assert!(
        total >= Duration::from_millis(1000),
        "two delays: {total:?}"
    );
    assert!(
        first.unwrap() + Duration::from_millis(600) < total,
        "first {first:?} total {total:?}"
    );
}

#[test]
fn generation_record_after_cancelled_stream() {
    let addr = spawn_in_background();
    let mut s = send(
        addr,
        "POST",
        "/api/v1/chat/completions",
        &[
            ("Authorization", USER),
            ("X-Mock-Fault", "tokens=6,chunk_delay_ms=100"),
        ],
        &stream_req("hi").to_string(),
    );
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).into_owned();
    let gen = head
        .lines()
        .find_map(|l| l.strip_prefix("x-generation-id: "))
        .expect("generation header")
        .trim()
        .to_string();
    drop(s); // client goes away mid-stream

    let path = format!("/api/v1/generation?id={gen}");
    let deadline = Instant::now() + Duration::from_secs(5);
    let g = loop {
        let r = get(addr, &path, Some(USER));
        if r.status == 200 {
            break r.json();
        }
        assert!(
            Instant::now() < deadline,
            "no generation record: {}",
            r.text()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(g["data"]["id"], gen.as_str());
    assert_eq!(g["data"]["cancelled"], true);
    assert_eq!(g["data"]["streamed"], true);
    // Billed in full: 1 * 0.0000025 + 6 * 0.00001.
    assert_eq!(g["data"]["tokens_completion"], 6);
    assert_eq!(g["data"]["total_cost"].as_f64(), Some(0.0000625));

    assert_eq!(
        get(addr, "/generation?id=gen-unknown", Some(USER)).status,
        404
    );
}
