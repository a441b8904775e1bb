//! Canaries: a workload across every Worker with recognisable secrets (API
//! keys, the session token, the admin token, the webhook secret, the upstream
//! keys the gateway minted) and prompt text, then a scan of every log line
//! and every error body for any of them.

use integration_tests::{get, marker};
use serde_json::{json, Value};

#[test]
fn no_secret_or_prompt_reaches_a_log_line_or_an_error_body() {
    let s = integration_tests::start(&[]);
    let prompt = marker("CANARY-PROMPT");
    let sub = marker("canary-user");
    let session = s.session_token(&sub, "canary@example.com");
    let mut bodies: Vec<String> = Vec::new();
    let mut keep = |r: integration_tests::HttpResponse| {
        if r.status >= 400 {
            bodies.push(r.body.clone());
        }
        r
    };

    let provisioned = keep(s.call("POST", "/api/provision", &session, Some(json!({}))));
    let key = provisioned.json()["dextoApiKey"].as_str().or(provisioned.json()["data"]["fullKey"].as_str()).map(str::to_string);
    let key = key.unwrap_or_else(|| keep(s.call("POST", "/api/keys", &session, Some(json!({"name": "canary"})))).json()["data"]["fullKey"].as_str().unwrap().to_string());
    s.credit(&sub, "1");

    let chat = |body: Value| s.chat(&key, &body);
    let text = |extra: &str| json!([{"role": "user", "content": format!("{prompt} {extra}")}]);
    keep(chat(json!({"model": "openai/gpt-4o-mini", "max_tokens": 5, "messages": text("")})));
    keep(chat(json!({"model": "openai/gpt-4o-mini", "messages": text("[[mock:status=500]]")})));
    keep(chat(json!({"model": "openai/gpt-4o-mini", "messages": text("[[mock:status=400]]")})));
    keep(chat(json!({"model": "openai/gpt-4o-mini", "messages": text("[[mock:drop_after=1]]")})));
    keep(chat(json!({"model": "openai/gpt-4o-mini", "plugins": [{"id": "web"}], "messages": text("")})));
    keep(chat(json!({"model": "openai/gpt-4o-mini", "max_tokens": 0, "messages": text("")})));
    keep(s.chat_raw(&key, format!("{{\"model\": \"openai/gpt-4o-mini\", \"messages\": [{prompt}").as_bytes(), &[]));
    let mut stream = s.stream(&key, &json!({"model": "openai/gpt-4o-mini", "stream": true, "messages": text("[[mock:error_after=2]]")}));
    while stream.next_event().is_some() {}
    keep(s.chat(&format!("{key}x"), &json!({"model": "openai/gpt-4o-mini", "messages": text("")})));
    keep(s.call("GET", "/api/keys", &format!("{session}x"), None));
    keep(s.call("POST", "/api/billing/checkout-session", &session, Some(json!({"credits_usd": 10, "return_url": format!("https://evil.tld/{prompt}")}))));
    keep(s.webhook_raw(b"{\"id\":\"evt_x\",\"type\":\"charge.refunded\"}", Some("t=1,v1=00"), &[]));
    keep(s.call("POST", "/api/keys/rotate", &key, None));
    s.settled_user(&sub, 2); // the plain call and the broken stream; the rest were free

    // Every upstream key the gateway used, as the mock saw them.
    let calls = get(&format!("{}/__mock/requests", s.mock)).json();
    let mut secrets: Vec<String> = calls["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["authorization"].as_str()?.strip_prefix("Bearer ").map(str::to_string))
        .filter(|k| k.len() > 20)
        .collect();
    secrets.sort();
    secrets.dedup();
    assert!(!secrets.is_empty(), "the upstream keys are known");
    secrets.extend([key.clone(), session.clone(), s.admin_token.clone(), s.webhook_secret.clone(), s.jwt_secret.clone(), prompt.clone()]);

    let logs = s.logs();
    assert!(logs.lines().any(|l| l.contains("chat.completion")), "the workload was logged");
    for secret in &secrets {
        let shown = &secret[..secret.len().min(12)];
        assert!(!logs.contains(secret.as_str()), "a secret ({shown}…) reached the logs");
        for body in &bodies {
            assert!(!body.contains(secret.as_str()), "a secret ({shown}…) reached an error body: {body}");
        }
    }
    assert!(bodies.len() >= 8, "the errors were exercised: {bodies:?}");
}
