//! Operators find users (by id, email prefix, status; newest first, keyset
//! pages) and list a user's keys with their settings — never a key itself.

use integration_tests::{get_with, marker, Stack};
use serde_json::{json, Value};

fn admin_get(s: &Stack, path: &str) -> (u16, Value) {
    let r = get_with(&format!("{}{path}", s.base), &[("Authorization", &format!("Bearer {}", s.admin_token))]);
    let status = r.status;
    (status, r.json())
}

#[test]
fn operators_search_users_and_list_their_keys() {
    let s = integration_tests::start(&[]);
    let tag = marker("search").to_ascii_lowercase();
    let mut ids = Vec::new();
    for n in ["a", "b", "c"] {
        let r = s.admin("POST", "/admin/users", Some(json!({"email": format!("{tag}-{n}@example.com")})));
        assert_eq!(r.status, 201, "{}", r.body);
        ids.push(r.json()["id"].as_str().unwrap().to_string());
    }
    let (status, all) = admin_get(&s, &format!("/admin/users?email={tag}"));
    assert_eq!(status, 200, "{all}");
    let found: Vec<&str> = all["data"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap()).collect();
    assert_eq!(found, [ids[2].as_str(), ids[1].as_str(), ids[0].as_str()], "newest first");

    let (_, first) = admin_get(&s, &format!("/admin/users?email={}&limit=2", tag.to_uppercase()));
    assert_eq!(first["data"].as_array().unwrap().len(), 2, "case-insensitive prefix");
    let cursor = first["next_cursor"].as_str().expect("a second page").to_string();
    let (_, second) = admin_get(&s, &format!("/admin/users?email={tag}&limit=2&cursor={cursor}"));
    assert_eq!((second["data"][0]["id"].as_str(), second["next_cursor"].clone()), (Some(ids[0].as_str()), Value::Null));

    assert_eq!(s.admin("PATCH", &format!("/admin/users/{}", ids[1]), Some(json!({"status": "suspended"}))).status, 200);
    let (_, suspended) = admin_get(&s, &format!("/admin/users?email={tag}&status=suspended"));
    assert_eq!(suspended["data"].as_array().unwrap().len(), 1);
    let (_, by_id) = admin_get(&s, &format!("/admin/users?id={}", ids[0]));
    assert_eq!(by_id["data"][0]["email"], format!("{tag}-a@example.com"));
    assert_eq!(admin_get(&s, "/admin/users?status=gone").0, 400);

    let k = s.admin("POST", &format!("/admin/users/{}/keys", ids[0]), Some(json!({"name": "ci", "allowed_models": ["openai/gpt-4o-mini"]})));
    let plaintext = k.json()["key"].as_str().unwrap().to_string();
    let (status, keys) = admin_get(&s, &format!("/admin/users/{}/keys", ids[0]));
    assert_eq!(status, 200);
    let key = &keys["data"][0];
    assert_eq!((key["name"].as_str(), key["allowed_models"].clone()), (Some("ci"), json!(["openai/gpt-4o-mini"])));
    assert!(key["display"].as_str().unwrap().starts_with("dxk_"));
    assert!(!keys.to_string().contains(&plaintext), "never the key itself");
}

#[test]
fn an_email_prefix_finds_addresses_with_non_ascii_characters_after_it() {
    let s = integration_tests::start(&[]);
    let tag = marker("intl").to_ascii_lowercase();
    let mut ids = Vec::new();
    for email in [format!("{tag}-ascii@example.com"), format!("{tag}-jürgen@example.com"), format!("{tag}-名前@example.com")] {
        let r = s.admin("POST", "/admin/users", Some(json!({"email": email})));
        assert_eq!(r.status, 201, "{}", r.body);
        ids.push(r.json()["id"].as_str().unwrap().to_string());
    }
    let (status, found) = admin_get(&s, &format!("/admin/users?email={tag}-"));
    assert_eq!(status, 200, "{found}");
    let mut got: Vec<&str> = found["data"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap()).collect();
    got.sort();
    ids.sort();
    assert_eq!(got, ids.iter().map(String::as_str).collect::<Vec<_>>(), "every address after the prefix, whatever its characters: {found}");
    let (_, narrower) = admin_get(&s, &format!("/admin/users?email={tag}-j%C3%BC"));
    assert_eq!(narrower["data"].as_array().unwrap().len(), 1, "a non-ASCII prefix matches too: {narrower}");
}
