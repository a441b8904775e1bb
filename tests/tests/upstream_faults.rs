//! Upstream failures follow the stated policy (docs/ARCHITECTURE.md, "Billing
//! policy"): errors before a response → mapped status, redacted, hold released,
//! nothing charged; a stream that ends without usage → `needs_review`, charged
//! the estimate of what was observed (capped at the hold); usage without cost →
//! priced from the model's list price.

use dexto_shared::billing::{charge, hold_amount, Observed};
use dexto_shared::catalogue::Catalogue;
use dexto_shared::chat_request::ChatRequest;
use dexto_shared::money::Markup;
use integration_tests::{marker, start, Stack};
use serde_json::{json, Value};
use std::sync::OnceLock;

fn stack() -> &'static Stack {
    static S: OnceLock<Stack> = OnceLock::new();
    S.get_or_init(|| start(&[("UPSTREAM_TIMEOUT_MS", "1000")]))
}

fn chat_body(m: &str, directives: &str, stream: bool) -> Value {
    json!({"model": "openai/gpt-4o", "stream": stream, "max_tokens": 6,
        "messages": [{"role": "user", "content": format!("{m} [[mock:{directives}]]")}]})
}

/// What the gateway charges when no usage arrives, computed independently
/// from the shared billing rules and the mock's catalogue.
fn estimate_micros(s: &Stack, body: &Value, output_bytes: usize) -> i64 {
    let models: Value = serde_json::from_str(&integration_tests::get(&format!("{}/models", s.mock)).body).unwrap();
    let catalogue = Catalogue::from_openrouter(&models, 0).unwrap();
    let model = catalogue.get("openai/gpt-4o").unwrap();
    let req = ChatRequest::parse(body.to_string().as_bytes()).unwrap();
    let hold = hold_amount(&req, model, Markup::NONE);
    charge(None, model, Markup::NONE, hold, Observed { prompt_estimate: req.prompt_estimate, output_bytes }).user_price.0
}

fn assert_untouched(s: &Stack, user_id: &str) {
    let user = s.user(user_id);
    assert_eq!(user["balance_micros"], 1_000_000, "nothing charged");
    assert_eq!(user["open_holds"], json!([]), "hold released");
    assert_eq!(user["ledger_totals"]["entries"], 1);
}

#[test]
fn upstream_errors_map_by_blame_are_redacted_and_free() {
    let s = stack();
    let u = s.new_user("1");
    for (directive, status, code) in [
        ("status=503", 502, "upstream_unavailable"),
        ("status=500", 502, "upstream_unavailable"),
        ("status=401", 502, "upstream_unavailable"),
        ("status=400", 400, "upstream_rejected"),
        ("status=429", 429, "rate_limited"),
    ] {
        let m = marker("err");
        let r = s.chat(&u.key, &chat_body(&m, directive, false));
        assert_eq!(r.status, status, "{directive}: {}", r.body);
        assert_eq!(r.json()["error"]["code"], code);
        for leak in ["127.0.0.1", "openrouter.ai", "sk-or", "mock", &m] {
            assert!(!r.body.contains(leak), "{directive} leaks {leak}: {}", r.body);
        }
        if status == 429 {
            assert!(r.header("Retry-After").is_some());
        }
        assert_eq!(s.upstream_calls(&m), 1);
    }
    assert_untouched(s, &u.id);
}

#[test]
fn an_upstream_timeout_is_a_504_and_free() {
    let s = stack();
    let u = s.new_user("1");
    let r = s.chat(&u.key, &chat_body(&marker("slow"), "delay_ms=3000", false));
    assert_eq!(r.status, 504, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "upstream_timeout");
    assert_untouched(s, &u.id);
}

#[test]
fn a_dropped_non_stream_response_is_a_502_and_free() {
    let s = stack();
    let u = s.new_user("1");
    let r = s.chat(&u.key, &chat_body(&marker("drop"), "drop_after=0", false));
    assert_eq!(r.status, 502, "{}", r.body);
    assert_untouched(s, &u.id);
}

#[test]
fn a_mid_stream_error_without_usage_is_estimated_and_flagged() {
    let s = stack();
    let u = s.new_user("1");
    let body = chat_body(&marker("midstream"), "error_after=2", true);
    let events = s.stream(&u.key, &body).collect();
    let failure = &events.iter().find(|(e, _)| e.contains("\"error\"")).expect("the upstream error frame is passed on").0;
    let frame: Value = serde_json::from_str(failure.lines().find_map(|l| l.strip_prefix("data: ")).unwrap()).unwrap();
    assert_eq!((&frame["error"]["code"], &frame["choices"][0]["finish_reason"]), (&json!(502), &json!("error")), "in OpenRouter's shape: {failure}");
    assert!(frame["error"]["message"].as_str().unwrap().contains("failed while answering"), "{failure}");
    for secret in ["MockProvider", "10.0.0.7", "metadata"] {
        assert!(!failure.contains(secret), "the provider's own words stay upstream: {failure}");
    }
    assert!(events.last().unwrap().0.starts_with(": dexto-cost"), "no [DONE] after an error, but the bill");
    let expected = estimate_micros(s, &body, "tok0 tok1 ".len());
    let user = s.eventually_user(&u.id, "settlement", |u| u["usage_totals"]["requests"] == 1);
    let row = &user["recent_usage"][0];
    assert_eq!((row["billing_status"].as_str(), row["price_basis"].as_str()), (Some("needs_review"), Some("estimate")));
    assert_eq!(row["user_price_micros"], expected);
    assert!(expected > 0, "never free");
    assert_eq!(user["balance_micros"], 1_000_000 - expected);
    assert_eq!(user["open_holds"], json!([]));
}

#[test]
fn a_mid_stream_error_with_usage_bills_the_usage() {
    let s = stack();
    let u = s.new_user("1");
    s.stream(&u.key, &chat_body(&marker("midusage"), "error_after=1,error_usage=1", true)).collect();
    let user = s.eventually_user(&u.id, "settlement", |u| u["usage_totals"]["requests"] == 1);
    let row = &user["recent_usage"][0];
    assert_eq!((row["billing_status"].as_str(), row["price_basis"].as_str()), (Some("billed"), Some("reported_cost")));
    assert_eq!(row["completion_tokens"], 1);
}

#[test]
fn a_dropped_stream_gets_an_error_frame_and_is_estimated() {
    let s = stack();
    let u = s.new_user("1");
    let body = chat_body(&marker("dropstream"), "drop_after=3", true);
    let events = s.stream(&u.key, &body).collect();
    assert!(events.iter().any(|(e, _)| e.contains("upstream_stream_interrupted")), "{events:?}");
    let expected = estimate_micros(s, &body, "tok0 tok1 tok2 ".len());
    let user = s.eventually_user(&u.id, "settlement", |u| u["usage_totals"]["requests"] == 1);
    assert_eq!(user["recent_usage"][0]["billing_status"], "needs_review");
    assert_eq!(user["recent_usage"][0]["user_price_micros"], expected);
}

#[test]
fn a_response_without_usage_is_estimated_and_flagged() {
    let s = stack();
    let u = s.new_user("1");
    let body = chat_body(&marker("nousage"), "no_usage=1", false);
    let r = s.chat(&u.key, &body);
    assert_eq!(r.status, 200);
    let content_len = r.json()["choices"][0]["message"]["content"].as_str().unwrap().len();
    let expected = estimate_micros(s, &body, content_len);
    assert_eq!(r.header("X-Dexto-Cost-USD").unwrap(), dexto_shared::money::Micros(expected).usd_fixed());
    let row = &s.settled_user(&u.id, 1)["recent_usage"][0];
    assert_eq!((row["billing_status"].as_str(), row["user_price_micros"].as_i64()), (Some("needs_review"), Some(expected)));
}

#[test]
fn usage_without_cost_is_priced_from_the_list_price() {
    let s = stack();
    let u = s.new_user("1");
    let m = marker("nocost");
    let r = s.chat(&u.key, &chat_body(&m, "no_cost=1", false));
    assert_eq!(r.status, 200);
    let usage = &r.json()["usage"];
    let (p, c) = (usage["prompt_tokens"].as_i64().unwrap(), usage["completion_tokens"].as_i64().unwrap());
    let expected = (p * 2_500_000 + c * 10_000_000 + 999_999) / 1_000_000;
    let row = &s.settled_user(&u.id, 1)["recent_usage"][0];
    assert_eq!((row["billing_status"].as_str(), row["price_basis"].as_str()), (Some("billed"), Some("price_table")));
    assert_eq!(row["user_price_micros"], expected);
}
