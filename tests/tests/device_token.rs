//! What a 1.6.9–1.7.x CLI's device login yields: a short-lived device token
//! that provisions the CLI's key once and reads balance and usage — 403 on
//! everything else — and the `key.create` audit row of every path that
//! creates a key. Polls are 1 s apart (`DEVICE_POLL_INTERVAL_SECONDS=1`).

use integration_tests::device::{begin, decide, fresh_sub, poll_new, poll_old, wait_interval, FAMILIES};
use integration_tests::{start, HttpResponse, Stack};
use serde_json::{json, Value};
use std::sync::OnceLock;

fn main_stack() -> &'static Stack {
    static S: OnceLock<Stack> = OnceLock::new();
    S.get_or_init(|| start(&[("DEVICE_POLL_INTERVAL_SECONDS", "1")]))
}

/// An RFC 8628-generation login approved by `sub`: the poll's Supabase-style answer.
fn old_generation_login(s: &Stack, family: &str, sub: &str) -> Value {
    let started = begin(s, family);
    let pending = poll_old(s, family, &started);
    assert_eq!((pending.status, pending.json()["error"].as_str()), (400, Some("authorization_pending")));
    assert_eq!(decide(s, "approve", &s.session_token(sub, "old@example.com"), &started["user_code"]).status, 200);
    wait_interval();
    let r = poll_old(s, family, &started);
    assert_eq!(r.status, 200, "{}", r.body);
    wait_interval();
    let again = poll_old(s, family, &started);
    assert_eq!((again.status, again.json()["error"].as_str()), (400, Some("invalid_grant")), "single use");
    r.json()
}

fn key_names(s: &Stack, token: &str) -> Vec<String> {
    let r = s.call("GET", "/api/keys", token, None);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["data"].as_array().unwrap().iter().filter(|k| k["status"] == "active").map(|k| k["name"].as_str().unwrap().to_string()).collect()
}

#[test]
fn old_generation_gets_a_short_device_token_that_provisions_the_cli_key_once() {
    let s = main_stack();
    for family in FAMILIES {
        let sub = fresh_sub();
        let b = old_generation_login(s, family, &sub);
        assert!(b.get("error").is_none());
        assert_eq!((&b["token_type"], &b["expires_in"], &b["user"]["id"]), (&json!("bearer"), &json!(600), &json!(sub)), "{b}");
        assert!(b["refresh_token"].is_null(), "nothing to refresh into a session");
        let token = b["access_token"].as_str().unwrap();
        assert!(token.starts_with("dxd_") && !token.contains('.'), "a device token, not a JWT: {token}");

        // What 1.6.11–1.7.x do next: list, delete the old CLI key, create one.
        assert_eq!(key_names(s, token), Vec::<String>::new());
        let provisioned = s.call("POST", "/api/keys", token, Some(json!({"name": "Dexto CLI Key"})));
        assert_eq!(provisioned.status, 200, "{}", provisioned.body);
        let key = provisioned.json()["data"]["fullKey"].as_str().unwrap().to_string();
        assert_eq!(s.call("GET", "/keys/validate", &key, None).json()["valid"], true);
        // One key per login.
        let second = s.call("POST", "/api/keys", token, Some(json!({"name": "Dexto CLI Key"})));
        assert_eq!(second.status, 403, "{}", second.body);
        assert!(second.json()["error"]["message"].as_str().unwrap().contains("dexto login"), "{}", second.body);
    }
}

#[test]
fn the_device_token_reads_balance_and_usage_and_nothing_else() {
    let s = main_stack();
    let sub = fresh_sub();
    let session = s.session_token(&sub, "old@example.com");
    // The user's own key of another name: a device token neither sees nor touches it.
    let laptop = s.call("POST", "/api/keys", &session, Some(json!({"name": "laptop"})));
    assert_eq!(laptop.status, 200, "{}", laptop.body);
    let laptop_id = laptop.json()["data"]["id"].as_str().unwrap().to_string();
    let token = old_generation_login(s, "/api/auth/device", &sub)["access_token"].as_str().unwrap().to_string();

    let balance = s.call("GET", "/api/billing/balance", &token, None);
    assert_eq!((balance.status, balance.json()["credits_usd"].as_f64()), (200, Some(0.0)), "{}", balance.body);
    for path in ["/me/usage", "/api/account/usage"] {
        let usage = s.call("GET", path, &token, None);
        assert_eq!(usage.status, 200, "{path}: {}", usage.body);
        assert!(usage.json()["mtd_usage"]["total_requests"].is_number(), "{}", usage.body);
    }
    assert_eq!(key_names(s, &token), Vec::<String>::new(), "only the CLI's key is listed");

    let refused = [
        ("GET", "/api/caps".to_string(), None),
        ("PUT", "/api/caps".to_string(), Some(json!({"scope": "user", "window": "day", "limit_usd": null}))),
        ("POST", "/api/keys".to_string(), Some(json!({"name": "permanent"}))),
        ("DELETE", format!("/api/keys/{laptop_id}"), None),
        ("PATCH", format!("/api/keys/{laptop_id}"), Some(json!({"expires_at": null}))),
        ("POST", format!("/api/keys/{laptop_id}/rotate"), Some(json!({}))),
        ("POST", "/keys/rotate".to_string(), Some(json!({}))),
        ("POST", "/api/keys/rotate".to_string(), Some(json!({}))),
        ("POST", "/keys/provision".to_string(), Some(json!({"name": "laptop", "regenerate": true}))),
        ("POST", "/api/openrouter-key/rotate".to_string(), Some(json!({}))),
        ("GET", "/api/openrouter-key".to_string(), None),
        ("GET", "/api/audit".to_string(), None),
        ("POST", "/api/billing/checkout-session".to_string(), Some(json!({"credits_usd": 10}))),
        ("GET", "/api/billing/history".to_string(), None),
        ("GET", "/me/usage/history".to_string(), None),
        ("GET", "/me/usage/summary".to_string(), None),
        ("POST", "/api/auth/device/approve".to_string(), Some(json!({"userCode": "ABCD-EFGH"}))),
    ];
    for (method, path, body) in refused {
        let r = s.call(method, &path, &token, body);
        assert_eq!(r.status, 403, "{method} {path}: {}", r.body);
        assert!(r.json()["error"]["message"].as_str().unwrap().contains("Sign in to the dashboard"), "{method} {path}: {}", r.body);
    }
    let keys = s.call("GET", "/api/keys", &session, None).json();
    let laptop_now = keys["data"].as_array().unwrap().iter().find(|k| k["id"] == laptop_id.as_str()).cloned().unwrap();
    assert_eq!(laptop_now["status"], "active", "{keys}");
    // A made-up device token is no credential at all; an expired one is told to sign in again.
    let made_up = s.call("GET", "/api/billing/balance", &format!("dxd_{}", "0".repeat(64)), None);
    assert_eq!((made_up.status, made_up.json()["error"]["code"].as_str()), (401, Some("invalid_api_key")), "{}", made_up.body);
    let hash = dexto_shared::device::device_code_hash(&token);
    s.d1(&format!("UPDATE device_tokens SET expires_at = 1 WHERE token_hash = '{hash}'"));
    let expired = s.call("GET", "/api/billing/balance", &token, None);
    assert_eq!((expired.status, expired.json()["error"]["code"].as_str()), (401, Some("session_expired")), "{}", expired.body);
    assert!(expired.json()["error"]["message"].as_str().unwrap().contains("dexto login"), "{}", expired.body);
}

#[test]
fn the_device_token_regenerates_the_cli_key_the_old_way() {
    // 1.6.9–1.6.10: POST /keys/provision, and `regenerate: true` when a key of that name exists.
    let s = main_stack();
    let sub = fresh_sub();
    let session = s.session_token(&sub, "old@example.com");
    let existing = s.call("POST", "/keys/provision", &session, Some(json!({"name": "Dexto CLI Key", "regenerate": false})));
    assert_eq!(existing.status, 200, "{}", existing.body);
    let token = old_generation_login(s, "/auth/device", &sub)["access_token"].as_str().unwrap().to_string();
    let ask = s.call("POST", "/keys/provision", &token, Some(json!({"name": "Dexto CLI Key", "regenerate": false}))).json();
    assert_eq!((&ask["isNewKey"], &ask["keyId"]), (&json!(false), &existing.json()["keyId"]), "{ask}");
    let again = s.call("POST", "/keys/provision", &token, Some(json!({"name": "Dexto CLI Key", "regenerate": true})));
    assert_eq!(again.status, 200, "{}", again.body);
    let fresh = again.json()["dextoApiKey"].as_str().unwrap().to_string();
    assert_eq!(s.call("GET", "/keys/validate", &fresh, None).json()["valid"], true);
    assert_eq!(s.call("GET", "/keys/validate", existing.json()["dextoApiKey"].as_str().unwrap(), None).json()["valid"], false);
    // One key per login: the same token cannot regenerate it again.
    let third = s.call("POST", "/keys/provision", &token, Some(json!({"name": "Dexto CLI Key", "regenerate": true})));
    assert_eq!(third.status, 403, "{}", third.body);
    assert_eq!(s.call("GET", "/keys/validate", &fresh, None).json()["valid"], true);
    assert_eq!(key_names(s, &session), ["Dexto CLI Key"]);
}

/// The `key.create` audit rows of `user` (newest first).
fn key_creations(s: &Stack, user: &str) -> Vec<Value> {
    let r = s.admin("GET", &format!("/admin/audit?user={user}&action=key.create&limit=200"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["data"].as_array().unwrap().clone()
}

/// The `key.create` row naming `key_id` (identity names the key as subject,
/// the admin API in `detail.key_id`).
fn creation_of(rows: &[Value], key_id: &str) -> Option<Value> {
    rows.iter().find(|r| r["subject"] == key_id || r["detail"]["key_id"] == key_id).cloned()
}

#[test]
fn every_path_that_creates_a_key_writes_its_audit_row() {
    let s = main_stack();
    let sub = fresh_sub();
    let session = s.session_token(&sub, "audit@example.com");
    let id_of = |r: HttpResponse, pointer: &str| -> String {
        assert!(r.status == 200 || r.status == 201, "{}", r.body);
        r.json().pointer(pointer).and_then(Value::as_str).unwrap_or_else(|| panic!("{pointer} in {}", r.body)).to_string()
    };
    let mut created = vec![
        ("provision", id_of(s.call("POST", "/api/provision", &session, Some(json!({}))), "/keyId")),
        ("keys/provision", id_of(s.call("POST", "/keys/provision", &session, Some(json!({"name": "old cli", "regenerate": false}))), "/keyId")),
    ];
    let made = id_of(s.call("POST", "/api/keys", &session, Some(json!({"name": "made"}))), "/data/id");
    created.push(("api/keys/{id}/rotate", id_of(s.call("POST", &format!("/api/keys/{made}/rotate"), &session, Some(json!({}))), "/data/id")));
    created.push(("api/keys", made));
    let admin = s.admin("POST", &format!("/admin/users/{sub}/keys"), Some(json!({"name": "ops"})));
    let admin_key = admin.json()["key"].as_str().unwrap_or_default().to_string();
    created.push(("admin", id_of(admin, "/id")));
    created.push(("keys/rotate", id_of(s.call("POST", "/keys/rotate", &admin_key, Some(json!({}))), "/keyId")));
    // Device login, 1.8.0+: the poll mints the key.
    let started = begin(s, "/api/auth/device");
    assert_eq!(decide(s, "approve", &session, &started["userCode"]).status, 200);
    wait_interval();
    created.push(("device approval", id_of(poll_new(s, "/api/auth/device", &started), "/apiKey/id")));
    // Device login, 1.6.9–1.7.x: the device token provisions it.
    let token = old_generation_login(s, "/api/auth/device", &sub)["access_token"].as_str().unwrap().to_string();
    let via_token = id_of(s.call("POST", "/api/keys", &token, Some(json!({"name": "Dexto CLI Key"}))), "/data/id");

    let rows = key_creations(s, &sub);
    for (path, key_id) in &created {
        assert!(creation_of(&rows, key_id).is_some(), "{path}: no key.create row for {key_id}: {rows:#?}");
    }
    let row = creation_of(&rows, &via_token).unwrap_or_else(|| panic!("device token: no key.create row: {rows:#?}"));
    assert_eq!(row["detail"]["via"], "device_login", "{row}");
    let issued = s.admin("GET", &format!("/admin/audit?user={sub}&action=device.token_issued"), None).json();
    assert_eq!(issued["data"].as_array().unwrap().len(), 1, "the device token's issue is recorded: {issued}");
}
