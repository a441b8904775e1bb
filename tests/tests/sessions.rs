//! Supabase session verification through the real stack: the JWT matrix
//! (ES256/RS256 against the project's JWKS served over HTTP, legacy HS256),
//! first sight creates the user, suspended users are refused.

use dexto_shared::jwt::sign_hs256;
use dexto_shared::jwt_testing::{self as t, EC_KID, RSA_KID};
use integration_tests::{stack, Stack};
use serde_json::{json, Value};

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn claims(s: &Stack, sub: &str) -> Value {
    t::claims(sub, &format!("{sub}@example.com"), &s.issuer(), now() + 600)
}

fn keys_status(s: &Stack, token: &str) -> u16 {
    s.call("GET", "/api/keys", token, None).status
}

fn fresh_sub() -> String {
    format!("u-{}", dexto_shared::ids::new_id(""))
}

#[test]
fn valid_tokens_of_every_algorithm_are_accepted_and_create_the_user() {
    let s = stack();
    for token in [
        t::sign_es256(&claims(s, &fresh_sub()), EC_KID),
        t::sign_rs256(&claims(s, &fresh_sub()), RSA_KID),
        sign_hs256(&claims(s, &fresh_sub()), s.jwt_secret.as_bytes()),
    ] {
        let r = s.call("GET", "/api/keys", &token, None);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json(), json!({"success": true, "data": []}));
    }
    let sub = fresh_sub();
    assert_eq!(keys_status(s, &t::sign_es256(&claims(s, &sub), EC_KID)), 200);
    let user = s.user(&sub);
    assert_eq!(user["email"], format!("{sub}@example.com"));
    assert_eq!(user["balance_micros"], 0);
}

#[test]
fn invalid_tokens_are_401() {
    let s = stack();
    let sub = fresh_sub();
    let patched = |k: &str, v: Value| {
        let mut c = claims(s, &sub);
        c[k] = v;
        t::sign_es256(&c, EC_KID)
    };
    let good = t::sign_rs256(&claims(s, &sub), RSA_KID);
    let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
    let mut evil = claims(s, &sub);
    evil["sub"] = json!("someone-else");
    parts[1] = base64_url(&evil.to_string());
    let cases = vec![
        ("expired", patched("exp", json!(now() - 5))),
        ("wrong audience", patched("aud", json!("anon"))),
        ("wrong issuer", patched("iss", json!("https://evil.example/auth/v1"))),
        ("wrong role", patched("role", json!("service_role"))),
        ("no sub", patched("sub", json!(""))),
        ("alg none", t::unsigned(&json!({"alg": "none", "typ": "JWT"}), &claims(s, &sub))),
        ("alg confusion", sign_hs256(&claims(s, &sub), &t::rsa_public_der_like())),
        ("wrong HS secret", sign_hs256(&claims(s, &sub), b"not-the-secret")),
        ("unknown kid", t::sign_es256(&claims(s, &sub), "no-such-kid")),
        ("tampered payload", parts.join(".")),
        ("garbage", "not.a.jwt".into()),
    ];
    for (name, token) in cases {
        let r = s.call("GET", "/api/keys", &token, None);
        assert_eq!(r.status, 401, "{name}: {}", r.body);
        // Only a token that is ours in every other respect is told it expired.
        let code = if name == "expired" { "session_expired" } else { "invalid_api_key" };
        assert_eq!(r.json()["error"]["code"], code, "{name}: {}", r.body);
    }
    let r = integration_tests::get(&format!("{}/api/keys", s.base));
    assert_eq!(r.status, 401);
}

#[test]
fn a_rotated_signing_key_is_picked_up_by_refetching_the_jwks() {
    let s = stack();
    let sub = fresh_sub();
    // The project rotates: the same EC key now published under a new kid.
    let mut jwks = t::jwks();
    jwks["keys"][0]["kid"] = json!("rotated-ec");
    let put = integration_tests::client::send("PUT", &format!("{}/__mock/jwks", s.mock), &[], Some(jwks.to_string().as_bytes()));
    assert_eq!(put.status, 200);
    let r = s.call("GET", "/api/keys", &t::sign_es256(&claims(s, &sub), "rotated-ec"), None);
    let restore = integration_tests::client::send("PUT", &format!("{}/__mock/jwks", s.mock), &[], Some(t::jwks().to_string().as_bytes()));
    assert_eq!(restore.status, 200);
    assert_eq!(r.status, 200, "unknown kid triggers a JWKS refetch: {}", r.body);
}

#[test]
fn suspended_users_are_refused_everywhere() {
    let s = stack();
    let u = s.new_user("1");
    let token = s.session_token(&u.id, "x@example.com");
    assert_eq!(keys_status(s, &token), 200);
    assert_eq!(s.admin("PATCH", &format!("/admin/users/{}", u.id), Some(json!({"status": "suspended"}))).status, 200);
    let r = s.call("GET", "/api/keys", &token, None);
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "account_suspended");
    assert_eq!(s.call("GET", "/keys/validate", &u.key, None).json()["valid"], false);
    assert_eq!(s.chat(&u.key, &json!({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "x"}]})).status, 403);
}

fn base64_url(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}
