//! API-key authentication on the data plane: 401 for missing, malformed,
//! unknown and revoked keys (revocation effective on the very next request even
//! though the key is cached), 403 for a suspended user; none reach upstream.

use integration_tests::{marker, stack};
use serde_json::json;

fn body(m: &str) -> Vec<u8> {
    json!({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": m}], "max_tokens": 2}).to_string().into_bytes()
}

fn assert_envelope(r: &integration_tests::HttpResponse, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    let e = &r.json()["error"];
    assert_eq!(e["code"], code, "{}", r.body);
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(e["type"].is_string());
}

#[test]
fn missing_malformed_and_unknown_keys_are_refused() {
    let s = stack();
    let m = marker("auth");
    let url = format!("{}/v1/chat/completions", s.base);
    // No key at all: this stack takes x402, so the answer is its offer (a
    // 402 whose message names the API key first); a wrong key stays a 401.
    let no_auth = integration_tests::post(&url, &[], &body(&m));
    assert_eq!((no_auth.status, no_auth.header("X-Dexto-Error-Code")), (402, Some("x402_payment_required")), "{}", no_auth.body);
    assert!(no_auth.json()["error"].as_str().is_some_and(|e| e.contains("DEXTO_API_KEY")), "{}", no_auth.body);
    for bad in ["Bearer ", "Basic abc", "Bearer not-a-key", "Bearer dxk_1234", &format!("Bearer dxk_{}", "a".repeat(64))] {
        let r = integration_tests::post(&url, &[("Authorization", bad)], &body(&m));
        let expected = if bad == "Bearer " || bad.starts_with("Basic") { "missing_api_key" } else { "invalid_api_key" };
        assert_envelope(&r, 401, expected);
    }
    assert_eq!(s.upstream_calls(&m), 0);
}

#[test]
fn revocation_takes_effect_on_the_next_request() {
    let s = stack();
    let u = s.new_user("1");
    let m = marker("revoke");
    assert_eq!(s.chat_raw(&u.key, &body(&m), &[]).status, 200, "key works (and is now cached)");
    let r = s.admin("POST", &format!("/admin/keys/{}/revoke", u.key_id), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let refused = s.chat_raw(&u.key, &body(&m), &[]);
    assert_envelope(&refused, 401, "invalid_api_key");
    assert_eq!(s.upstream_calls(&m), 1, "the revoked call never reached upstream");
    let user = s.settled_user(&u.id, 1);
    assert_eq!(user["open_holds"], json!([]));
}

#[test]
fn a_key_revoked_before_first_use_is_refused() {
    let s = stack();
    let u = s.new_user("1");
    assert_eq!(s.admin("POST", &format!("/admin/keys/{}/revoke", u.key_id), None).status, 200);
    assert_envelope(&s.chat_raw(&u.key, &body("x"), &[]), 401, "invalid_api_key");
}

#[test]
fn a_suspended_user_is_forbidden() {
    let s = stack();
    let u = s.new_user("1");
    let r = s.admin("PATCH", &format!("/admin/users/{}", u.id), Some(json!({"status": "suspended"})));
    assert_eq!(r.status, 200, "{}", r.body);
    let m = marker("suspended");
    assert_envelope(&s.chat_raw(&u.key, &body(&m), &[]), 403, "account_suspended");
    assert_eq!(s.upstream_calls(&m), 0);
    assert_eq!(s.admin("PATCH", &format!("/admin/users/{}", u.id), Some(json!({"status": "active"}))).status, 200);
    assert_eq!(s.chat_raw(&u.key, &body(&m), &[]).status, 200, "reactivated");
}

#[test]
fn admin_api_requires_the_admin_token() {
    let s = stack();
    let r = integration_tests::post(&format!("{}/admin/users", s.base), &[("Authorization", "Bearer wrong-token-wrong-token")], b"{}");
    assert_envelope(&r, 401, "invalid_api_key");
    let r = integration_tests::post(&format!("{}/admin/users", s.base), &[], b"{}");
    assert_envelope(&r, 401, "missing_api_key");
}
