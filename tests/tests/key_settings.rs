//! Per-key settings: an expiry (refused after it, saying where to get a new key), the
//! models a key may call, and renaming — set at creation or with
//! `PATCH /api/keys/{id}`. This file's stack reads key settings fresh
//! (KEY_CACHE_TTL_SECONDS=0; production caches them for 30 s).

use integration_tests::{marker, Stack};
use serde_json::json;
use std::sync::OnceLock;

fn stack() -> &'static Stack {
    static S: OnceLock<Stack> = OnceLock::new();
    S.get_or_init(|| integration_tests::start(&[("KEY_CACHE_TTL_SECONDS", "0")]))
}

fn body(model: &str, m: &str) -> serde_json::Value {
    json!({"model": model, "max_tokens": 3, "messages": [{"role": "user", "content": m}]})
}

#[test]
fn a_key_limited_to_some_models_refuses_others_until_changed() {
    let s = stack();
    let sub = marker("models");
    let session = s.session_token(&sub, "m@example.com");
    assert_eq!(s.call("POST", "/api/provision", &session, Some(json!({}))).status, 200);
    s.credit(&sub, "1");
    let created = s.call("POST", "/api/keys", &session, Some(json!({"name": "mini only", "allowed_models": ["openai/gpt-4o-mini"]})));
    assert_eq!(created.status, 200, "{}", created.body);
    let (key, id) = (created.json()["data"]["fullKey"].as_str().unwrap().to_string(), created.json()["data"]["id"].as_str().unwrap().to_string());
    let m = marker("refused");
    assert_eq!(s.chat(&key, &body("openai/gpt-4o-mini", "ok")).status, 200);
    let refused = s.chat(&key, &body("openai/gpt-4o", &m));
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.json()["error"]["message"].as_str().unwrap().contains("may not use `openai/gpt-4o`"));
    // Its log line names who and what, as a served call's does.
    let request_id = refused.header("X-Dexto-Request-ID").expect("a request id").to_string();
    let line = s.log_line(&["chat.rejected", &request_id]);
    let line: serde_json::Value = serde_json::from_str(&line[line.find('{').unwrap()..]).unwrap();
    assert_eq!((line["user_id"].as_str(), line["key_id"].as_str(), line["model"].as_str()), (Some(sub.as_str()), Some(id.as_str()), Some("openai/gpt-4o")), "{line}");
    assert!(line["latency_ms"].is_i64(), "{line}");
    let mut fallback = body("openai/gpt-4o-mini", &m);
    fallback["models"] = json!(["openai/gpt-4o"]);
    assert_eq!(s.chat(&key, &fallback).status, 403, "fallbacks are checked too");
    assert_eq!(s.upstream_calls(&m), 0);

    let patched = s.call("PATCH", &format!("/api/keys/{id}"), &session, Some(json!({"name": "any model", "allowed_models": null})));
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!((patched.json()["data"]["name"].as_str(), patched.json()["data"]["allowedModels"].clone()), (Some("any model"), json!(null)));
    assert_eq!(s.chat(&key, &body("openai/gpt-4o", "now ok")).status, 200);
    let listed = s.call("GET", "/api/keys", &session, None).json();
    assert!(listed["data"].as_array().unwrap().iter().any(|k| k["id"] == id.as_str() && k["name"] == "any model"));

    let stranger = s.session_token(&marker("stranger"), "x@example.com");
    assert_eq!(s.call("PATCH", &format!("/api/keys/{id}"), &stranger, Some(json!({"name": "mine"}))).status, 404);
    assert_eq!(s.call("PATCH", &format!("/api/keys/{id}"), &session, Some(json!({"allowed_models": []}))).status, 400);
}

#[test]
fn an_expired_key_is_refused_saying_so() {
    let s = stack();
    let u = s.new_user("1");
    let soon = dexto_shared::time::rfc3339(integration_tests::now_ms() + 3_000);
    let k = s.admin("POST", &format!("/admin/users/{}/keys", u.id), Some(json!({"name": "short-lived", "expires_at": soon})));
    assert_eq!(k.status, 201, "{}", k.body);
    let key = k.json()["key"].as_str().unwrap().to_string();
    assert_eq!(s.chat(&key, &body("openai/gpt-4o-mini", "before")).status, 200);
    // Time has to pass for an expiry: wait it out (≈3 s).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let refused = loop {
        let r = s.chat(&key, &body("openai/gpt-4o-mini", "after"));
        if r.status != 200 || std::time::Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    };
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert_eq!(refused.json()["error"]["code"], "expired_api_key", "{}", refused.body);
    assert!(refused.json()["error"]["message"].as_str().unwrap().contains("/dashboard/keys"), "says where to get a new key: {}", refused.body);
    let valid = s.call("GET", "/api/keys/validate", &key, None);
    assert_eq!(valid.json()["valid"], false);
    let past = s.admin("POST", &format!("/admin/users/{}/keys", u.id), Some(json!({"name": "x", "expires_at": "2020-01-01T00:00:00Z"})));
    assert_eq!(past.status, 400, "an expiry must be in the future");
}

#[test]
fn a_key_with_its_own_rate_limit_is_throttled_alone() {
    let s = stack();
    let u = s.new_user("1");
    let limited = s.admin("POST", &format!("/admin/users/{}/keys", u.id), Some(json!({"name": "slow", "rate_limit_per_minute": 2})));
    assert_eq!(limited.status, 201, "{}", limited.body);
    let key = limited.json()["key"].as_str().unwrap().to_string();
    for _ in 0..2 {
        assert_eq!(s.chat(&key, &body("openai/gpt-4o-mini", "ok")).status, 200);
    }
    let refused = s.chat(&key, &body("openai/gpt-4o-mini", "too fast"));
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.json()["error"]["code"], "rate_limited");
    let wait: u64 = refused.header("Retry-After").unwrap().parse().unwrap();
    assert!((1..=30).contains(&wait), "one request every 30 s: {wait}");
    assert_eq!(refused.header("X-Dexto-RateLimit-Remaining"), Some("0"));
    assert_eq!(s.chat(&u.key, &body("openai/gpt-4o-mini", "other key")).status, 200, "the user's other key is not throttled");
}

#[test]
fn rotating_one_key_keeps_its_settings_and_caps_and_retires_the_old_secret() {
    // POST /api/keys/{id}/rotate (the dashboard's Rotate button).
    let s = stack();
    let sub = marker("rotate-one");
    let session = s.session_token(&sub, "r@example.com");
    let expires = "2099-01-01T00:00:00Z";
    let created = s.call("POST", "/api/keys", &session, Some(json!({"name": "ci", "allowed_models": ["openai/gpt-4o-mini"], "expires_at": expires, "rate_limit_per_minute": 7})));
    assert_eq!(created.status, 200, "{}", created.body);
    s.credit(&sub, "1");
    let (old_key, old_id) = (created.json()["data"]["fullKey"].as_str().unwrap().to_string(), created.json()["data"]["id"].as_str().unwrap().to_string());
    let cap = s.call("PUT", "/api/caps", &session, Some(json!({"scope": "key", "key_id": old_id, "window": "daily", "limit_usd": 0.5})));
    assert_eq!(cap.status, 200, "{}", cap.body);

    let rotated = s.call("POST", &format!("/api/keys/{old_id}/rotate"), &session, None);
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let data = rotated.json()["data"].clone();
    let (new_key, new_id) = (data["fullKey"].as_str().unwrap().to_string(), data["id"].as_str().unwrap().to_string());
    assert_ne!(new_id, old_id);
    assert_eq!((data["name"].as_str(), data["replaces"].as_str()), (Some("ci"), Some(old_id.as_str())));

    let keys = s.call("GET", "/api/keys", &session, None).json()["data"].as_array().unwrap().clone();
    let find = |id: &str| keys.iter().find(|k| k["id"] == id).unwrap().clone();
    assert_eq!(find(&old_id)["status"], "revoked");
    let new = find(&new_id);
    assert_eq!((new["status"].as_str(), new["allowedModels"].clone(), new["rateLimitPerMinute"].clone()), (Some("active"), json!(["openai/gpt-4o-mini"]), json!(7)));
    assert!(new["expiresAt"].as_i64().is_some(), "{new}");
    let caps = s.call("GET", "/api/caps", &session, None).json()["caps"].clone();
    assert!(caps.as_array().unwrap().iter().any(|c| c["key_id"] == new_id.as_str() && c["window"] == "daily" && c["limit_usd"] == json!(0.5)), "{caps}");

    assert_eq!(s.chat(&old_key, &body("openai/gpt-4o-mini", "old")).status, 401);
    assert_eq!(s.chat(&new_key, &body("openai/gpt-4o-mini", "new")).status, 200);
    assert_eq!(s.chat(&new_key, &body("openai/gpt-4o", "still limited")).status, 403);
    let other = s.session_token(&marker("other"), "o@example.com");
    assert_eq!(s.call("POST", &format!("/api/keys/{new_id}/rotate"), &other, None).status, 404, "not someone else's key");
}
