//! Catalogue, management keys, credits and the `/__mock` introspection API.

mod common;

use common::*;
use mock_openrouter::spawn_in_background;
use serde_json::{json, Value};

const KEY_FIELDS: &[&str] = &[
    "hash",
    "name",
    "label",
    "disabled",
    "limit",
    "limit_remaining",
    "limit_reset",
    "include_byok_in_limit",
    "usage",
    "usage_daily",
    "usage_weekly",
    "usage_monthly",
    "byok_usage",
    "byok_usage_daily",
    "byok_usage_weekly",
    "byok_usage_monthly",
    "created_at",
    "updated_at",
];

fn json_req(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    auth: &str,
    body: &Value,
) -> Reply {
    request(
        addr,
        method,
        path,
        &[
            ("Authorization", auth),
            ("Content-Type", "application/json"),
        ],
        &body.to_string(),
    )
}

#[test]
fn models_catalogue_shape() {
    let addr = spawn_in_background();
    for path in ["/models", "/api/v1/models"] {
        let r = get(addr, path, Some(USER));
        assert_eq!(r.status, 200);
        let v = r.json();
        let ids: Vec<&str> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            [
                "openai/gpt-4o-mini",
                "openai/gpt-4o",
                "anthropic/claude-haiku-4.5",
                "qwen/qwen3-coder:free",
                "mock/expensive",
                "mock/no-max",
                "mock/output-only"
            ]
        );
        assert_eq!(v["total_count"], 7);
        assert_eq!(v["links"], json!({ "next": null }));
        let m = &v["data"][1];
        assert_eq!(m["pricing"]["prompt"], "0.0000025");
        assert_eq!(m["pricing"]["completion"], "0.00001");
        for k in ["request", "image", "input_cache_read"] {
            assert!(m["pricing"][k].is_string());
        }
        assert_eq!(m["context_length"], 128000);
        assert_eq!(m["top_provider"]["max_completion_tokens"], 16384);
        assert!(m["top_provider"]["is_moderated"].is_boolean());
        assert!(m["per_request_limits"].is_null());
        assert!(m["supported_parameters"].is_array());
        for k in ["canonical_slug", "name", "created", "description"] {
            assert!(!m[k].is_null(), "{k}");
        }
        assert_eq!(m["architecture"]["input_modalities"], json!(["text", "image"]));
        assert_eq!(v["data"][2]["architecture"]["input_modalities"], json!(["text"]));
        let qwen = &v["data"][3];
        assert_eq!(qwen["pricing"]["prompt"], "0");
        assert!(qwen["top_provider"]["max_completion_tokens"].is_null());
        assert_eq!(v["data"][2]["top_provider"]["max_completion_tokens"], 64000);
        assert!(v["data"][5]["top_provider"]["max_completion_tokens"].is_null());
    }
}

#[test]
fn management_keys_lifecycle() {
    let addr = spawn_in_background();
    let create = json!({ "name": "user-1", "limit": 10, "limit_reset": "monthly", "include_byok_in_limit": true });

    let r = json_req(addr, "POST", "/api/v1/keys", USER, &create);
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json(),
        json!({ "error": { "code": 403, "message": "Only management keys can perform this operation" } })
    );
    assert_eq!(request(addr, "GET", "/keys", &[], "").status, 401);

    let r = json_req(addr, "POST", "/api/v1/keys", MGMT, &create);
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    let secret = v["key"].as_str().unwrap().to_string();
    let hex = secret.strip_prefix("sk-or-v1-").unwrap();
    assert!(hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
    let data = v["data"].as_object().unwrap();
    let mut fields: Vec<&str> = data.keys().map(String::as_str).collect();
    let mut want = KEY_FIELDS.to_vec();
    fields.sort();
    want.sort();
    assert_eq!(fields, want);
    assert_eq!(data["name"], "user-1");
    assert_eq!(data["limit"], 10);
    assert_eq!(data["limit_remaining"], 10);
    assert_eq!(data["usage"], 0);
    let hash = data["hash"].as_str().unwrap().to_string();

    let r = get(addr, &format!("/api/v1/keys/{hash}"), Some(MGMT));
    assert_eq!(r.json()["data"]["hash"], hash.as_str());
    assert_eq!(
        get(addr, "/keys", Some(MGMT)).json()["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let r = json_req(
        addr,
        "PATCH",
        &format!("/keys/{hash}"),
        MGMT,
        &json!({ "disabled": true, "limit": 2.5 }),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["data"]["disabled"], true);
    assert_eq!(r.json()["data"]["limit"], 2.5);
    assert!(r.json()["data"]["updated_at"].is_string());

    // A disabled key is refused for chat, as OpenRouter does; re-enabled,
    // chat with it is charged to it and GET /key shows it.
    let bearer = format!("Bearer {secret}");
    let body = json!({ "model": "openai/gpt-4o", "messages": [{ "role": "user", "content": "hello world!" }] });
    assert_eq!(json_req(addr, "POST", "/chat/completions", &bearer, &body).status, 401);
    let r = json_req(addr, "PATCH", &format!("/keys/{hash}"), MGMT, &json!({ "disabled": false }));
    assert_eq!(r.status, 200);
    assert_eq!(
        json_req(addr, "POST", "/chat/completions", &bearer, &body).status,
        200
    );
    let r = get(addr, "/api/v1/key", Some(&bearer));
    assert_eq!(r.status, 200);
    assert!(r.text().contains(r#""usage":0.0000875,"#), "{}", r.text());
    assert!(
        r.text().contains(r#""limit_remaining":2.4999125,"#),
        "{}",
        r.text()
    );
    // A spent limit refuses chat only while the switch says OpenRouter's
    // enforcement is on.
    assert_eq!(json_req(addr, "PATCH", &format!("/keys/{hash}"), MGMT, &json!({ "limit": 0.00008 })).status, 200);
    assert_eq!(json_req(addr, "POST", "/chat/completions", &bearer, &body).status, 200, "not enforced by default");
    let on = request(addr, "POST", "/__mock/faults", &[("Content-Type", "application/json")], r#"{"enforce_key_limits":true}"#);
    assert_eq!(on.status, 200);
    assert_eq!(json_req(addr, "POST", "/chat/completions", &bearer, &body).status, 402, "spent: refused");
    assert_eq!(json_req(addr, "PATCH", &format!("/keys/{hash}"), MGMT, &json!({ "limit": 1 })).status, 200);
    assert_eq!(json_req(addr, "POST", "/chat/completions", &bearer, &body).status, 200, "room again");

    let r = request(
        addr,
        "DELETE",
        &format!("/api/v1/keys/{hash}"),
        &[("Authorization", MGMT)],
        "",
    );
    assert_eq!(r.json(), json!({ "deleted": true }));
    let r = get(addr, &format!("/api/v1/keys/{hash}"), Some(MGMT));
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], 404);
}

#[test]
fn credits_and_misc() {
    let addr = spawn_in_background();
    let r = get(addr, "/api/v1/credits", Some(USER));
    assert_eq!(
        r.json(),
        json!({ "data": { "total_credits": 100.5, "total_usage": 25.75 } })
    );
    let r = get(addr, "/__mock/health", None);
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    assert!(r.header("x-generation-id").is_some());
    // Header faults apply to non-chat routes too.
    let r = request(
        addr,
        "GET",
        "/models",
        &[("Authorization", USER), ("X-Mock-Fault", "status=503")],
        "",
    );
    assert_eq!(r.status, 503);
}

#[test]
fn request_log_filters_and_clears() {
    let addr = spawn_in_background();
    let a = json!({ "model": "openai/gpt-4o", "messages": [{ "role": "user", "content": "needle-alpha" }] });
    let b = json!({ "model": "openai/gpt-4o", "messages": [{ "role": "user", "content": "needle-beta" }] });
    chat(addr, &a, None);
    chat(addr, &b, None);
    get(addr, "/api/v1/models", None);

    let v = get(addr, "/__mock/requests?contains=needle-alpha", None).json();
    assert_eq!(v["count"], 1);
    let rec = &v["requests"][0];
    assert_eq!(rec["method"], "POST");
    assert_eq!(rec["path"], "/api/v1/chat/completions");
    assert_eq!(rec["authorization"], USER);
    assert_eq!(rec["body"], a.to_string());
    assert!(rec["received_at_ms"].as_u64().unwrap() > 0);

    assert_eq!(
        get(addr, "/__mock/requests?contains=models", None).json()["count"],
        1
    );
    assert_eq!(
        get(addr, "/__mock/requests", None).json()["count"],
        3,
        "__mock calls are not logged"
    );
    assert_eq!(
        request(addr, "DELETE", "/__mock/requests", &[], "").status,
        200
    );
    assert_eq!(get(addr, "/__mock/requests", None).json()["count"], 0);
}

#[test]
fn runtime_switches_fail_and_empty_the_model_list() {
    let addr = spawn_in_background();
    let set = |body: &str| request(addr, "POST", "/__mock/faults", &[("Content-Type", "application/json")], body);
    assert_eq!(set(r#"{"models_status":503}"#).json()["models_status"], 503);
    for path in ["/models", "/api/v1/models"] {
        let r = get(addr, path, None);
        assert_eq!(r.status, 503, "{path}");
        assert_eq!(r.json()["error"]["code"], 503);
    }
    // Other routes are unaffected.
    assert_eq!(get(addr, "/credits", Some(USER)).status, 200);

    let merged = set(r#"{"models_status":null,"models_empty":true}"#).json();
    assert_eq!(merged, json!({"models_status": null, "models_empty": true, "keys_status": null, "generation_status": null, "enforce_key_limits": false}));
    let r = get(addr, "/models", None);
    assert_eq!((r.status, r.json()["data"].as_array().map(Vec::len)), (200, Some(0)));
    assert_eq!(get(addr, "/__mock/faults", None).json()["models_empty"], true);

    assert_eq!(set("[1]").status, 400);
    assert_eq!(set(r#"{"models_status":"x"}"#).status, 400);
    assert_eq!(request(addr, "DELETE", "/__mock/faults", &[], "").status, 200);
    assert!(get(addr, "/models", None).json()["data"].as_array().unwrap().len() > 3);
}

#[test]
fn a_runtime_switch_hides_generation_records_until_cleared() {
    let addr = spawn_in_background();
    let body = json!({"model": "openai/gpt-4o", "max_tokens": 3, "messages": [{"role": "user", "content": "hi"}]});
    let r = request(addr, "POST", "/api/v1/chat/completions", &[("Authorization", USER), ("Content-Type", "application/json")], &body.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let path = format!("/api/v1/generation?id={}", r.header("x-generation-id").unwrap());
    assert_eq!(get(addr, &path, Some(USER)).status, 200);
    let set = |body: &str| request(addr, "POST", "/__mock/faults", &[("Content-Type", "application/json")], body);
    assert_eq!(set(r#"{"generation_status":404}"#).json()["generation_status"], 404);
    let hidden = get(addr, &path, Some(USER));
    assert_eq!((hidden.status, hidden.json()["error"]["code"].as_u64()), (404, Some(404)));
    set(r#"{"generation_status":null}"#);
    let back = get(addr, &path, Some(USER));
    assert_eq!((back.status, back.json()["data"]["tokens_completion"].as_u64()), (200, Some(3)));
}

/// A caller that hangs up before the answer (a gateway restarting
/// mid-request) is still charged on its key, as OpenRouter bills a generation
/// its caller left.
#[test]
fn a_key_is_charged_for_a_call_whose_caller_went_away() {
    let addr = spawn_in_background();
    let created = json_req(addr, "POST", "/keys", MGMT, &json!({ "name": "gone" }));
    let (hash, secret) = (created.json()["data"]["hash"].as_str().unwrap().to_string(), created.json()["key"].as_str().unwrap().to_string());
    let body = json!({ "model": "openai/gpt-4o", "messages": [{ "role": "user", "content": "hello world!" }] });
    let bearer = format!("Bearer {secret}");
    let caller = send(addr, "POST", "/chat/completions", &[("Authorization", &bearer), ("Content-Type", "application/json"), ("X-Mock-Fault", "delay_ms=300")], &body.to_string());
    // Hang up once the mock has the request (its answer then runs on its own).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while get(addr, "/__mock/requests?contains=hello", None).json()["count"] != 1 {
        assert!(std::time::Instant::now() < deadline, "the request never arrived");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    drop(caller);
    loop {
        let key = get(addr, &format!("/keys/{hash}"), Some(MGMT));
        if key.text().contains(r#""usage":0.0000875,"#) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never charged: {}", key.text());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
