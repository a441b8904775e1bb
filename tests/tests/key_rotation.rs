//! Rotation never widens a key's rights: whichever path rotates a key (the key
//! itself, a session, the dashboard's per-key route), the replacement keeps
//! the name, scopes, expiry, allowed models, rate limit, spend caps and the
//! spending counted against them; and a key is replaced at most once, however
//! often or concurrently the rotation is asked for.

use integration_tests::{marker, Stack};
use serde_json::{json, Value};
use std::sync::{Arc, Barrier, OnceLock};

fn stack() -> &'static Stack {
    static S: OnceLock<Stack> = OnceLock::new();
    S.get_or_init(|| integration_tests::start(&[("KEY_CACHE_TTL_SECONDS", "0")]))
}

/// 20 µ$ per output token, free prompt; the mock produces exactly `tokens`.
fn spend(tokens: u32) -> Value {
    json!({"model": "mock/output-only", "max_tokens": tokens, "messages": [{"role": "user", "content": format!("[[mock:tokens={tokens}]]")}]})
}

/// A signed-in user with `usd` of credit and their session token.
fn user_with_credit(s: &Stack, usd: &str) -> (String, String) {
    let sub = marker("rot");
    let session = s.session_token(&sub, "r@example.com");
    assert_eq!(s.call("POST", "/api/provision", &session, Some(json!({}))).status, 200);
    s.credit(&sub, usd);
    (sub, session)
}

fn keys(s: &Stack, session: &str) -> Vec<Value> {
    s.call("GET", "/api/keys", session, None).json()["data"].as_array().unwrap().clone()
}

fn key_entry(s: &Stack, session: &str, id: &str) -> Value {
    keys(s, session).into_iter().find(|k| k["id"] == id).unwrap_or_else(|| panic!("no key {id}"))
}

#[test]
fn a_restricted_key_that_rotates_itself_stays_restricted() {
    let s = stack();
    let (_, session) = user_with_credit(s, "5");
    let expires = dexto_shared::time::rfc3339(integration_tests::now_ms() + 3_600_000);
    let created = s.call(
        "POST",
        "/api/keys",
        &session,
        Some(json!({"name": "ci", "expires_at": expires, "allowed_models": ["mock/output-only"], "rate_limit_per_minute": 50})),
    );
    assert_eq!(created.status, 200, "{}", created.body);
    let (old_key, old_id) = (created.json()["data"]["fullKey"].as_str().unwrap().to_string(), created.json()["data"]["id"].as_str().unwrap().to_string());
    // A lifetime cap of $0.03 on the key, $0.02 of it spent before the
    // rotation (mock/output-only: 1 000 tokens cost exactly $0.02).
    let cap = s.call("PUT", "/api/caps", &session, Some(json!({"scope": "key", "key_id": old_id, "window": "lifetime", "limit_usd": 0.03})));
    assert_eq!(cap.status, 200, "{}", cap.body);
    assert_eq!(s.chat(&old_key, &spend(1_000)).status, 200);
    let before = key_entry(s, &session, &old_id);

    let rotated = s.call("POST", "/keys/rotate", &old_key, None);
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let (new_key, new_id) = (rotated.json()["dextoApiKey"].as_str().unwrap().to_string(), rotated.json()["keyId"].as_str().unwrap().to_string());
    assert_eq!(s.chat(&old_key, &spend(1)).status, 401, "the old key stops at once");

    let after = key_entry(s, &session, &new_id);
    for field in ["name", "expiresAt", "allowedModels", "rateLimitPerMinute", "scopes"] {
        assert_eq!(after[field], before[field], "{field} carried over: {after}");
    }
    let refused = s.chat(&new_key, &json!({"model": "openai/gpt-4o-mini", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]}));
    assert_eq!(refused.status, 403, "{}", refused.body);

    // The cap moved with its spending: $0.01 is left, so another $0.02 call
    // is refused (a fresh count would allow it) and a $0.008 one is served.
    let capped = s.chat(&new_key, &spend(1_000));
    assert_eq!(capped.status, 403, "{}", capped.body);
    assert_eq!(capped.json()["error"]["code"], "spend_cap_reached");
    assert_eq!(s.chat(&new_key, &spend(400)).status, 200);
    let caps = s.call("GET", "/api/caps", &session, None).json();
    let moved = caps["caps"].as_array().unwrap().iter().find(|c| c["key_id"] == new_id.as_str()).cloned().expect("the new key's cap");
    assert_eq!((moved["limit_usd"].clone(), moved["spent_usd"].clone()), (json!(0.03), json!(0.028)), "{caps}");
}

#[test]
fn a_session_rotation_keeps_the_cli_keys_settings_too() {
    let s = stack();
    let (_, session) = user_with_credit(s, "1");
    let created = s.call("POST", "/api/keys", &session, Some(json!({"name": "Dexto CLI Key", "allowed_models": ["mock/output-only"]})));
    let old_id = created.json()["data"]["id"].as_str().unwrap().to_string();
    let other = s.call("POST", "/api/keys", &session, Some(json!({"name": "other"}))).json()["data"]["id"].as_str().unwrap().to_string();
    let rotated = s.call("POST", "/api/keys/rotate", &session, None);
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let new_id = rotated.json()["keyId"].as_str().unwrap().to_string();
    assert_eq!(key_entry(s, &session, &new_id)["allowedModels"], json!(["mock/output-only"]));
    assert_eq!(key_entry(s, &session, &old_id)["status"], "revoked");
    assert_eq!(key_entry(s, &session, &other)["status"], "active", "only the CLI's key is rotated");
}

#[test]
fn a_key_is_replaced_once_however_often_rotation_is_asked() {
    let s = stack();
    let (sub, session) = user_with_credit(s, "1");
    let created = s.call("POST", "/api/keys", &session, Some(json!({"name": "twice"})));
    let old_id = created.json()["data"]["id"].as_str().unwrap().to_string();
    let barrier = Arc::new(Barrier::new(4));
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (barrier, session, path) = (barrier.clone(), session.clone(), format!("/api/keys/{old_id}/rotate"));
                scope.spawn(move || {
                    barrier.wait();
                    let r = s.call("POST", &path, &session, None);
                    (r.status, r.json())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners: Vec<&Value> = answers.iter().filter(|(st, _)| *st == 200).map(|(_, b)| b).collect();
    assert_eq!(winners.len(), 1, "one replacement: {answers:?}");
    for (status, body) in answers.iter().filter(|(st, _)| *st != 200) {
        assert!(*status == 409 || *status == 404, "a losing rotation is refused, not a second key: {status} {body}");
    }
    let all = keys(s, &session);
    let active: Vec<&Value> = all.iter().filter(|k| k["isActive"] == true && k["name"] == "twice").collect();
    assert_eq!(active.len(), 1, "no orphan replacement: {all:?}");
    assert_eq!(active[0]["id"], winners[0]["data"]["id"]);
    let again = s.call("POST", &format!("/api/keys/{old_id}/rotate"), &session, None);
    assert_eq!(again.status, 404, "a rotated key is gone: {}", again.body);
    let created_rows = s.d1_until(
        &format!("SELECT COUNT(*) AS n FROM api_keys WHERE user_id = '{sub}' AND name = 'twice'"),
        |rows| !rows.is_empty(),
    );
    assert_eq!(created_rows[0]["n"], 2, "the old key and exactly one replacement exist in D1");
}

#[test]
fn an_exchange_still_open_on_a_rotated_key_counts_against_its_replacements_cap() {
    let s = stack();
    let (sub, session) = user_with_credit(s, "1");
    let created = s.call("POST", "/api/keys", &session, Some(json!({"name": "agent"})));
    let (old_key, old_id) = (created.json()["data"]["fullKey"].as_str().unwrap().to_string(), created.json()["data"]["id"].as_str().unwrap().to_string());
    let cap = s.call("PUT", "/api/caps", &session, Some(json!({"scope": "key", "key_id": old_id, "window": "lifetime", "limit_usd": 0.05})));
    assert_eq!(cap.status, 200, "{}", cap.body);
    // Held for 1 000 tokens ($0.02), 20 produced over 8 s ($0.0004): still
    // open when the rotation, a few requests on a loaded machine, is done.
    let body = json!({"model": "mock/output-only", "stream": true, "max_tokens": 1000, "messages": [{"role": "user", "content": "[[mock:tokens=20,chunk_delay_ms=400]]"}]});
    let auth = format!("Bearer {old_key}");
    let mut sse = integration_tests::SseReader::open(&format!("{}/v1/chat/completions", s.base), &[("Authorization", &auth), ("Content-Type", "application/json")], body.to_string().as_bytes());
    sse.next_event().expect("the stream has begun");
    let rotated = s.call("POST", &format!("/api/keys/{old_id}/rotate"), &session, None);
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let new_id = rotated.json()["data"]["id"].as_str().expect("the replacement's id").to_string();
    let new_cap = || {
        let caps = s.call("GET", "/api/caps", &session, None).json();
        caps["caps"].as_array().unwrap().iter().find(|c| c["key_id"] == new_id.as_str()).cloned().expect("the new key's cap")
    };
    assert_eq!(new_cap()["held_usd"], json!(0.02), "the old key's open hold is reserved against the new key's cap");
    let _ = sse.collect();
    s.settled_user(&sub, 1);
    let settled = new_cap();
    assert_eq!((settled["held_usd"].clone(), settled["spent_usd"].clone()), (json!(0.0), json!(0.0004)), "and spent there: {settled}");
}
