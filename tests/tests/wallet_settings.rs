//! Settings that change the wallet's behaviour: a price markup (the user pays
//! cost × markup, rounded up; the provider cost is recorded beside it), the hold
//! deadline (a hold whose exchange outlives HOLD_TTL_SECONDS keeps reserving
//! its money until it settles: the sweep leaves running exchanges alone), and
//! the per-user rate limit.

use dexto_shared::money::{Markup, Picos};
use integration_tests::{start, Stack};
use serde_json::json;
use std::sync::OnceLock;

fn stack() -> &'static Stack {
    static S: OnceLock<Stack> = OnceLock::new();
    S.get_or_init(|| start(&[("PRICE_MARKUP", "1.25"), ("HOLD_TTL_SECONDS", "1"), ("RATE_LIMIT_PER_MINUTE", "6"), ("RATE_LIMIT_BURST", "3"), ("MAX_CONCURRENT_REQUESTS", "2")]))
}

#[test]
fn the_user_pays_cost_times_markup_and_the_provider_cost_is_kept() {
    let s = stack();
    let u = s.new_user("1");
    let r = s.chat(&u.key, &json!({"model": "openai/gpt-4o", "max_tokens": 3, "messages": [{"role": "user", "content": "markup please"}]}));
    assert_eq!(r.status, 200, "{}", r.body);
    let cost = Picos::parse_usd(&r.json()["usage"]["cost"].to_string()).unwrap();
    let price = Markup::parse("1.25").unwrap().apply(cost).ceil_micros();
    assert!(price > cost.ceil_micros());
    assert_eq!(r.header("X-Dexto-Cost-USD"), Some(price.usd_fixed().as_str()));
    let row = &s.settled_user(&u.id, 1)["recent_usage"][0];
    assert_eq!((row["user_price_micros"].as_i64(), row["provider_cost_micros"].as_i64()), (Some(price.0), Some(cost.ceil_micros().0)));
    assert_eq!(s.user(&u.id)["balance_micros"], 1_000_000 - price.0);
}

#[test]
fn a_hold_past_its_deadline_keeps_reserving_while_its_exchange_runs() {
    let s = stack();
    let u = s.new_user("1");
    let slow = json!({"model": "openai/gpt-4o", "max_tokens": 4, "stream": true,
        "messages": [{"role": "user", "content": "[[mock:delay_ms=2500,tokens=4]]"}]});
    let (key, base) = (u.key.clone(), s.base.clone());
    let running = std::thread::spawn(move || {
        integration_tests::SseReader::open(&format!("{base}/v1/chat/completions"), &[("Authorization", &format!("Bearer {key}"))], slow.to_string().as_bytes()).collect()
    });
    s.eventually_user(&u.id, "the hold", |v| v["open_holds"].as_array().is_some_and(|h| h.len() == 1));
    std::thread::sleep(std::time::Duration::from_millis(1_800)); // the upstream waits 2.5 s; the TTL is 1 s
    let waiting = s.user(&u.id);
    assert_eq!(waiting["open_holds"].as_array().map(Vec::len), Some(1), "still held: {waiting:#}");
    assert!(waiting["available_usd"].as_f64() < waiting["balance_usd"].as_f64(), "and still reserving: {waiting:#}");
    assert_eq!(waiting["usage_totals"]["requests"], 0, "not settled by the sweep while it runs");
    let events = running.join().unwrap();
    assert!(events.iter().any(|(e, _)| e.starts_with(": dexto-cost")));
    let user = s.settled_user(&u.id, 1);
    assert!(user["balance_micros"].as_i64().unwrap() < 1_000_000, "settled past its deadline, charged once");
    assert_eq!(user["open_holds"], json!([]));
    assert_eq!(user["ledger_totals"]["net_micros"], user["balance_micros"]);
}

#[test]
fn the_rate_limit_is_per_user_with_retry_after() {
    let s = stack();
    let (a, b) = (s.new_user("1"), s.new_user("1"));
    let call = |key: &str| s.chat(key, &json!({"model": "qwen/qwen3-coder:free", "messages": [{"role": "user", "content": "hi"}]}));
    let remaining: Vec<Option<String>> = (0..3).map(|_| call(&a.key).header("X-Dexto-RateLimit-Remaining").map(str::to_string)).collect();
    assert_eq!(remaining, [Some("2".to_string()), Some("1".to_string()), Some("0".to_string())]);
    let limited = call(&a.key);
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert_eq!(limited.json()["error"]["code"], "rate_limited");
    assert_eq!(limited.header("Retry-After"), Some("10"), "6/min: one token every 10 s");
    assert_eq!(call(&b.key).status, 200, "another user's bucket is untouched");
}

#[test]
fn requests_in_flight_are_capped_per_user() {
    let s = stack();
    let u = s.new_user("1");
    let slow = json!({"model": "openai/gpt-4o", "max_tokens": 4, "stream": true,
        "messages": [{"role": "user", "content": "[[mock:delay_ms=2000,tokens=2]]"}]});
    let running: Vec<_> = (0..2)
        .map(|_| {
            let (key, base, body) = (u.key.clone(), s.base.clone(), slow.clone());
            std::thread::spawn(move || {
                integration_tests::SseReader::open(&format!("{base}/v1/chat/completions"), &[("Authorization", &format!("Bearer {key}"))], body.to_string().as_bytes()).collect()
            })
        })
        .collect();
    s.eventually_user(&u.id, "two requests in flight", |v| v["open_holds"].as_array().is_some_and(|h| h.len() == 2));
    let third = s.chat(&u.key, &json!({"model": "openai/gpt-4o", "max_tokens": 4, "messages": [{"role": "user", "content": "x"}]}));
    assert_eq!(third.status, 429, "{}", third.body);
    assert_eq!(third.json()["error"]["code"], "too_many_concurrent_requests");
    assert_eq!((third.header("Retry-After"), third.header("X-Dexto-RateLimit-Remaining")), (Some("1"), Some("0")));
    for r in running {
        assert!(!r.join().unwrap().is_empty());
    }
    s.settled_user(&u.id, 2);
    assert_eq!(s.chat(&u.key, &json!({"model": "openai/gpt-4o", "max_tokens": 4, "messages": [{"role": "user", "content": "x"}]})).status, 200, "free again");
}
