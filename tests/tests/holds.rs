//! Every hold is a true upper bound and ends in exactly one settlement
//! (issue 8): clamped output forwarded upstream, a charge never above its
//! hold, holds that outlive their TTL while the exchange runs, an owner that
//! dies mid-stream settled by the sweep from the upstream's generation record,
//! and bounded memory for a client that stops reading.
//!
//! This file's stack: HOLD_TTL_SECONDS=2 (the sweep comes by quickly) and the
//! test hook that lets an exchange's owner "die" (DEXTO_TEST_HOOKS=1).

use integration_tests::{get, marker, Stack};
use serde_json::{json, Value};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::Duration;

fn stack() -> &'static Stack {
    static S: OnceLock<Stack> = OnceLock::new();
    S.get_or_init(|| integration_tests::start(&[("HOLD_TTL_SECONDS", "2"), ("DEXTO_TEST_HOOKS", "1")]))
}

/// The upstream request bodies the mock received for `marker`.
fn upstream_bodies(s: &Stack, marker: &str) -> Vec<Value> {
    let r = get(&format!("{}/__mock/requests?contains={marker}", s.mock));
    r.json()["requests"].as_array().unwrap().iter().filter_map(|q| serde_json::from_str(q["body"].as_str()?).ok()).collect()
}

/// The settled usage rows of a user (D1, through the admin view's ledger).
fn settled_lines(s: &Stack, request_ids: &[String]) -> Vec<Value> {
    request_ids
        .iter()
        .map(|id| {
            let line = s.log_line(&["chat.completion", id.as_str()]);
            serde_json::from_str(&line[line.find('{').unwrap()..]).unwrap()
        })
        .collect()
}

fn parallel(s: &'static Stack, key: &str, body: &Value, n: usize) -> Vec<integration_tests::HttpResponse> {
    let barrier = Arc::new(Barrier::new(n));
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let (barrier, key, body) = (barrier.clone(), key.to_string(), body.clone());
                scope.spawn(move || {
                    barrier.wait();
                    s.chat(&key, &body)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn check_books(s: &Stack, user_id: &str, requests: u64) -> Value {
    s.books_balanced(user_id, requests)
}

#[test]
fn parallel_calls_on_a_small_wallet_never_overdraw_it() {
    let s = stack();
    for (name, extra) in [("nomax", json!({})), ("max1", json!({"max_tokens": 1}))] {
        let u = s.new_user("0.05");
        let m = marker(name);
        let mut body = json!({"model": "anthropic/claude-haiku-4.5", "messages": [{"role": "user", "content": format!("{m} hello")}]});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let replies = parallel(s, &u.key, &body, 20);
        let ok: Vec<_> = replies.iter().filter(|r| r.status == 200).collect();
        assert!(!ok.is_empty() && replies.iter().all(|r| r.status == 200 || r.status == 402), "{name}");
        let ids: Vec<String> = ok.iter().map(|r| r.header("X-Dexto-Request-ID").unwrap().to_string()).collect();
        check_books(s, &u.id, ok.len() as u64);
        for line in settled_lines(s, &ids) {
            assert!(line["price_micros"].as_i64() <= line["hold_micros"].as_i64(), "{line}");
        }
        // Every forwarded body carried the ceiling its hold covers.
        for (upstream, reply) in upstream_bodies(s, &m).iter().zip(&ok) {
            let _ = reply;
            assert!(upstream["max_tokens"].as_u64().is_some_and(|t| t >= 1), "{upstream}");
        }
    }
}

#[test]
fn an_upstream_that_ignores_max_tokens_cannot_take_the_wallet_below_zero() {
    let s = stack();
    let u = s.new_user("0.05");
    let m = marker("ignore");
    let body = json!({"model": "anthropic/claude-haiku-4.5", "messages": [{"role": "user", "content": format!("{m} [[mock:tokens=20000,ignore_max=1]]")}]});
    let replies = parallel(s, &u.key, &body, 20);
    let ok: Vec<_> = replies.iter().filter(|r| r.status == 200).collect();
    assert!(!ok.is_empty());
    let user = check_books(s, &u.id, ok.len() as u64);
    assert_eq!(user["ledger_totals"]["net_micros"], user["balance_micros"], "Σ ledger == balance");
    let ids: Vec<String> = ok.iter().map(|r| r.header("X-Dexto-Request-ID").unwrap().to_string()).collect();
    for line in settled_lines(s, &ids) {
        // 20,000 × 5 µ$ = $0.10 reported; never more than the hold charged, the rest recorded.
        assert_eq!(line["price_micros"], line["hold_micros"], "{line}");
        assert!(line["excess_micros"].as_i64().unwrap() > 0, "{line}");
        assert_eq!(line["billing_status"], "needs_review", "{line}");
        assert!(line["provider_cost_micros"].as_i64().unwrap() >= 100_000, "the reported cost stays visible: {line}");
    }
}

#[test]
fn the_cli_case_is_clamped_to_the_wallet_instead_of_refused() {
    let s = stack();
    let u = s.new_user("0.05");
    let m = marker("cli");
    // No max_tokens, streaming, a few KB of tool definitions: what the Dexto CLI sends.
    let tools: Vec<Value> = (0..20)
        .map(|i| json!({"type": "function", "function": {"name": format!("tool_{i}"), "description": "x".repeat(200), "parameters": {"type": "object", "properties": {}}}}))
        .collect();
    let body = json!({"model": "anthropic/claude-haiku-4.5", "stream": true, "tools": tools, "messages": [{"role": "user", "content": format!("{m} say hi")}]});
    let mut sse = s.stream(&u.key, &body);
    assert_eq!(sse.status, 200);
    let header = |name: &str| sse.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    let ceiling: u64 = header("X-Dexto-Max-Tokens").unwrap().parse().unwrap();
    assert!(ceiling > 1_024 && ceiling < 64_000, "clamped below the model's 64k: {ceiling}");
    assert_eq!(header("X-Dexto-Output-Clamped").as_deref(), Some("balance"));
    while sse.next_event().is_some() {}
    assert_eq!(upstream_bodies(s, &m)[0]["max_tokens"], ceiling, "the upstream was told the ceiling");
    let user = check_books(s, &u.id, 1);
    assert!(user["balance_micros"].as_i64().unwrap() < 50_000);
}

#[test]
fn a_100kb_prompt_on_an_uncapped_model_is_covered_by_its_hold() {
    let s = stack();
    let u = s.new_user("1");
    let m = marker("big");
    let prompt = format!("{m} {}", "lorem ipsum ".repeat(8_500));
    let r = s.chat(&u.key, &json!({"model": "mock/no-max", "messages": [{"role": "user", "content": prompt}]}));
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.header("X-Dexto-Request-ID").unwrap().to_string();
    assert_eq!(r.header("X-Dexto-Max-Tokens"), Some("1024"), "never collapses to 1 token");
    let line = &settled_lines(s, &[id])[0];
    assert!(line["prompt_tokens"].as_u64().unwrap() > 25_000, "{line}");
    assert!(line["price_micros"].as_i64() <= line["hold_micros"].as_i64(), "{line}");
    assert_eq!(line["billing_status"], "billed", "{line}");
}

#[test]
fn images_files_and_plugins_are_priced_or_refused_before_any_upstream_call() {
    let s = stack();
    let u = s.new_user("1");
    let m = marker("media");
    let image = json!({"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}});
    let text = json!({"type": "text", "text": m});
    let refused = [
        (json!({"model": "anthropic/claude-haiku-4.5", "messages": [{"role": "user", "content": [text, image]}]}), "does not accept image input"),
        (json!({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": [text, {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,AA"}}]}]}), "`file` content parts"),
        (json!({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": [text, {"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}}]}]}), "`input_audio`"),
        (json!({"model": "openai/gpt-4o", "plugins": [{"id": "web"}], "messages": [{"role": "user", "content": m}]}), "`plugins`"),
        (json!({"model": "openai/gpt-4o", "web_search_options": {"search_context_size": "low"}, "messages": [{"role": "user", "content": m}]}), "`web_search_options`"),
    ];
    for (body, needle) in refused {
        let r = s.chat(&u.key, &body);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(r.json()["error"]["message"].as_str().unwrap().contains(needle), "{}", r.body);
    }
    assert_eq!(s.upstream_calls(&m), 0);
    // An image on a model that takes images is priced by its bound.
    let r = s.chat(&u.key, &json!({"model": "openai/gpt-4o", "max_tokens": 10, "messages": [{"role": "user", "content": [text, image]}]}));
    assert_eq!(r.status, 200, "{}", r.body);
    let line = &settled_lines(s, &[r.header("X-Dexto-Request-ID").unwrap().to_string()])[0];
    // 6,000 tokens × 2.5 µ$ + $0.003613 per image are inside the hold.
    assert!(line["hold_micros"].as_i64().unwrap() > 15_000 + 3_613, "{line}");
}

#[test]
fn a_stream_outliving_its_ttl_keeps_its_money_reserved() {
    let s = stack();
    let u = s.new_user("0.01");
    // ~5 s of stream, TTL 2 s: holds 800 × 10 µ$ + prompt of the $0.01.
    let slow = json!({"model": "openai/gpt-4o", "stream": true, "max_tokens": 800,
        "messages": [{"role": "user", "content": "[[mock:tokens=10,chunk_delay_ms=500]]"}]});
    let (key, base) = (u.key.clone(), s.base.clone());
    let running = std::thread::spawn(move || {
        integration_tests::SseReader::open(&format!("{base}/v1/chat/completions"), &[("Authorization", &format!("Bearer {key}"))], slow.to_string().as_bytes()).collect()
    });
    s.eventually_user(&u.id, "the slow call's hold", |u| u["open_holds"].as_array().is_some_and(|h| h.len() == 1));
    std::thread::sleep(Duration::from_millis(3_000)); // past the TTL, the sweep has run
    let user = s.user(&u.id);
    assert_eq!(user["open_holds"].as_array().unwrap().len(), 1, "still reserved: {user:#}");
    assert_eq!(user["usage_totals"]["requests"], 0, "not settled by the sweep while it runs");
    let r = s.chat(&u.key, &json!({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "x"}], "max_tokens": 500}));
    assert_eq!(r.status, 402, "the reserved money cannot be spent twice: {}", r.body);
    let events = running.join().unwrap();
    assert!(events.iter().any(|(e, _)| e.contains("[DONE]")));
    let user = check_books(s, &u.id, 1);
    assert_eq!(user["ledger_totals"]["net_micros"], user["balance_micros"]);
}

#[test]
fn an_exchange_whose_owner_dies_is_settled_once_from_the_generation_record() {
    let s = stack();
    let u = s.new_user("1");
    let body = json!({"model": "openai/gpt-4o-mini", "stream": true,
        "messages": [{"role": "user", "content": "[[mock:tokens=20,chunk_delay_ms=30]]"}]});
    let auth = format!("Bearer {}", u.key);
    let mut sse = integration_tests::SseReader::open(
        &format!("{}/v1/chat/completions", s.base),
        &[("Authorization", &auth), ("X-Dexto-Test-Die-After-Events", "3")],
        body.to_string().as_bytes(),
    );
    let mut generation = None;
    while let Some((event, _)) = sse.next_event() {
        if let Some(id) = event.split("\"id\":\"").nth(1).and_then(|rest| rest.split('"').next()) {
            generation.get_or_insert(id.to_string());
        }
        assert!(!event.contains("dexto-cost"), "the dead owner sent no bill");
    }
    let generation = generation.expect("a chunk with the generation id");
    // The sweep (alarm at the 2 s deadline) settles it from GET /generation.
    let user = s.settled_user(&u.id, 1);
    let record = integration_tests::get_with(&format!("{}/generation?id={generation}", s.mock), &[("Authorization", "Bearer test")]);
    let record = &record.json()["data"];
    let usage = &user["recent_usage"][0];
    assert_eq!(usage["completion_tokens"], record["tokens_completion"], "{user:#}");
    assert_eq!(usage["completion_tokens"], 20);
    let cost = dexto_shared::money::Picos::parse_usd(&record["total_cost"].to_string()).unwrap().ceil_micros();
    assert_eq!(usage["user_price_micros"], cost.0, "exact, from the upstream record: {usage}");
    assert_eq!(user["open_holds"], json!([]));
    let line = s.log_line(&["chat.completion", "\"settled_by\":\"sweep\"", &generation]);
    assert!(line.contains("\"billing_status\":\"billed\""), "{line}");
    // A second sweep finds nothing: exactly once.
    let again = s.admin("POST", &format!("/admin/users/{}/holds/sweep", u.id), None);
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!((again.json()["settled"].as_u64(), again.json()["provisional"].as_u64()), (Some(0), Some(0)));
    let user = s.user(&u.id);
    assert_eq!(user["usage_totals"]["requests"], 1);
    assert_eq!(user["ledger_totals"]["net_micros"], user["balance_micros"]);
}

#[test]
fn a_client_that_stops_reading_is_cut_off_while_the_upstream_is_billed() {
    let s = stack();
    let u = s.new_user("5");
    // 12,000 tokens of 4 KiB each: ~50 MB, far more than socket buffers hold.
    let body = json!({"model": "openai/gpt-4o-mini", "stream": true, "max_tokens": 20000,
        "messages": [{"role": "user", "content": "[[mock:tokens=12000,pad=4096]]"}]});
    let mut sse = s.stream(&u.key, &body);
    assert_eq!(sse.status, 200);
    let id = sse.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("X-Dexto-Request-ID")).unwrap().1.clone();
    // Read nothing until the exchange has been settled without us.
    let line = s.log_line(&["chat.completion", id.as_str()]);
    let line: Value = serde_json::from_str(&line[line.find('{').unwrap()..]).unwrap();
    assert_eq!(line["client_cut_off"], true, "{line}");
    let peak = line["peak_buffered_bytes"].as_u64().unwrap();
    assert!(peak <= 1024 * 1024, "bounded: {peak}");
    assert_eq!(line["completion_tokens"], 12000, "the upstream was drained and billed in full: {line}");
    assert_eq!(line["price_basis"], "reported_cost");
    assert_eq!(line["cancelled"], true);
    let mut saw_done = false;
    while let Some((event, _)) = sse.next_event() {
        saw_done |= event.contains("[DONE]");
    }
    assert!(!saw_done, "the cut-off client never got the end of the stream");
    check_books(s, &u.id, 1);
}

#[test]
fn an_owner_that_dies_before_the_generation_is_named_leaves_a_provisional_charge() {
    let s = stack();
    let u = s.new_user("1");
    let (hold, user) = s.orphan_before_generation_id(&u);
    let usage = &user["recent_usage"][0];
    assert_eq!(usage["user_price_micros"], hold, "the whole hold, provisionally: {usage}");
    assert_eq!((usage["billing_status"].as_str(), usage["price_basis"].as_str()), (Some("needs_review"), Some("estimate")));
    assert_eq!(user["open_holds"], json!([]));
    assert_eq!(user["ledger_totals"]["net_micros"], user["balance_micros"]);
}

#[test]
fn a_restart_mid_stream_is_settled_from_the_generation_record_on_the_same_state() {
    let vars = [("HOLD_TTL_SECONDS", "2")];
    let s = integration_tests::start(&vars);
    let u = s.new_user("1");
    let body = json!({"model": "openai/gpt-4o-mini", "stream": true,
        "messages": [{"role": "user", "content": "[[mock:tokens=40,chunk_delay_ms=100]]"}]});
    let mut sse = s.stream(&u.key, &body);
    let mut generation = None;
    while generation.is_none() {
        let (event, _) = sse.next_event().expect("the stream has begun");
        generation = event.split("\"id\":\"").nth(1).and_then(|rest| rest.split('"').next()).map(str::to_string);
    }
    let generation = generation.unwrap();
    // Kill every Worker and object mid-stream; start again on the same storage.
    let s = s.restart(&vars);
    let user = s.settled_user(&u.id, 1);
    let record = integration_tests::get_with(&format!("{}/generation?id={generation}", s.mock), &[("Authorization", "Bearer test")]).json();
    let usage = &user["recent_usage"][0];
    assert_eq!(usage["completion_tokens"], record["data"]["tokens_completion"], "{user:#}");
    let cost = dexto_shared::money::Picos::parse_usd(&record["data"]["total_cost"].to_string()).unwrap().ceil_micros();
    assert_eq!(usage["user_price_micros"], cost.0, "{usage}");
    assert_eq!(usage["billing_status"], "billed");
    let again = s.admin("POST", &format!("/admin/users/{}/holds/sweep", u.id), None);
    assert_eq!((again.json()["settled"].as_u64(), again.json()["provisional"].as_u64()), (Some(0), Some(0)));
    assert_eq!(s.user(&u.id)["usage_totals"]["requests"], 1, "exactly once");
}

#[test]
fn a_messages_exchange_whose_owner_dies_is_settled_from_the_generation_record() {
    let s = stack();
    let u = s.new_user("5");
    let body = json!({"model": "anthropic/claude-haiku-4.5", "max_tokens": 40, "stream": true, "messages": [{"role": "user", "content": "[[mock:tokens=20,chunk_delay_ms=30]]"}]});
    let auth = format!("Bearer {}", u.key);
    let sse = integration_tests::SseReader::open(
        &format!("{}/v1/messages", s.base),
        &[("Authorization", &auth), ("Content-Type", "application/json"), ("X-Dexto-Test-Die-After-Events", "3")],
        body.to_string().as_bytes(),
    );
    let events = sse.collect();
    assert!(events.iter().all(|(e, _)| !e.contains("dexto-cost")), "the dead owner sent no bill: {events:?}");
    let data = |e: &str| e.lines().find_map(|l| l.strip_prefix("data: ")).map(str::to_string);
    let start: Value = events.iter().find_map(|(e, _)| serde_json::from_str::<Value>(&data(e)?).ok().filter(|v| v["type"] == "message_start")).expect("message_start");
    // `msg_gen-…` wraps OpenRouter's generation id, which the sweep looks up.
    let generation = start["message"]["id"].as_str().unwrap().strip_prefix("msg_").expect("msg_gen-…").to_string();
    let user = s.settled_user(&u.id, 1);
    let row = user["recent_usage"][0].clone();
    let price = row["user_price_micros"].as_i64().unwrap();
    assert_eq!(user["balance_micros"], 5_000_000 - price);
    let record = integration_tests::get_with(&format!("{}/generation?id={generation}", s.mock), &[("Authorization", "Bearer test")]).json()["data"].clone();
    assert_eq!((row["completion_tokens"].clone(), row["api"].as_str()), (record["tokens_completion"].clone(), Some("messages")), "{row}");
    let cost = dexto_shared::money::Picos::parse_usd(&record["total_cost"].to_string()).unwrap().ceil_micros();
    assert_eq!(price, cost.0, "exact, from the upstream's record");
    assert!(s.log_line(&["chat.completion", "\"settled_by\":\"sweep\"", &generation]).contains("\"billing_status\":\"billed\""));
}

#[test]
fn a_settlement_that_fails_midway_is_undone_whole_and_the_sweep_bills_the_hold_once() {
    let s = stack();
    let u = s.new_user("1");
    let cap = s.admin("PUT", &format!("/admin/users/{}/caps", u.id), Some(json!({"window": "lifetime", "limit_usd": 0.5})));
    assert_eq!(cap.status, 200, "{}", cap.body);
    let body = json!({"model": "openai/gpt-4o-mini", "stream": true, "max_tokens": 100, "messages": [{"role": "user", "content": "[[mock:tokens=20]]"}]});
    let auth = format!("Bearer {}", u.key);
    // The owner's settlement ends the hold and counts the spending, then fails before the debit.
    let sse = integration_tests::SseReader::open(
        &format!("{}/v1/chat/completions", s.base),
        &[("Authorization", &auth), ("Content-Type", "application/json"), ("X-Dexto-Test-Fail-Settlement", "1")],
        body.to_string().as_bytes(),
    );
    let events = sse.collect();
    let generation = events.iter().find_map(|(e, _)| e.split("\"id\":\"").nth(1).and_then(|rest| rest.split('"').next()).map(str::to_string)).expect("a generation id");
    s.log_line(&["settle.failed", "the settlement failed midway"]);
    // Undone whole: the hold is still there for the sweep, which bills it by
    // the upstream's record, once, and the spending counts once.
    let user = s.books_balanced(&u.id, 1);
    let row = &user["recent_usage"][0];
    let record = integration_tests::get_with(&format!("{}/generation?id={generation}", s.mock), &[("Authorization", "Bearer test")]).json()["data"].clone();
    let price = dexto_shared::money::Picos::parse_usd(&record["total_cost"].to_string()).unwrap().ceil_micros().0;
    assert_eq!((row["user_price_micros"].as_i64(), row["billing_status"].as_str()), (Some(price), Some("billed")), "{row}");
    assert_eq!(user["balance_micros"], 1_000_000 - price);
    let spent = dexto_shared::money::Picos::parse_usd(&user["caps"][0]["spent_usd"].to_string()).unwrap().ceil_micros().0;
    assert_eq!(spent, price, "the failed attempt's spending was undone with it: {:#}", user["caps"]);
    assert!(s.log_line(&["chat.completion", "\"settled_by\":\"sweep\"", &generation]).contains("\"billing_status\":\"billed\""));
}
