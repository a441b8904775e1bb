//! The DEXTO_API_KEY lifecycle as every CLI generation and the dashboard use
//! it: provision (with the 1.5.7–1.6.10 regenerate dance), list/create/delete
//! (1.6.11+), validate, rotate; users only ever touch their own keys; a revoked
//! key stops working on the very next request on every path.

use integration_tests::{stack, Stack};
use serde_json::{json, Value};

fn new_session(s: &Stack) -> (String, String) {
    let sub = format!("u-{}", dexto_shared::ids::new_id(""));
    let token = s.session_token(&sub, &format!("{sub}@example.com"));
    (sub, token)
}

fn chat_ok(s: &Stack, key: &str) -> u16 {
    s.chat(key, &json!({"model": "qwen/qwen3-coder:free", "messages": [{"role": "user", "content": "hi"}]})).status
}

fn valid(s: &Stack, path: &str, key: &str) -> Value {
    let r = s.call("GET", path, key, None);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["valid"].clone()
}

#[test]
fn api_provision_issues_once_then_reports_the_existing_key() {
    let s = stack();
    let (_, token) = new_session(s);
    let first = s.call("POST", "/api/provision", &token, Some(json!({})));
    assert_eq!(first.status, 200, "{}", first.body);
    let body = first.json();
    assert_eq!((body["success"].clone(), body["isNewKey"].clone()), (json!(true), json!(true)));
    let key = body["dextoApiKey"].as_str().unwrap().to_string();
    assert!(key.starts_with("dxk_"));
    assert_eq!(valid(s, "/api/keys/validate", &key), true);
    let again = s.call("POST", "/api/provision", &token, Some(json!({}))).json();
    assert_eq!(again, json!({"success": true, "keyId": body["keyId"], "isNewKey": false}), "not rotated, no secret");
}

#[test]
fn legacy_provision_regenerate_dance() {
    let s = stack();
    let (_, token) = new_session(s);
    let req = |regenerate: bool| s.call("POST", "/keys/provision", &token, Some(json!({"name": "Dexto CLI Key", "regenerate": regenerate}))).json();
    let first = req(false);
    assert_eq!(first["isNewKey"], true);
    let old_key = first["dextoApiKey"].as_str().unwrap().to_string();
    let second = req(false);
    assert_eq!(second, json!({"success": true, "keyId": first["keyId"], "isNewKey": false}));
    // The CLI then asks again with regenerate:true: old key revoked, new secret.
    let third = req(true);
    assert_eq!(third["isNewKey"], true);
    let new_key = third["dextoApiKey"].as_str().unwrap();
    assert_ne!(third["keyId"], first["keyId"]);
    assert_eq!(valid(s, "/keys/validate", &old_key), false);
    assert_eq!(valid(s, "/keys/validate", new_key), true);
    assert_eq!(chat_ok(s, &old_key), 401);
    assert_eq!(chat_ok(s, new_key), 200);
}

#[test]
fn dashboard_keys_list_create_delete() {
    let s = stack();
    let (_, token) = new_session(s);
    let created = s.call("POST", "/api/keys", &token, Some(json!({"name": "Dexto CLI Key"})));
    assert_eq!(created.status, 200, "{}", created.body);
    let data = created.json()["data"].clone();
    let (id, full) = (data["id"].as_str().unwrap().to_string(), data["fullKey"].as_str().unwrap().to_string());
    let listed = s.call("GET", "/api/keys", &token, None).json();
    assert_eq!(listed["success"], true);
    let entry = &listed["data"][0];
    assert_eq!((entry["id"].as_str(), entry["name"].as_str(), entry["status"].as_str(), entry["isActive"].as_bool()), (Some(id.as_str()), Some("Dexto CLI Key"), Some("active"), Some(true)));
    assert!(!listed.to_string().contains(&full), "the list never shows a secret");
    assert!(entry["keyDisplay"].as_str().unwrap().ends_with(&full[full.len() - 4..]));
    assert_eq!(chat_ok(s, &full), 200, "key works (and is now cached by the data plane)");
    let deleted = s.call("DELETE", &format!("/api/keys/{id}"), &token, None);
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    // Revocation is effective on the very next request on every path.
    assert_eq!(chat_ok(s, &full), 401);
    assert_eq!(valid(s, "/keys/validate", &full), false);
    assert_eq!(valid(s, "/api/keys/validate", &full), false);
    assert_eq!(s.call("POST", "/keys/rotate", &full, None).status, 401);
    let after = s.call("GET", "/api/keys", &token, None).json();
    assert_eq!((after["data"][0]["status"].as_str(), after["data"][0]["isActive"].as_bool()), (Some("revoked"), Some(false)));
}

#[test]
fn rotation_with_a_key_or_a_session() {
    let s = stack();
    let (_, token) = new_session(s);
    let first = s.call("POST", "/api/provision", &token, Some(json!({}))).json()["dextoApiKey"].as_str().unwrap().to_string();
    let by_key = s.call("POST", "/keys/rotate", &first, None);
    assert_eq!(by_key.status, 200, "{}", by_key.body);
    let second = by_key.json()["dextoApiKey"].as_str().unwrap().to_string();
    assert_eq!((chat_ok(s, &first), chat_ok(s, &second)), (401, 200));
    let by_session = s.call("POST", "/api/keys/rotate", &token, None).json();
    assert_eq!(by_session["success"], true);
    let third = by_session["dextoApiKey"].as_str().unwrap();
    assert_eq!((chat_ok(s, &second), chat_ok(s, third)), (401, 200));
    let active: Vec<Value> = s.call("GET", "/api/keys", &token, None).json()["data"].as_array().unwrap().iter().filter(|k| k["isActive"] == true).cloned().collect();
    assert_eq!(active.len(), 1);
}

#[test]
fn users_cannot_see_or_revoke_each_others_keys() {
    let s = stack();
    let (_, alice) = new_session(s);
    let (_, bob) = new_session(s);
    let alice_key = s.call("POST", "/api/keys", &alice, Some(json!({"name": "a"}))).json()["data"].clone();
    let id = alice_key["id"].as_str().unwrap();
    assert_eq!(s.call("GET", "/api/keys", &bob, None).json()["data"], json!([]));
    let r = s.call("DELETE", &format!("/api/keys/{id}"), &bob, None);
    assert_eq!(r.status, 404, "{}", r.body);
    let unknown = s.call("DELETE", "/api/keys/key_doesnotexist000000000000", &bob, None);
    assert_eq!(unknown.status, 404);
    assert_eq!(r.json()["error"]["message"], unknown.json()["error"]["message"], "indistinguishable from an unknown id");
    assert_eq!(chat_ok(s, alice_key["fullKey"].as_str().unwrap()), 200, "still active");
}

#[test]
fn scopes_limit_what_a_key_reaches() {
    let s = stack();
    let u = s.new_user("1");
    let r = s.admin("POST", &format!("/admin/users/{}/keys", u.id), Some(json!({"name": "ops", "scopes": ["admin"]})));
    assert_eq!(r.status, 201, "{}", r.body);
    let other = s.admin("POST", &format!("/admin/users/{}/keys", u.id), Some(json!({"name": "x", "scopes": ["billing:read"]})));
    assert_eq!(other.status, 400, "unknown scopes are refused");
    // A session token is not an API key: the data plane refuses it.
    let token = s.session_token(&u.id, "x@example.com");
    assert_eq!(chat_ok(s, &token), 401);
    assert_eq!(s.call("GET", "/keys/validate", "", None).status, 401);
}

#[test]
fn last_used_at_is_recorded_after_use() {
    let s = stack();
    let (_, token) = new_session(s);
    let key = s.call("POST", "/api/keys", &token, Some(json!({"name": "k"}))).json()["data"]["fullKey"].as_str().unwrap().to_string();
    assert!(s.call("GET", "/api/keys", &token, None).json()["data"][0]["lastUsedAt"].is_null());
    assert_eq!(chat_ok(s, &key), 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let used = s.call("GET", "/api/keys", &token, None).json()["data"][0]["lastUsedAt"].clone();
        if used.is_number() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "last_used_at never projected");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
