//! Streaming: frames pass through as they arrive, the bill arrives as an SSE
//! comment before [DONE], and a client that disconnects is still billed for
//! what the upstream reports.

use dexto_shared::money::{Micros, Picos};
use integration_tests::client::sse_data;
use integration_tests::{marker, stack};
use serde_json::{json, Value};
use std::time::Duration;

fn data_events(events: &[(String, Duration)]) -> Vec<(Value, Duration)> {
    events
        .iter()
        .filter_map(|(e, t)| sse_data(e).and_then(|d| serde_json::from_str(d.trim()).ok()).map(|v| (v, *t)))
        .collect()
}

#[test]
fn frames_pass_through_unbuffered_and_the_bill_precedes_done() {
    let s = stack();
    let u = s.new_user("1");
    let m = marker("stream");
    let body = json!({"model": "openai/gpt-4o", "stream": true, "max_tokens": 4, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": format!("{m} [[mock:chunk_delay_ms=300,tokens=4]]")}]});
    let reader = s.stream(&u.key, &body);
    assert_eq!(reader.status, 200);
    assert!(reader.headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("content-type") && v.starts_with("text/event-stream")));
    let events = reader.collect();

    let data = data_events(&events);
    let content: Vec<_> = data.iter().filter(|(v, _)| v.pointer("/choices/0/delta/content").is_some()).collect();
    assert_eq!(content.len(), 4);
    // The mock waits 300 ms between frames; a buffering proxy would deliver them together.
    let spread = content[3].1 - content[0].1;
    assert!(spread >= Duration::from_millis(600), "frames arrived within {spread:?}: buffered");

    let n = events.len();
    assert_eq!(sse_data(&events[n - 1].0), Some("[DONE]"));
    let bill = events[n - 2].0.trim();
    assert!(bill.starts_with(": dexto-cost usd="), "bill comment before [DONE]: {bill}");
    let usage = data.iter().rev().find_map(|(v, _)| v.get("usage").cloned()).expect("usage frame forwarded");
    let price = Picos::parse_usd(&usage["cost"].to_string()).unwrap().ceil_micros();
    assert!(bill.contains(&format!("usd={}", price.usd_fixed())), "{bill}");
    let balance = Micros(1_000_000 - price.0);
    assert!(bill.contains(&format!("credits_remaining_cents={}", balance.whole_cents_floor())), "{bill}");

    let user = s.user(&u.id);
    assert_eq!(user["balance_micros"], balance.0);
    assert_eq!(user["ledger_totals"]["net_micros"], balance.0);
    let row = &user["recent_usage"][0];
    assert_eq!((row["stream"].as_i64(), row["cancelled"].as_i64(), row["completion_tokens"].as_i64()), (Some(1), Some(0), Some(4)));
    assert_eq!(user["open_holds"], json!([]));
}

#[test]
fn openai_style_usage_frames_are_billed_too() {
    let s = stack();
    let u = s.new_user("1");
    let body = json!({"model": "openai/gpt-4o", "stream": true, "max_tokens": 3,
        "messages": [{"role": "user", "content": "[[mock:openai_usage=1]]"}]});
    let events = s.stream(&u.key, &body).collect();
    assert_eq!(sse_data(&events.last().unwrap().0), Some("[DONE]"));
    let user = s.user(&u.id);
    let row = &user["recent_usage"][0];
    assert_eq!((row["billing_status"].as_str(), row["price_basis"].as_str()), (Some("billed"), Some("reported_cost")));
    assert_eq!(row["completion_tokens"], 3);
}

#[test]
fn a_client_that_disconnects_is_still_billed_for_the_upstream_usage() {
    let s = stack();
    let u = s.new_user("1");
    let m = marker("cancel");
    let body = json!({"model": "openai/gpt-4o", "stream": true, "max_tokens": 10,
        "messages": [{"role": "user", "content": format!("{m} [[mock:chunk_delay_ms=150,tokens=10]]")}]});
    let mut reader = s.stream(&u.key, &body);
    let first = loop {
        let (event, _) = reader.next_event().expect("a frame");
        if sse_data(&event).is_some() {
            break event;
        }
    };
    assert!(first.contains("tok0"));
    drop(reader); // the client goes away after one frame

    // The gateway keeps draining the upstream, which bills all 10 tokens.
    let content = format!("{m} [[mock:chunk_delay_ms=150,tokens=10]]");
    let expected = Picos((content.len() as i128 + 3) / 4 * 2_500_000 + 10 * 10_000_000).ceil_micros();
    let user = s.eventually_user(&u.id, "the cancelled stream's settlement", |u| u["usage_totals"]["requests"] == 1);
    let row = &user["recent_usage"][0];
    assert_eq!(row["cancelled"], 1, "{row}");
    assert_eq!(row["completion_tokens"], 10);
    assert_eq!(row["user_price_micros"], expected.0);
    assert_eq!(user["balance_micros"], 1_000_000 - expected.0);
    assert_eq!(user["open_holds"], json!([]));
    assert_eq!(s.upstream_calls(&m), 1);
}

#[test]
fn one_event_larger_than_the_client_buffer_reaches_a_reading_client_whole() {
    let s = stack();
    let u = s.new_user("1");
    // An image model's reply: a 3 MiB base64 image in one SSE event (the buffer is 1 MiB).
    let image = 3 * 1024 * 1024;
    let body = json!({"model": "openai/gpt-4o", "stream": true, "max_tokens": 5,
        "messages": [{"role": "user", "content": format!("[[mock:image_bytes={image},tokens=2]]")}]});
    let reader = s.stream(&u.key, &body);
    assert_eq!(reader.status, 200);
    let request_id = reader.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("X-Dexto-Request-ID")).unwrap().1.clone();
    let events = reader.collect();
    let contents: Vec<usize> = data_events(&events).iter().filter_map(|(v, _)| v.pointer("/choices/0/delta/content").and_then(Value::as_str).map(str::len)).collect();
    assert_eq!(contents.first(), Some(&image), "the image arrived whole: {contents:?}");
    let n = events.len();
    assert_eq!(sse_data(&events[n - 1].0), Some("[DONE]"), "the stream ran to its end");
    assert!(events[n - 2].0.starts_with(": dexto-cost usd="), "and was billed: {}", events[n - 2].0);
    let line = s.log_line(&["chat.completion", &request_id]);
    let line: Value = serde_json::from_str(&line[line.find('{').unwrap()..]).unwrap();
    assert_eq!(line["client_cut_off"], false, "{line}");
}

#[test]
fn a_stream_that_cannot_be_set_up_releases_its_hold() {
    let s = stack();
    let u = s.new_user("1");
    let m = marker("nobody");
    // The upstream answers 204 No Content: there is no body to stream.
    let body = json!({"model": "openai/gpt-4o", "stream": true, "max_tokens": 5,
        "messages": [{"role": "user", "content": format!("{m} [[mock:no_content=1]]")}]});
    let r = s.chat(&u.key, &body);
    assert_eq!(s.upstream_calls(&m), 1);
    let user = s.user(&u.id);
    assert_eq!(user["open_holds"], json!([]), "released at once, not left live for every sweep to extend");
    assert_eq!((user["balance_micros"].as_i64(), user["usage_totals"]["requests"].as_u64()), (Some(1_000_000), Some(0)), "nothing charged");
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (502, Some("upstream_unavailable")), "{}", r.body);
    // The released request no longer counts toward the requests in flight.
    let again = s.stream(&u.key, &json!({"model": "openai/gpt-4o", "stream": true, "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]}));
    assert_eq!(again.status, 200);
    assert!(again.collect().last().is_some_and(|(e, _)| sse_data(e) == Some("[DONE]")));
}
