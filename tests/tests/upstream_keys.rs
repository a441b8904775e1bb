//! Per-user OpenRouter keys: minted through the management API with the right
//! body, sealed at rest, used for the user's calls, their limit following the
//! wallet, rotated without ever being returned.

use integration_tests::{stack, Stack};
use serde_json::{json, Value};

fn mgmt_calls(s: &Stack, needle: &str) -> Vec<Value> {
    let r = integration_tests::get(&format!("{}/__mock/requests?contains={needle}", s.mock));
    r.json()["requests"].as_array().unwrap().clone()
}

fn upstream_key(s: &Stack, hash: &str) -> Value {
    let r = integration_tests::get_with(&format!("{}/keys/{hash}", s.mock), &[("Authorization", &format!("Bearer {}", mock_openrouter::DEFAULT_MANAGEMENT_KEY))]);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["data"].clone()
}

#[test]
fn provision_mints_seals_uses_and_limits_the_users_key() {
    let s = stack();
    let sub = format!("u-{}", dexto_shared::ids::new_id(""));
    let token = s.session_token(&sub, "k@example.com");
    let provisioned = s.call("POST", "/api/provision", &token, Some(json!({})));
    assert_eq!(provisioned.status, 200, "{}", provisioned.body);
    assert!(!provisioned.body.contains("sk-or-v1"), "the upstream key is never returned");

    let mint = mgmt_calls(s, &format!("dexto:{sub}"));
    assert_eq!(mint.len(), 1, "minted once");
    assert_eq!(mint[0]["method"], "POST");
    let body: Value = serde_json::from_str(mint[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body, json!({"name": format!("dexto:{sub}"), "limit": 0.0, "include_byok_in_limit": true}));

    // Sealed at rest: D1 holds ciphertext, never the key.
    let rows = s.d1_until(&format!("SELECT upstream_hash, ciphertext, enc_key_id, status FROM upstream_keys WHERE user_id = '{sub}'"), |r| !r.is_empty());
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert!(!row["ciphertext"].as_str().unwrap().contains("sk-or"));
    assert_eq!(row["enc_key_id"], "k1");
    let hash = row["upstream_hash"].as_str().unwrap().to_string();

    // A credit moves the upstream limit (usage + balance).
    s.credit(&sub, "7.5");
    let key = s.eventually_user(&sub, "limit sync", |_| upstream_key(s, &hash)["limit"] == json!(7.5));
    assert_eq!(key["balance_micros"], 7_500_000);

    // Chat calls go out with the user's own key.
    let api_key = provisioned.json()["dextoApiKey"].as_str().unwrap().to_string();
    let m = integration_tests::marker("own-key");
    let r = s.chat(&api_key, &json!({"model": "openai/gpt-4o", "max_tokens": 2, "messages": [{"role": "user", "content": m}]}));
    assert_eq!(r.status, 200, "{}", r.body);
    let call = &mgmt_calls(s, &m)[0];
    let used = call["authorization"].as_str().unwrap().trim_start_matches("Bearer ").to_string();
    assert!(used.starts_with("sk-or-v1-") && used != "sk-or-v1-local-placeholder", "per-user key, not the org key");
    assert!(!s.logs().contains(&used), "upstream key never logged");

    // Rotation: a new key with the remaining allowance, the old one deleted upstream.
    let rotated = s.call("POST", "/api/openrouter-key/rotate", &token, None);
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    assert!(!rotated.body.contains("sk-or"));
    let deleted = mgmt_calls(s, &hash).into_iter().filter(|c| c["method"] == "DELETE").count();
    assert_eq!(deleted, 1);
    let rows = s.d1_until(&format!("SELECT upstream_hash, status FROM upstream_keys WHERE user_id = '{sub}' ORDER BY created_at"), |r| r.len() == 2 && r[0]["status"] == "retired");
    let statuses: Vec<&str> = rows.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["retired", "active"]);
    let m2 = integration_tests::marker("rotated-key");
    assert_eq!(s.chat(&api_key, &json!({"model": "openai/gpt-4o", "max_tokens": 2, "messages": [{"role": "user", "content": m2}]})).status, 200);
    // This isolate still had the old key cached: the upstream refused it (401),
    // and the gateway re-read the key and retried once.
    let calls = mgmt_calls(s, &m2);
    assert_eq!(calls.len(), 2, "refused with the deleted key, then retried");
    let used2 = calls[1]["authorization"].as_str().unwrap().to_string();
    assert_ne!(used2.trim_start_matches("Bearer "), used, "the chat path picked up the rotated key");
}

#[test]
fn upstream_key_rotation_is_throttled_per_user() {
    let s = stack();
    let sub = format!("u-{}", dexto_shared::ids::new_id(""));
    let token = s.session_token(&sub, "t@example.com");
    assert_eq!(s.call("POST", "/api/provision", &token, Some(json!({}))).status, 200);
    let mints_before = mgmt_calls(s, &format!("dexto:{sub}")).len();
    // Two rotations a minute (UPSTREAM_ROTATE_PER_USER); the third is refused
    // before the management API is called. The window is fixed: however one
    // window boundary falls among the calls, the fifth is refused at the latest.
    let mut statuses = Vec::new();
    let refused = loop {
        let r = s.call("POST", "/api/openrouter-key/rotate", &token, None);
        statuses.push(r.status);
        if r.status != 200 || statuses.len() == 5 {
            break r;
        }
    };
    assert_eq!(refused.status, 429, "{statuses:?} {}", refused.body);
    assert_eq!(refused.header("retry-after"), Some("60"));
    assert_eq!(refused.json()["error"]["code"], "rate_limited", "{}", refused.body);
    let minted = mgmt_calls(s, &format!("dexto:{sub}")).len() - mints_before;
    assert_eq!(minted, statuses.len() - 1, "a refused rotation mints nothing");
    // Another user is not held up by this one.
    let other = s.session_token(&format!("u-{}", dexto_shared::ids::new_id("")), "o@example.com");
    assert_eq!(s.call("POST", "/api/provision", &other, Some(json!({}))).status, 200);
    assert_eq!(s.call("POST", "/api/openrouter-key/rotate", &other, None).status, 200);
}
