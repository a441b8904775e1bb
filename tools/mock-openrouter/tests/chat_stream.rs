//! Streaming chat completions against a live mock: frame order, usage frame
//! variants, keep-alives, mid-stream errors, drops, and unbuffered delivery.

mod common;

use common::*;
use mock_openrouter::spawn_in_background;
use serde_json::json;
use std::io::Read;
use std::time::{Duration, Instant};

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
        json!({ "code": 502, "message": mock_openrouter::faults::MID_STREAM_ERROR,
                "metadata": { "provider_name": "MockProvider", "raw": "{\"detail\":\"worker 10.0.0.7 crashed\"}" } })
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

#[test]
fn image_bytes_make_one_large_event_and_no_content_a_bodiless_reply() {
    let addr = spawn_in_background();
    let body = json!({ "model": "openai/gpt-4o", "stream": true, "messages": [{ "role": "user", "content": "draw" }] });
    let r = chat(addr, &body, Some("image_bytes=3145728,tokens=2"));
    assert_eq!(r.status, 200);
    let contents: Vec<usize> = r
        .events()
        .iter()
        .filter(|e| matches!(e, Event::Data(d) if d != "[DONE]"))
        .filter_map(|e| e.json().pointer("/choices/0/delta/content").and_then(|c| c.as_str()).map(str::len))
        .collect();
    assert_eq!(contents, vec![3_145_728, 5], "the image in the first content event, whole");
    let r = chat(addr, &body, Some("no_content=1"));
    assert_eq!((r.status, r.body.len()), (204, 0));
}
