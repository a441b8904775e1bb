//! Usage insight from the ledger: after a scripted sequence of calls (stream,
//! non-stream, cancelled, needs_review, and an upstream error that costs
//! nothing) every view adds up exactly — `/me/usage` in both the CLI's and the
//! plan's shape, the history with its filters, the summaries, and the CSV and
//! JSON exports (CSV read with a real RFC 4180 parser).

use dexto_shared::money::Micros;
use dexto_shared::usage_report::CSV_HEADER;
use integration_tests::{marker, stack, Stack, TestUser};
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn usd(v: &Value) -> Micros {
    Micros::from_json_usd(v).unwrap_or_else(|e| panic!("{v} is not an exact USD amount: {e}"))
}

fn body(model: &str, content: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "max_tokens": 6, "messages": [{"role": "user", "content": content}]})
}

/// Runs the sequence; returns each billed request's id and price as the client saw it.
fn scripted_sequence(s: &Stack, u: &TestUser) -> Vec<(String, Option<Micros>)> {
    let mut seen = Vec::new();
    let r = s.chat(&u.key, &body("openai/gpt-4o", &marker("ns1"), false));
    assert_eq!(r.status, 200, "{}", r.body);
    seen.push((r.header("X-Dexto-Request-ID").unwrap().to_string(), Some(Micros::parse_usd_exact(r.header("X-Dexto-Cost-USD").unwrap()).unwrap())));

    let session = [("X-Dexto-Session-ID", "sess-1"), ("X-Dexto-Source", "cli"), ("X-Dexto-Version", "1.6.30")];
    let r = s.chat_raw(&u.key, body("anthropic/claude-haiku-4.5", &marker("ns2"), false).to_string().as_bytes(), &session);
    assert_eq!(r.status, 200, "{}", r.body);
    seen.push((r.header("X-Dexto-Request-ID").unwrap().to_string(), Some(Micros::parse_usd_exact(r.header("X-Dexto-Cost-USD").unwrap()).unwrap())));

    for (model, directive) in [("openai/gpt-4o-mini", ""), ("openai/gpt-4o", "[[mock:error_after=1]]")] {
        let reader = s.stream(&u.key, &body(model, &format!("{} {directive}", marker("st")), true));
        let id = reader.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("X-Dexto-Request-ID")).unwrap().1.clone();
        let events = reader.collect();
        let bill = events.iter().find_map(|(e, _)| e.strip_prefix(": dexto-cost usd=")).expect("bill comment");
        seen.push((id, Some(Micros::parse_usd_exact(bill.split_whitespace().next().unwrap()).unwrap())));
    }

    // Cancelled: the client leaves after the first frame; its price is only in the ledger.
    let mut reader = s.stream(&u.key, &body("openai/gpt-4o", &format!("{} [[mock:chunk_delay_ms=100,tokens=6]]", marker("cancel")), true));
    let id = reader.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("X-Dexto-Request-ID")).unwrap().1.clone();
    while integration_tests::client::sse_data(&reader.next_event().expect("a frame").0).is_none() {}
    drop(reader);
    seen.push((id, None));

    // An upstream failure: not billed, no ledger row.
    assert_eq!(s.chat(&u.key, &body("openai/gpt-4o", "[[mock:status=503]]", false)).status, 502);
    seen
}

fn assert_cli_shape(v: &Value) {
    assert!(v["credits_usd"].is_number(), "credits_usd");
    assert!(v["mtd_usage"]["total_cost_usd"].is_number() && v["mtd_usage"]["total_requests"].is_u64());
    for (model, m) in v["mtd_usage"]["by_model"].as_object().expect("by_model") {
        assert!(m["requests"].is_u64() && m["cost_usd"].is_number() && m["tokens"].is_u64(), "{model}: {m}");
    }
    for r in v["recent"].as_array().expect("recent") {
        assert!(dexto_shared::time::parse(r["timestamp"].as_str().unwrap()).is_some(), "{r}");
        assert!(r["model"].is_string() && r["cost_usd"].is_number() && r["input_tokens"].is_u64() && r["output_tokens"].is_u64(), "{r}");
    }
}

fn assert_plan_shape(v: &Value) {
    assert!(v["credits_cents"].is_i64());
    assert!(v["mtd_usage"]["cost_cents"].is_number() && v["mtd_usage"]["requests"].is_u64());
    for r in v["recent"].as_array().unwrap() {
        assert!(dexto_shared::time::parse(r["ts"].as_str().unwrap()).is_some(), "{r}");
        assert!(r["model"].is_string() && r["cost_cents"].is_number() && r["input_tokens"].is_u64() && r["output_tokens"].is_u64(), "{r}");
    }
}

#[test]
fn every_view_adds_up_exactly_after_a_scripted_sequence() {
    let s = stack();
    let u = s.new_user("5");
    let seen = scripted_sequence(s, &u);
    let admin = s.settled_user(&u.id, 5);
    let ledger: BTreeMap<String, Value> =
        admin["recent_usage"].as_array().unwrap().iter().map(|r| (r["request_id"].as_str().unwrap().to_string(), r.clone())).collect();
    let mut total = Micros::ZERO;
    for (id, client_price) in &seen {
        let row = ledger.get(id).unwrap_or_else(|| panic!("{id} in the ledger"));
        let price = Micros(row["user_price_micros"].as_i64().unwrap());
        if let Some(p) = client_price {
            assert_eq!(*p, price, "{id}: what the client was told = what the ledger says");
        }
        total = total.saturating_add(price);
    }
    assert!(total > Micros::ZERO);
    let balance = Micros(5_000_000).saturating_sub(total);
    assert_eq!(admin["balance_micros"], balance.0);

    // /me/usage and /api/account/usage: one object, both shapes, exact.
    let me = s.usage(&u.key, "/me/usage");
    assert_eq!(me.status, 200, "{}", me.body);
    let v = me.json();
    assert_eq!(v, s.usage(&u.key, "/api/account/usage").json());
    assert_cli_shape(&v);
    assert_plan_shape(&v);
    assert_eq!(usd(&v["credits_usd"]), balance);
    assert_eq!(v["credits_cents"], balance.whole_cents_floor());
    assert_eq!(usd(&v["mtd_usage"]["total_cost_usd"]), total);
    assert_eq!((v["mtd_usage"]["total_requests"].as_u64(), v["mtd_usage"]["requests"].as_u64()), (Some(5), Some(5)));
    assert_eq!(v["mtd_usage"]["cost_cents"], total.as_json_cents());
    let gpt = &v["mtd_usage"]["by_model"]["openai/gpt-4o"];
    assert_eq!(gpt["requests"], 3);
    let gpt_rows: Vec<&Value> = ledger.values().filter(|r| r["model"] == "openai/gpt-4o").collect();
    let gpt_cost = Micros(gpt_rows.iter().map(|r| r["user_price_micros"].as_i64().unwrap()).sum());
    assert_eq!(usd(&gpt["cost_usd"]), gpt_cost);
    let gpt_tokens: i64 = gpt_rows.iter().map(|r| r["prompt_tokens"].as_i64().unwrap() + r["completion_tokens"].as_i64().unwrap()).sum();
    assert_eq!(gpt["tokens"], gpt_tokens);
    assert_eq!(v["mtd_usage"]["by_model"].as_object().unwrap().len(), 3);

    // History: newest first, every row, flags and filters.
    let history = s.usage(&u.key, "/me/usage/history").json();
    let rows = history["data"].as_array().unwrap();
    assert_eq!((rows.len(), history["has_more"].as_bool()), (5, Some(false)));
    let recent = v["recent"].as_array().unwrap();
    for (r, h) in recent.iter().zip(rows) {
        assert_eq!((r["request_id"].clone(), r["model"].clone()), (h["request_id"].clone(), h["model"].clone()));
        assert_eq!(usd(&r["cost_usd"]), Micros::parse_usd_exact(h["user_price_usd"].as_str().unwrap()).unwrap());
        assert_eq!((r["input_tokens"].clone(), r["output_tokens"].clone()), (h["input_tokens"].clone(), h["output_tokens"].clone()));
        assert!(h["timestamp"].as_str().unwrap().starts_with(&r["ts"].as_str().unwrap()[..19]));
    }
    let by_id = |id: &str| rows.iter().find(|h| h["request_id"] == id).unwrap();
    let (cancelled, review) = (by_id(&seen[4].0), by_id(&seen[3].0));
    assert_eq!((cancelled["stream"].as_bool(), cancelled["cancelled"].as_bool()), (Some(true), Some(true)));
    assert_eq!((review["billing_status"].as_str(), review["price_basis"].as_str()), (Some("needs_review"), Some("estimate")));
    let session_row = by_id(&seen[1].0);
    assert_eq!((session_row["session_id"].as_str(), session_row["client_source"].as_str(), session_row["client_version"].as_str()), (Some("sess-1"), Some("cli"), Some("1.6.30")));
    for (query, n) in [
        ("model=openai/gpt-4o", 3),
        ("status=needs_review", 1),
        ("session=sess-1", 1),
        (&format!("key={}", u.key_id) as &str, 5),
        ("key=key_someone_else", 0),
        ("from=2999-01-01", 0),
        ("to=2000-01-01", 0),
    ] {
        let r = s.usage(&u.key, &format!("/me/usage/history?{query}"));
        assert_eq!(r.json()["data"].as_array().map(Vec::len), Some(n), "{query}: {}", r.body);
    }

    // Summaries: every grouping totals to the same exact amount.
    for group in ["model", "day", "key"] {
        let sum = s.usage(&u.key, &format!("/me/usage/summary?group_by={group}")).json();
        assert_eq!(sum["total"]["user_price_usd"], total.usd_fixed(), "{group}");
        assert_eq!(sum["total"]["requests"], 5);
        let parts: i64 = sum["data"].as_array().unwrap().iter().map(|g| Micros::parse_usd_exact(g["user_price_usd"].as_str().unwrap()).unwrap().0).sum();
        assert_eq!(parts, total.0, "{group}");
        assert_eq!(sum["total"]["needs_review"], 1);
    }
    let by_model = s.usage(&u.key, "/me/usage/summary?group_by=model").json();
    let gpt_group = by_model["data"].as_array().unwrap().iter().find(|g| g["model"] == "openai/gpt-4o").unwrap();
    assert_eq!((gpt_group["requests"].as_i64(), gpt_group["user_price_usd"].as_str()), (Some(3), Some(gpt_cost.usd_fixed().as_str())));
    let by_key = s.usage(&u.key, "/me/usage/summary?group_by=key").json();
    assert_eq!(by_key["data"][0]["key_id"], u.key_id.as_str());

    // CSV export: RFC 4180 (CRLF, header row), parsed with a real parser; sums match.
    let export = s.usage(&u.key, "/me/usage/export?format=csv");
    assert_eq!(export.status, 200, "{}", export.body);
    assert!(export.header("content-type").unwrap().starts_with("text/csv"));
    assert!(export.header("content-disposition").unwrap().starts_with("attachment; filename=\"dexto-usage-"));
    assert!(export.body.ends_with("\r\n") && export.body.matches("\r\n").count() == 6, "CRLF records");
    let mut reader = csv::Reader::from_reader(export.body.as_bytes());
    assert_eq!(reader.headers().unwrap().iter().collect::<Vec<_>>(), CSV_HEADER);
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("valid CSV record")).collect();
    assert_eq!(records.len(), 5);
    let col = |name: &str| CSV_HEADER.iter().position(|h| *h == name).unwrap();
    let csv_total: i64 = records.iter().map(|r| Micros::parse_usd_exact(&r[col("user_price_usd")]).unwrap().0).sum();
    assert_eq!(csv_total, total.0);
    let csv_cancelled = records.iter().find(|r| r[col("request_id")] == seen[4].0).unwrap();
    assert_eq!((&csv_cancelled[col("stream")], &csv_cancelled[col("cancelled")]), ("true", "true"));
    assert!(records.iter().any(|r| &r[col("session_id")] == "sess-1"));

    // JSON export: the same rows.
    let export = s.usage(&u.key, "/me/usage/export?format=json").json();
    let data = export["data"].as_array().unwrap();
    assert_eq!(data.len(), 5);
    let json_total: i64 = data.iter().map(|r| Micros::parse_usd_exact(r["user_price_usd"].as_str().unwrap()).unwrap().0).sum();
    assert_eq!(json_total, total.0);
}
