//! Bad requests are refused before any hold or upstream call: 400 with a clear
//! message, 413 for oversized bodies, 404 naming an unknown model.

use integration_tests::{marker, stack};
use serde_json::json;

#[test]
fn malformed_bodies_get_400_and_never_reach_upstream() {
    let s = stack();
    let u = s.new_user("1");
    let m = marker("bad");
    let msg = json!([{"role": "user", "content": m}]);
    let cases: Vec<(String, &str)> = vec![
        ("{not json".into(), "not valid JSON"),
        (json!({"messages": msg}).to_string(), "`model` is required"),
        (json!({"model": "openai/gpt-4o", "content": m}).to_string(), "`messages` is required"),
        (json!({"model": "openai/gpt-4o", "messages": []}).to_string(), "must not be empty"),
        (json!({"model": "openai/gpt-4o", "messages": msg, "max_tokens": 0}).to_string(), "max_tokens"),
        (json!({"model": "openai/gpt-4o", "messages": msg, "max_tokens": 5_000_000}).to_string(), "max_tokens"),
        (json!({"model": "openai/gpt-4o", "messages": msg, "max_completion_tokens": "lots"}).to_string(), "max_completion_tokens"),
        (json!({"model": "openai/gpt-4o", "messages": msg, "n": 50}).to_string(), "`n`"),
        (json!({"model": "openai/gpt-4o", "messages": [{"role": "wizard", "content": m}]}).to_string(), "unknown role"),
        (json!({"model": "openai/gpt-4o", "messages": msg, "stream": "yes"}).to_string(), "`stream`"),
    ];
    for (body, needle) in cases {
        let r = s.chat_raw(&u.key, body.as_bytes(), &[]);
        assert_eq!(r.status, 400, "{body} → {}", r.body);
        let e = &r.json()["error"];
        assert_eq!(e["type"], "invalid_request_error");
        assert!(e["message"].as_str().unwrap().contains(needle), "{body} → {}", r.body);
        assert!(r.header("X-Dexto-Request-ID").is_some());
    }
    assert_eq!(s.upstream_calls(&m), 0);
    let user = s.user(&u.id);
    assert_eq!((user["balance_micros"].as_i64(), user["open_holds"].clone()), (Some(1_000_000), json!([])));
}

#[test]
fn oversized_bodies_get_413() {
    let s = stack();
    let u = s.new_user("1");
    let m = marker("big");
    let big = format!("{m}{}", "x".repeat(4 * 1024 * 1024));
    let body = json!({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": big}]}).to_string();
    let r = s.chat_raw(&u.key, body.as_bytes(), &[]);
    assert_eq!(r.status, 413, "{}", &r.body[..r.body.len().min(300)]);
    assert_eq!(r.json()["error"]["code"], "payload_too_large");
    assert_eq!(s.upstream_calls(&m), 0);
}

#[test]
fn unknown_models_get_404_naming_the_model() {
    let s = stack();
    let u = s.new_user("1");
    let m = marker("nomodel");
    let r = s.chat(&u.key, &json!({"model": "acme/imaginary-9000", "messages": [{"role": "user", "content": m}]}));
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "model_not_found");
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("acme/imaginary-9000"));
    assert_eq!(s.upstream_calls(&m), 0);
}

#[test]
fn wrong_method_and_unknown_paths_use_the_envelope() {
    let s = stack();
    let r = integration_tests::get(&format!("{}/v1/chat/completions", s.base));
    assert_eq!(r.status, 405);
    assert_eq!(r.json()["error"]["code"], "method_not_allowed");
    let r = integration_tests::get(&format!("{}/nowhere", s.base));
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
}

#[test]
fn fallback_models_must_be_known_and_the_hold_covers_the_priciest() {
    let s = stack();
    let u = s.new_user("0.01");
    let m = marker("fallbacks");
    let msgs = json!([{"role": "user", "content": m}]);
    let unknown = s.chat(&u.key, &json!({"model": "openai/gpt-4o-mini", "models": ["acme/ghost"], "messages": msgs, "max_tokens": 10}));
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert!(unknown.json()["error"]["message"].as_str().unwrap().contains("acme/ghost"));
    // gpt-4o-mini alone fits in $0.01; with mock/expensive (30 µ$/token) as a
    // fallback the worst case (1000 × 30 µ$ = $0.03) does not.
    let cheap = json!({"model": "openai/gpt-4o-mini", "messages": msgs, "max_tokens": 1000});
    let with_fallback = json!({"model": "openai/gpt-4o-mini", "models": ["mock/expensive"], "messages": msgs, "max_tokens": 1000});
    assert_eq!(s.chat(&u.key, &with_fallback).status, 402);
    assert_eq!(s.upstream_calls(&m), 0);
    assert_eq!(s.chat(&u.key, &cheap).status, 200);
}

/// POST with a chunked body (no Content-Length): the size is only known by reading.
fn post_chunked(url: &str, auth: &str, body: Vec<u8>) -> (u16, String) {
    let mut reader = std::io::Cursor::new(body);
    let resp = integration_tests::client::agent()
        .post(url)
        .header("Authorization", auth)
        .header("Content-Type", "application/json")
        .send(ureq::SendBody::from_reader(&mut reader))
        .expect("chunked request");
    let status = resp.status().as_u16();
    (status, resp.into_body().read_to_string().unwrap_or_default())
}

#[test]
fn chunked_bodies_are_capped_while_read() {
    let s = stack();
    let u = s.new_user("1");
    let m = marker("chunked");
    let big = json!({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": format!("{m}{}", "x".repeat(4 * 1024 * 1024))}]});
    let (status, body) = post_chunked(&format!("{}/v1/chat/completions", s.base), &format!("Bearer {}", u.key), big.to_string().into_bytes());
    assert_eq!(status, 413, "{}", &body[..body.len().min(300)]);
    assert_eq!(s.upstream_calls(&m), 0);
    // Control-plane JSON bodies: 64 KiB.
    let session = s.session_token(&integration_tests::marker("u"), "big@example.com");
    let name = "n".repeat(70 * 1024);
    let (status, body) = post_chunked(&format!("{}/api/keys", s.base), &format!("Bearer {session}"), json!({"name": name}).to_string().into_bytes());
    assert_eq!(status, 413, "{body}");
    // A small chunked body is read as usual.
    let ok = json!({"model": "openai/gpt-4o", "max_tokens": 3, "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(post_chunked(&format!("{}/v1/chat/completions", s.base), &format!("Bearer {}", u.key), ok.to_string().into_bytes()).0, 200);
}
