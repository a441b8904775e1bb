//! 402 when the available balance cannot cover the worst case: the exact body
//! every Dexto CLI release parses, and no state change at all.

use integration_tests::{marker, stack};
use serde_json::json;

#[test]
fn refuses_with_the_cli_compatible_body_and_changes_nothing() {
    let s = stack();
    let u = s.new_user("0.001");
    let m = marker("poor");
    // Worst case: 1000 output tokens × 10 µ$ = $0.01 > $0.001.
    let r = s.chat(&u.key, &json!({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": m}], "max_tokens": 1000}));
    assert_eq!(r.status, 402, "{}", r.body);
    let error = &r.json()["error"];
    assert_eq!((error["code"].as_str(), error["type"].as_str(), error["balance"].as_f64()), (Some("INSUFFICIENT_CREDITS"), Some("insufficient_quota"), Some(0.001)));
    // It says what the request needs: its prompt bound and the 1000 asked tokens.
    let needed = error["needed"].as_f64().unwrap();
    assert!((0.01..0.02).contains(&needed), "needed {needed}");
    // The regexes older and newer CLI releases apply to the message:
    // `Balance:\s*\$?([\d.]+)` and `Insufficient credits\. Balance: \$(-?\d+(?:\.\d+)?)\.`.
    let message = error["message"].as_str().unwrap().to_string();
    assert!(message.starts_with("Insufficient credits. Balance: $0.001. "), "{message}");
    assert!(message.contains(&format!("needs at least ${needed}")) && message.contains("1000 output tokens"), "{message}");

    assert_eq!(s.upstream_calls(&m), 0);
    let user = s.user(&u.id);
    assert_eq!(user["balance_micros"], 1_000);
    assert_eq!(user["open_holds"], json!([]));
    assert_eq!(user["ledger_totals"]["entries"], 1, "only the credit");
    assert_eq!(user["usage_totals"]["requests"], 0);

    // A request the balance does cover still works.
    // (mock/output-only: free prompt; 50 × 20 µ$ = exactly the $0.001 there is)
    let ok = s.chat(&u.key, &json!({"model": "mock/output-only", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 50}));
    assert_eq!(ok.status, 200, "{}", ok.body);
}

#[test]
fn open_holds_count_against_the_balance() {
    let s = stack();
    let u = s.new_user("0.01");
    // A slow stream holds 800 × 10 µ$ = $0.008 of the $0.01 while it runs.
    let slow = json!({"model": "openai/gpt-4o", "stream": true, "max_tokens": 800,
        "messages": [{"role": "user", "content": "[[mock:delay_ms=1500,tokens=2]]"}]});
    let key = u.key.clone();
    let base = s.base.clone();
    let running = std::thread::spawn(move || {
        integration_tests::SseReader::open(&format!("{base}/v1/chat/completions"), &[("Authorization", &format!("Bearer {key}"))], slow.to_string().as_bytes()).collect()
    });
    s.eventually_user(&u.id, "the slow call's hold", |u| u["open_holds"].as_array().is_some_and(|h| h.len() == 1));
    let r = s.chat(&u.key, &json!({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "x"}], "max_tokens": 500}));
    assert_eq!(r.status, 402, "{}", r.body);
    let available = r.json()["error"]["balance"].as_f64().unwrap();
    assert!(available < 0.0021, "available = balance − hold, got {available}");
    assert!(!running.join().unwrap().is_empty());
}
