//! Anthropic Messages (`/v1/messages`) and OpenAI Responses (`/v1/responses`)
//! on Dexto credit, through the one exchange: the same hold, settlement and
//! usage row (with the dialect recorded) as chat, errors in each dialect's
//! envelope, and the same price for the same call in every dialect.

use integration_tests::client::{send, sse_data};
use integration_tests::{marker, stack, Stack, TestUser};
use serde_json::{json, Value};

const HAIKU: &str = "anthropic/claude-haiku-4.5";

fn post(s: &Stack, path: &str, headers: &[(&str, &str)], body: &Value) -> integration_tests::HttpResponse {
    let mut h = vec![("Content-Type", "application/json")];
    h.extend_from_slice(headers);
    send("POST", &format!("{}{path}", s.base), &h, Some(body.to_string().as_bytes()))
}

fn messages(s: &Stack, u: &TestUser, body: &Value) -> integration_tests::HttpResponse {
    post(s, "/v1/messages?beta=true", &[("x-api-key", &u.key), ("anthropic-version", "2023-06-01")], body)
}

fn responses(s: &Stack, u: &TestUser, body: &Value) -> integration_tests::HttpResponse {
    post(s, "/v1/responses", &[("Authorization", &format!("Bearer {}", u.key))], body)
}

/// The settled user, its one usage row, and the row's price (µ$).
fn one_row(s: &Stack, u: &TestUser) -> (Value, Value, i64) {
    let user = s.settled_user(&u.id, 1);
    let row = user["recent_usage"][0].clone();
    let price = row["user_price_micros"].as_i64().expect("price");
    assert_eq!(user["balance_micros"], 5_000_000 - price, "debited exactly the usage row's price");
    (user, row, price)
}

fn mock_request(s: &Stack, m: &str) -> Value {
    let r = send("GET", &format!("{}/__mock/requests?contains={m}", s.mock), &[], None);
    r.json()["requests"][0].clone()
}

#[test]
fn messages_answers_in_anthropic_shape_and_bills_like_chat() {
    let s = stack();
    let u = s.new_user("5");
    let m = marker("msg");
    let body = json!({"model": HAIKU, "max_tokens": 16, "system": "be brief", "messages": [{"role": "user", "content": format!("say hi {m}")}]});
    let r = messages(s, &u, &body);
    assert_eq!(r.status, 200, "{}", r.body);
    let reply = r.json();
    assert_eq!((reply["type"].as_str(), reply["role"].as_str()), (Some("message"), Some("assistant")), "{reply}");
    assert!(reply["usage"]["input_tokens"].as_u64().is_some_and(|n| n > 0));
    assert_eq!(r.header("X-Dexto-Max-Tokens"), Some("16"));
    let (_, row, price) = one_row(s, &u);
    assert_eq!((row["api"].as_str(), row["price_basis"].as_str()), (Some("messages"), Some("reported_cost")), "{row}");
    assert_eq!(r.header("X-Dexto-Cost-USD"), Some(dexto_shared::money::Micros(price).usd_fixed().as_str()));
    let upstream = mock_request(s, &m);
    assert_eq!(upstream["dialect"], "messages", "{upstream}");
    assert_eq!(upstream["headers"]["anthropic-version"], "2023-06-01", "passed on: {upstream}");
}

#[test]
fn anthropic_model_ids_resolve_to_the_catalogue() {
    let s = stack();
    let u = s.new_user("5");
    let m = marker("alias");
    let body = json!({"model": "claude-haiku-4-5-20251001", "max_tokens": 8, "messages": [{"role": "user", "content": format!("hi {m}")}]});
    let r = messages(s, &u, &body);
    assert_eq!(r.status, 200, "{}", r.body);
    let forwarded: Value = serde_json::from_str(mock_request(s, &m)["body"].as_str().expect("body")).expect("json");
    assert_eq!(forwarded["model"], HAIKU, "the catalogue's id is forwarded");
    let unknown = messages(s, &u, &json!({"model": "claude-nonesuch-9", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}));
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert_eq!(unknown.json()["error"]["type"], "not_found_error", "{}", unknown.body);
}

#[test]
fn responses_answers_in_openai_responses_shape_and_bills_like_chat() {
    let s = stack();
    let u = s.new_user("5");
    let m = marker("resp");
    let r = responses(s, &u, &json!({"model": "openai/gpt-4o", "max_output_tokens": 12, "input": format!("say hi {m}")}));
    assert_eq!(r.status, 200, "{}", r.body);
    let reply = r.json();
    assert_eq!(reply["object"], "response", "{reply}");
    assert!(reply["usage"]["output_tokens"].as_u64().is_some_and(|n| n > 0 && n <= 12));
    let (_, row, _) = one_row(s, &u);
    assert_eq!(row["api"], "responses");
    assert_eq!(mock_request(s, &m)["dialect"], "responses");
    let stateful = responses(s, &u, &json!({"model": "openai/gpt-4o", "input": "again", "previous_response_id": "resp_1"}));
    assert_eq!(stateful.status, 400, "{}", stateful.body);
    assert!(stateful.json()["error"]["message"].as_str().unwrap().contains("input"), "{}", stateful.body);
}

#[test]
fn the_same_call_costs_the_same_in_every_dialect() {
    let s = stack();
    let text = "count to three";
    let (chat_user, msg_user, resp_user) = (s.new_user("5"), s.new_user("5"), s.new_user("5"));
    let chat = s.chat(&chat_user.key, &json!({"model": HAIKU, "max_tokens": 8, "messages": [{"role": "user", "content": text}]}));
    assert_eq!(chat.status, 200, "{}", chat.body);
    let msg = messages(s, &msg_user, &json!({"model": HAIKU, "max_tokens": 8, "messages": [{"role": "user", "content": text}]}));
    assert_eq!(msg.status, 200, "{}", msg.body);
    let resp = responses(s, &resp_user, &json!({"model": HAIKU, "max_output_tokens": 8, "input": [{"role": "user", "content": text}]}));
    assert_eq!(resp.status, 200, "{}", resp.body);
    let prices: Vec<i64> = [&chat_user, &msg_user, &resp_user].iter().map(|u| one_row(s, u).2).collect();
    assert!(prices[0] > 0 && prices.iter().all(|p| *p == prices[0]), "{prices:?}");
}

#[test]
fn streams_in_each_dialect_end_with_the_bill_before_their_last_event() {
    let s = stack();
    for (path, last, body) in [
        ("/v1/messages", "message_stop", json!({"model": HAIKU, "max_tokens": 6, "stream": true, "messages": [{"role": "user", "content": "hi"}]})),
        // The ceiling cuts the 8-token answer: Responses ends `incomplete`.
        ("/v1/responses", "response.incomplete", json!({"model": HAIKU, "max_output_tokens": 6, "stream": true, "input": "hi"})),
    ] {
        let u = s.new_user("5");
        let auth = format!("Bearer {}", u.key);
        let reader = integration_tests::SseReader::open(&format!("{}{path}", s.base), &[("Authorization", &auth), ("Content-Type", "application/json")], body.to_string().as_bytes());
        assert_eq!(reader.status, 200, "{path}");
        let events = reader.collect();
        let n = events.len();
        assert!(events[n - 2].0.starts_with(": dexto-cost usd="), "{path}: {events:?}");
        let data: Value = serde_json::from_str(sse_data(&events[n - 1].0).expect("data")).expect("json");
        assert_eq!(data["type"], last, "{path}");
        let (_, row, _) = one_row(s, &u);
        assert_eq!((row["stream"].as_i64(), row["completion_tokens"].as_i64(), row["price_basis"].as_str()), (Some(1), Some(6), Some("reported_cost")), "{path}: {row}");
    }
}

#[test]
fn refusals_come_in_each_dialects_envelope() {
    let s = stack();
    let broke = s.new_user("0");
    let body = json!({"model": HAIKU, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]});
    let r = messages(s, &broke, &body);
    assert_eq!(r.status, 402, "{}", r.body);
    let e = r.json();
    assert_eq!((e["type"].as_str(), e["error"]["type"].as_str()), (Some("error"), Some("billing_error")), "{e}");
    let message = e["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("Insufficient credits. Balance: $0.") && message.contains("/dashboard/settings/billing"), "{message}");
    assert_eq!(r.header("x-should-retry"), Some("false"));
    assert_eq!(r.header("X-Dexto-Error-Code"), Some("INSUFFICIENT_CREDITS"));

    // No key at all is offered x402 (its own 402 shape, in any dialect); a wrong key is the dialect's 401.
    let anonymous = post(s, "/v1/messages", &[], &body);
    assert_eq!((anonymous.status, anonymous.header("X-Dexto-Error-Code")), (402, Some("x402_payment_required")), "{}", anonymous.body);
    assert!(anonymous.header("PAYMENT-REQUIRED").is_some() && anonymous.json()["accepts"].is_array(), "{}", anonymous.body);
    let wrong = post(s, "/v1/messages", &[("x-api-key", "dxk_0000000000000000000000000000000000000000000000000000000000000000")], &body);
    assert_eq!((wrong.status, wrong.json()["error"]["type"].as_str()), (401, Some("authentication_error")), "{}", wrong.body);
    let no_ceiling = messages(s, &s.new_user("1"), &json!({"model": HAIKU, "messages": [{"role": "user", "content": "hi"}]}));
    assert_eq!((no_ceiling.status, no_ceiling.json()["error"]["type"].as_str()), (400, Some("invalid_request_error")), "{}", no_ceiling.body);

    let r = responses(s, &broke, &json!({"model": HAIKU, "max_output_tokens": 8, "input": "hi"}));
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (402, Some("INSUFFICIENT_CREDITS")), "{}", r.body);
    let hosted = responses(s, &s.new_user("1"), &json!({"model": HAIKU, "input": "hi", "tools": [{"type": "web_search"}]}));
    assert_eq!(hosted.status, 400, "{}", hosted.body);
    assert!(hosted.json()["error"]["message"].as_str().unwrap().contains("web_search"), "{}", hosted.body);
}

#[test]
fn permission_and_rate_limit_refusals_in_each_dialect() {
    let s = stack();
    let u = s.new_user("5");
    let created = s.admin("POST", &format!("/admin/users/{}/keys", u.id), Some(json!({"name": "gpt only, slow", "rate_limit_per_minute": 1, "allowed_models": ["openai/gpt-4o"]})));
    assert_eq!(created.status, 201, "{}", created.body);
    let key = TestUser { key: created.json()["key"].as_str().unwrap().to_string(), id: u.id.clone(), key_id: created.json()["id"].as_str().unwrap().to_string() };
    let haiku_msg = json!({"model": HAIKU, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]});
    let r = messages(s, &key, &haiku_msg);
    assert_eq!((r.status, r.json()["error"]["type"].as_str()), (403, Some("permission_error")), "{}", r.body);
    let r = responses(s, &key, &json!({"model": HAIKU, "max_output_tokens": 8, "input": "hi"}));
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (403, Some("forbidden")), "{}", r.body);
    // One request a minute: the first passes, the next is refused in each envelope.
    let gpt_msg = json!({"model": "openai/gpt-4o", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(messages(s, &key, &gpt_msg).status, 200);
    let r = messages(s, &key, &gpt_msg);
    assert_eq!((r.status, r.json()["error"]["type"].as_str()), (429, Some("rate_limit_error")), "{}", r.body);
    assert!(r.header("Retry-After").is_some() && r.header("x-should-retry").is_none(), "a 429 may be retried after Retry-After");
    let r = responses(s, &key, &json!({"model": "openai/gpt-4o", "max_output_tokens": 8, "input": "hi"}));
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (429, Some("rate_limited")), "{}", r.body);
}

#[test]
fn a_dropped_stream_in_each_dialect_is_billed_for_the_upstream_usage() {
    let s = stack();
    for (path, body) in [
        ("/v1/messages", json!({"model": HAIKU, "max_tokens": 10, "stream": true, "messages": [{"role": "user", "content": "[[mock:chunk_delay_ms=150,tokens=10]]"}]})),
        ("/v1/responses", json!({"model": HAIKU, "max_output_tokens": 10, "stream": true, "input": "[[mock:chunk_delay_ms=150,tokens=10]]"})),
    ] {
        let u = s.new_user("5");
        let auth = format!("Bearer {}", u.key);
        let mut reader = integration_tests::SseReader::open(&format!("{}{path}", s.base), &[("Authorization", &auth), ("Content-Type", "application/json")], body.to_string().as_bytes());
        while !reader.next_event().expect("an event").0.contains("delta") {}
        drop(reader); // gone after the first delta
        let user = s.eventually_user(&u.id, "the dropped stream's settlement", |v| v["usage_totals"]["requests"] == 1);
        let row = &user["recent_usage"][0];
        assert_eq!((row["cancelled"].as_i64(), row["completion_tokens"].as_i64(), row["price_basis"].as_str()), (Some(1), Some(10), Some("reported_cost")), "{path}: {row}");
        let (_, _, _) = one_row(s, &u);
    }
}


/// A stream with the mock's `fault` in each of Messages and Responses: its
/// path, the event that reports the failure in that dialect, every event, and
/// the user it ran on.
fn failing_streams(s: &Stack, fault: &str) -> Vec<(&'static str, String, Vec<(String, std::time::Duration)>, TestUser)> {
    let content = format!("[[mock:{fault}]]");
    [
        ("/v1/messages", json!({"model": HAIKU, "max_tokens": 10, "stream": true, "messages": [{"role": "user", "content": content}]}), "event: error\n"),
        ("/v1/responses", json!({"model": HAIKU, "max_output_tokens": 10, "stream": true, "input": content}), "event: response.failed\n"),
    ]
    .into_iter()
    .map(|(path, body, frame)| {
        let u = s.new_user("5");
        let auth = format!("Bearer {}", u.key);
        let events = integration_tests::SseReader::open(&format!("{}{path}", s.base), &[("Authorization", &auth), ("Content-Type", "application/json")], body.to_string().as_bytes()).collect();
        let failure = events.iter().find(|(e, _)| e.contains(frame)).unwrap_or_else(|| panic!("{path}: no `{frame}` in {events:?}")).0.clone();
        (path, failure, events, u)
    })
    .collect()
}

#[test]
fn an_upstream_error_mid_stream_reaches_each_dialect_in_its_shape_without_the_providers_words() {
    for (path, failure, events, _) in failing_streams(stack(), "error_after=2") {
        assert!(failure.contains("failed while answering"), "{path}: {failure}");
        assert!(!failure.contains("MockProvider") && !failure.contains("10.0.0.7"), "{path}: {failure}");
        let kept = if path == "/v1/messages" { "\"type\":\"api_error\"" } else { "\"code\":\"server_error\"" };
        assert!(failure.contains(kept), "{path}: the upstream's own type or code is kept: {failure}");
        assert!(events.iter().any(|(e, _)| e.starts_with(": dexto-cost usd=")), "{path}: billed: {events:?}");
    }
}

#[test]
fn an_upstream_that_breaks_mid_stream_is_reported_in_each_dialects_own_event() {
    let s = stack();
    for (path, failure, events, u) in failing_streams(s, "drop_after=3") {
        assert!(failure.contains("closed the stream early"), "{path}: {failure}");
        assert!(events.last().is_some_and(|(e, _)| e.starts_with(": dexto-cost usd=")), "{path}: billed after the failure: {events:?}");
        let user = s.eventually_user(&u.id, "settlement", |v| v["usage_totals"]["requests"] == 1);
        assert_eq!(user["open_holds"], json!([]), "{path}");
    }
}

#[test]
fn an_upstream_error_in_a_200_reply_keeps_its_shape_without_the_providers_words() {
    // OpenRouter answers 200 with the error in the body once the model has started.
    let s = stack();
    let u = s.new_user("5");
    let auth = format!("Bearer {}", u.key);
    let chat = post(s, "/v1/chat/completions", &[("Authorization", &auth)], &json!({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "[[mock:error_after=2,error_usage=1]]"}]}));
    let responses = post(s, "/v1/responses", &[("Authorization", &auth)], &json!({"model": HAIKU, "max_output_tokens": 10, "input": "[[mock:error_after=2,error_usage=1]]"}));
    for (r, error, kept) in [(&chat, "/error", ("/error/code", json!(502))), (&responses, "/error", ("/status", json!("failed")))] {
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.json();
        assert!(v.pointer(error).and_then(|e| e["message"].as_str()).is_some_and(|m| m.contains("failed while answering")), "{}", r.body);
        assert!(!r.body.contains("MockProvider") && !r.body.contains("10.0.0.7") && !r.body.contains("metadata"), "{}", r.body);
        assert_eq!(v.pointer(kept.0), Some(&kept.1), "{}", r.body);
    }
    assert_eq!(chat.json()["choices"][0]["finish_reason"], "error", "the rest as the upstream sent it");
    // Billed once each by the usage the upstream reported for what it made.
    let user = s.eventually_user(&u.id, "settlements", |v| v["usage_totals"]["requests"] == 2);
    assert!(user["recent_usage"].as_array().unwrap().iter().all(|r| r["completion_tokens"] == 2), "{user}");
}
