//! The audit log: operator actions, key lifecycle, device logins and caps are
//! recorded with actor, subject, request id and client IP (never a secret);
//! operators read it with filters and cursor pages, users read their own
//! security events.

use integration_tests::{get_with, Stack};
use serde_json::{json, Value};
use std::sync::OnceLock;

fn stack() -> &'static Stack {
    static S: OnceLock<Stack> = OnceLock::new();
    S.get_or_init(|| integration_tests::start(&[]))
}

fn admin_get(s: &Stack, path: &str) -> Value {
    let r = get_with(&format!("{}{path}", s.base), &[("Authorization", &format!("Bearer {}", s.admin_token))]);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

#[test]
fn operators_read_every_action_with_who_where_and_which_request() {
    let s = stack();
    let u = s.new_user("1"); // user.create, key.create, wallet.credit
    let r = s.admin("PUT", &format!("/admin/users/{}/caps", u.id), Some(json!({"window": "daily", "limit_usd": 3})));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(s.admin("POST", &format!("/admin/keys/{}/revoke", u.key_id), None).status, 200);

    let page = admin_get(s, &format!("/admin/audit?user={}", u.id));
    let actions: Vec<&str> = page["data"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["key.revoke", "wallet.cap_set", "wallet.credit", "key.create", "user.create"], "newest first: {page:#}");
    for e in page["data"].as_array().unwrap() {
        assert_eq!(e["actor"], "admin");
        assert_eq!(e["user_id"], u.id.as_str());
        assert!(e["request_id"].as_str().is_some_and(|r| r.starts_with("req_")), "{e}");
        assert!(e["client_ip"].is_string(), "{e}");
    }
    assert!(!page.to_string().contains(&u.key), "no secret in the audit log");

    // Cursor pages: disjoint, in order, ending with no cursor.
    let first = admin_get(s, &format!("/admin/audit?user={}&limit=2", u.id));
    let next = first["next_cursor"].as_str().expect("more pages").to_string();
    let second = admin_get(s, &format!("/admin/audit?user={}&limit=2&cursor={next}", u.id));
    let ids = |p: &Value| p["data"].as_array().unwrap().iter().map(|e| e["id"].as_i64().unwrap()).collect::<Vec<_>>();
    let (a, b) = (ids(&first), ids(&second));
    assert!(a.len() == 2 && b.len() == 2 && a[1] > b[0], "{a:?} then {b:?}");
    let third = admin_get(s, &format!("/admin/audit?user={}&limit=2&cursor={}", u.id, second["next_cursor"].as_str().unwrap()));
    assert_eq!((ids(&third).len(), third["next_cursor"].clone()), (1, Value::Null));

    let keys = admin_get(s, &format!("/admin/audit?user={}&action=key.*", u.id));
    assert_eq!(keys["data"].as_array().unwrap().len(), 2);
    let bad = get_with(&format!("{}/admin/audit?limit=0", s.base), &[("Authorization", &format!("Bearer {}", s.admin_token))]);
    assert_eq!(bad.status, 400);
}

#[test]
fn users_see_their_own_security_events_and_nobody_elses() {
    let s = stack();
    let sub = integration_tests::marker("auditee");
    let token = s.session_token(&sub, "auditee@example.com");
    let created = s.call("POST", "/api/keys", &token, Some(json!({"name": "laptop"})));
    assert_eq!(created.status, 200, "{}", created.body);
    let key_id = created.json()["data"]["id"].as_str().unwrap().to_string();
    let full_key = created.json()["data"]["fullKey"].as_str().unwrap().to_string();
    assert_eq!(s.call("DELETE", &format!("/api/keys/{key_id}"), &token, None).status, 200);
    assert_eq!(s.call("PUT", "/api/caps", &token, Some(json!({"window": "monthly", "limit_usd": 20}))).status, 200);

    let own = s.call("GET", "/api/audit", &token, None);
    assert_eq!(own.status, 200, "{}", own.body);
    let events: Vec<(String, String)> = own.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap().to_string(), e["subject"].as_str().unwrap_or("").to_string()))
        .collect();
    assert_eq!(events[0].0, "caps.set", "{events:?}");
    assert!(events.contains(&("key.revoke".into(), key_id.clone())) && events.contains(&("key.create".into(), key_id.clone())), "{events:?}");
    assert!(!own.body.contains(&full_key), "never the key itself");
    assert_eq!(own.json()["data"][0]["actor"], format!("user:{sub}"));

    let stranger = s.session_token(&integration_tests::marker("stranger"), "s@example.com");
    let theirs = s.call("GET", "/api/audit", &stranger, None);
    assert_eq!(theirs.json()["data"], json!([]), "another user's events are not listed");
}
