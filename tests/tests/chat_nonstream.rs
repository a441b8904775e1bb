//! Non-streaming chat: exact billing, headers, usage row, byte-exact forwarding.

use dexto_shared::money::{Micros, Picos};
use integration_tests::{marker, stack};
use serde_json::json;

/// The mock's deterministic cost for gpt-4o: ceil(bytes/4) prompt tokens at
/// 2.5 µ$ and `completion` tokens at 10 µ$.
fn gpt4o_cost(content: &str, completion: u64) -> Micros {
    let prompt = (content.len() as u64).div_ceil(4);
    Picos(prompt as i128 * 2_500_000 + completion as i128 * 10_000_000).ceil_micros()
}

#[test]
fn a_call_is_billed_exactly_and_reported_in_headers() {
    let s = stack();
    let u = s.new_user("1");
    let m = marker("ns");
    let content = format!("say hi {m}");
    let body = json!({
        "model": "openai/gpt-4o",
        "messages": [{"role": "user", "content": content}],
        "max_tokens": 5,
        "provider": {"order": ["openai"]}, "reasoning": {"effort": "low"}, "plugins": [], "user": "u-1",
    })
    .to_string();
    let r = s.chat_raw(&u.key, body.as_bytes(), &[("X-Dexto-Source", "cli"), ("X-Dexto-Session-ID", "sess-42"), ("X-Dexto-Version", "1.6.30")]);
    assert_eq!(r.status, 200, "{}", r.body);

    let price = gpt4o_cost(&content, 5);
    let reported = Picos::parse_usd(&r.json()["usage"]["cost"].to_string()).unwrap().ceil_micros();
    assert_eq!(price, reported, "gateway and mock agree on the cost");
    assert_eq!(r.header("X-Dexto-Cost-USD"), Some(price.usd_fixed().as_str()));
    assert_eq!(r.header("X-Dexto-Cost-Cents"), Some(price.cents_exact().as_str()));
    let balance = Micros(1_000_000 - price.0);
    assert_eq!(r.header("X-Dexto-Credits-Remaining"), Some(balance.whole_cents_floor().to_string().as_str()));
    let request_id = r.header("X-Dexto-Request-ID").expect("request id").to_string();
    assert!(request_id.starts_with("req_"));

    let user = s.settled_user(&u.id, 1);
    assert_eq!(user["balance_micros"], balance.0);
    assert_eq!(user["ledger_totals"]["net_micros"], balance.0, "Σ ledger == balance");
    assert_eq!(user["open_holds"], json!([]), "hold released");
    let row = &user["recent_usage"][0];
    assert_eq!(row["request_id"], request_id.as_str());
    assert_eq!(row["prompt_tokens"], (content.len() as u64).div_ceil(4));
    assert_eq!(row["completion_tokens"], 5);
    assert_eq!(row["user_price_micros"], price.0);
    assert_eq!(row["provider_cost_micros"], price.0);
    assert_eq!((row["billing_status"].as_str(), row["price_basis"].as_str()), (Some("billed"), Some("reported_cost")));
    assert_eq!((row["client_source"].as_str(), row["session_id"].as_str(), row["client_version"].as_str()), (Some("cli"), Some("sess-42"), Some("1.6.30")));
    assert_eq!((row["stream"].as_i64(), row["cancelled"].as_i64()), (Some(0), Some(0)));
    let debit = &user["recent_ledger"][0];
    assert_eq!((debit["amount_micros"].as_i64(), debit["balance_after_micros"].as_i64()), (Some(-price.0), Some(balance.0)));

    // Forwarded as sent (OpenRouter-only fields included), with our key,
    // once; only provider routing gains the price ceiling the hold covers.
    let calls = mock_requests(s, &m);
    assert_eq!(calls.len(), 1);
    let mut expected: serde_json::Value = serde_json::from_str(&body).unwrap();
    expected["provider"]["max_price"] = json!({"prompt": 2.5, "completion": 10.0, "request": 0, "image": 0.003613});
    let forwarded: serde_json::Value = serde_json::from_str(calls[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(forwarded, expected);
    let auth = calls[0]["authorization"].as_str().unwrap();
    assert!(!auth.contains(&u.key), "the client's key never goes upstream");
}

#[test]
fn logs_carry_ids_and_costs_but_no_keys_or_prompts() {
    let s = stack();
    let u = s.new_user("1");
    let m = marker("secretprompt");
    let r = s.chat(&u.key, &json!({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": m}], "max_tokens": 2}));
    assert_eq!(r.status, 200);
    let request_id = r.header("X-Dexto-Request-ID").unwrap().to_string();
    let line = s.log_line(&[&request_id, "chat.completion"]);
    let logs = s.logs();
    let json_part: serde_json::Value = serde_json::from_str(&line[line.find('{').unwrap()..]).unwrap();
    for field in ["request_id", "user_id", "key_id", "model", "prompt_tokens", "completion_tokens", "price_micros", "latency_ms", "status"] {
        assert!(json_part.get(field).is_some(), "log lacks {field}: {line}");
    }
    assert!(!logs.contains(&u.key), "API key in logs");
    assert!(!logs.contains(&m), "prompt in logs");
    assert!(!logs.contains("sk-or-v1-local-placeholder"), "upstream key in logs");
}

#[test]
fn multiple_choices_and_free_models_are_metered() {
    let s = stack();
    let u = s.new_user("0.5");
    let r = s.chat(&u.key, &json!({"model": "qwen/qwen3-coder:free", "messages": [{"role": "user", "content": "hi"}]}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("X-Dexto-Cost-USD"), Some("0.000000"));
    let user = s.settled_user(&u.id, 1); // free calls still get a usage row
    assert_eq!(user["balance_micros"], 500_000);
}

fn mock_requests(s: &integration_tests::Stack, m: &str) -> Vec<serde_json::Value> {
    let r = ureq_get(&format!("{}/__mock/requests?contains={m}", s.mock));
    r["requests"].as_array().unwrap().clone()
}

fn ureq_get(url: &str) -> serde_json::Value {
    let r = integration_tests::get(url);
    serde_json::from_str(&r.body).unwrap()
}

#[test]
fn a_client_that_gives_up_is_still_billed() {
    let s = stack();
    let u = s.new_user("1");
    let m = marker("gaveup");
    let body = json!({"model": "openai/gpt-4o", "max_tokens": 3, "messages": [{"role": "user", "content": format!("{m} [[mock:delay_ms=1500]]")}]});
    // The client hangs up after 300 ms, long before the upstream answers.
    let impatient = ureq::Agent::config_builder().timeout_global(Some(std::time::Duration::from_millis(300))).build().new_agent();
    let result = impatient
        .post(&format!("{}/v1/chat/completions", s.base))
        .header("Authorization", &format!("Bearer {}", u.key))
        .send(body.to_string().as_bytes());
    assert!(result.is_err(), "the client timed out");
    // The exchange runs in wait_until: the upstream answer is still settled.
    let user = s.settled_user(&u.id, 1);
    assert_eq!(user["open_holds"], json!([]));
    assert_eq!(user["recent_usage"][0]["billing_status"], "billed");
    assert_eq!(user["recent_usage"][0]["completion_tokens"], 3);
    assert!(user["balance_micros"].as_i64().unwrap() < 1_000_000);
    assert_eq!(s.upstream_calls(&m), 1);
}

#[test]
fn a_reply_beyond_the_buffer_cap_is_a_502_billed_as_the_upstream_reports() {
    let s = stack();
    let u = s.new_user("1");
    let m = marker("huge");
    // 17 MiB of reply (an image in base64), beyond the 16 MiB a non-streamed reply may have.
    let body = json!({"model": "openai/gpt-4o-mini", "max_tokens": 5,
        "messages": [{"role": "user", "content": format!("{m} [[mock:image_bytes={},tokens=3]]", 17 * 1024 * 1024)}]});
    let r = s.chat(&u.key, &body);
    assert_eq!(r.status, 502, "{}", r.body.chars().take(300).collect::<String>());
    let error = &r.json()["error"];
    assert_eq!(error["code"], "upstream_response_too_large");
    assert!(error["message"].as_str().unwrap().contains("16 MiB") && error["message"].as_str().unwrap().contains("\"stream\": true"), "{error}");
    // The upstream billed the generation: so is the user, from its record.
    let user = s.settled_user(&u.id, 1);
    let row = &user["recent_usage"][0];
    let generation_id = row["generation_id"].as_str().expect("named by its header");
    let generation = integration_tests::get_with(&format!("{}/generation?id={generation_id}", s.mock), &[("Authorization", "Bearer test")]);
    let cost = Picos::parse_usd(&generation.json()["data"]["total_cost"].to_string()).unwrap().ceil_micros();
    assert_eq!((row["billing_status"].as_str(), row["completion_tokens"].as_u64(), row["user_price_micros"].as_i64()), (Some("billed"), Some(3), Some(cost.0)), "{row}");
    assert_eq!(user["balance_micros"].as_i64(), Some(1_000_000 - cost.0));
    assert_eq!(user["open_holds"], json!([]));
    assert_eq!(s.upstream_calls(&m), 1);
}
