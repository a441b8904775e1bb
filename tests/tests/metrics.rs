//! `GET /admin/metrics`: settled requests, revenue, provider cost and margin
//! by day and by model, latency percentiles by model, requests by upstream
//! status — all from the ledger, matching what was billed.

use integration_tests::{get_with, Stack};
use serde_json::json;

#[test]
fn operators_see_revenue_cost_margin_and_latency_by_model_and_day() {
    // Its own stack: the totals cover every user of the stack.
    let s: Stack = integration_tests::start(&[("PRICE_MARKUP", "1.5")]);
    let u = s.new_user("1");
    let call = |model: &str, fault: &str| s.chat(&u.key, &json!({"model": model, "max_tokens": 5, "messages": [{"role": "user", "content": format!("hi {fault}")}]}));
    let mut prices = 0i64;
    for (model, fault) in [("openai/gpt-4o-mini", ""), ("openai/gpt-4o-mini", ""), ("openai/gpt-4o-mini", "[[mock:delay_ms=400]]"), ("anthropic/claude-haiku-4.5", "")] {
        let r = call(model, fault);
        assert_eq!(r.status, 200, "{}", r.body);
        prices += dexto_shared::money::Micros::parse_usd_exact(r.header("X-Dexto-Cost-USD").unwrap()).unwrap().0;
    }
    assert_eq!(call("openai/gpt-4o-mini", "[[mock:status=503]]").status, 502, "refused: not billed, not in the ledger");
    let user = s.settled_user(&u.id, 4);

    let r = get_with(&format!("{}/admin/metrics?days=1", s.base), &[("Authorization", &format!("Bearer {}", s.admin_token))]);
    assert_eq!(r.status, 200, "{}", r.body);
    let m = r.json();
    let usd = |micros: i64| dexto_shared::money::Micros(micros).as_json_usd();
    assert_eq!(m["totals"]["requests"], 4);
    assert_eq!(m["totals"]["revenue_usd"], usd(prices));
    assert_eq!(m["totals"]["provider_cost_usd"], usd(user["usage_totals"]["provider_cost_micros"].as_i64().unwrap()));
    let margin = prices - user["usage_totals"]["provider_cost_micros"].as_i64().unwrap();
    assert!(margin > 0, "a 1.5× markup earns a margin");
    assert_eq!(m["totals"]["margin_usd"], usd(margin));
    assert_eq!(m["by_day"].as_array().unwrap().len(), 1);
    let mini = m["by_model"].as_array().unwrap().iter().find(|x| x["model"] == "openai/gpt-4o-mini").unwrap();
    assert_eq!(mini["requests"], 3);
    let (p50, p95) = (mini["latency_p50_ms"].as_i64().unwrap(), mini["latency_p95_ms"].as_i64().unwrap());
    assert!(p95 >= 400 && p50 < 400, "p50 {p50} ms, p95 {p95} ms: the slow call is the 95th percentile");
    assert_eq!(m["by_upstream_status"], json!([{"status": 200, "requests": 4}]));
    let bad = get_with(&format!("{}/admin/metrics?days=0", s.base), &[("Authorization", &format!("Bearer {}", s.admin_token))]);
    assert_eq!(bad.status, 400);
}

/// Refusals are never in the ledger: the chat Worker counts them per UTC day,
/// status and error code (coalesced per isolate, written after the response).
#[test]
fn refusals_are_counted_by_status_and_code() {
    let s: Stack = integration_tests::start(&[]);
    let (rich, broke) = (s.new_user("1"), s.new_user("0"));
    let body = |content: &str| json!({"model": "openai/gpt-4o-mini", "max_tokens": 5, "messages": [{"role": "user", "content": content}]});
    let post = |auth: Option<&str>, payload: &[u8]| {
        let mut headers = vec![("Content-Type", "application/json")];
        let auth = auth.map(|k| format!("Bearer {k}"));
        if let Some(a) = &auth {
            headers.push(("Authorization", a.as_str()));
        }
        integration_tests::post(&format!("{}/v1/chat/completions", s.base), &headers, payload).status
    };
    // In the chat Worker: auth and validation. An empty bearer is a missing
    // key; no key at all is offered x402 (a 402 with the offer).
    assert_eq!(post(Some(""), body("hi").to_string().as_bytes()), 401);
    assert_eq!(post(None, body("hi").to_string().as_bytes()), 402);
    for _ in 0..3 {
        assert_eq!(post(Some("dxk_0000000000000000000000000000000000000000000000000000000000000000"), body("hi").to_string().as_bytes()), 401);
    }
    assert_eq!(post(Some(&rich.key), b"{not json"), 400);
    assert_eq!(s.chat(&rich.key, &json!({"model": "nobody/nothing", "messages": [{"role": "user", "content": "hi"}]})).status, 404);
    // From the wallet object: credit, the upstream's rate limit, its outage.
    assert_eq!(s.chat(&broke.key, &body("hi")).status, 402);
    assert_eq!(s.chat(&broke.key, &body("hi")).status, 402);
    assert_eq!(s.chat(&rich.key, &body("[[mock:status=429]]")).status, 429);
    assert_eq!(s.chat(&rich.key, &body("[[mock:status=503]]")).status, 502);
    // Successes are not counted (and cost no write here).
    assert_eq!(s.chat(&rich.key, &body("hi")).status, 200);

    let want = json!({
        "400/invalid_request": 1, "401/invalid_api_key": 3, "401/missing_api_key": 1, "402/INSUFFICIENT_CREDITS": 2, "402/x402_payment_required": 1,
        "404/model_not_found": 1, "429/rate_limited": 1, "502/upstream_unavailable": 1,
    });
    // Written after the responses: poll until the counts are in (never more).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        // Two days: a run that crosses midnight (UTC) splits the counts, not the sums.
        let r = get_with(&format!("{}/admin/metrics?days=2", s.base), &[("Authorization", &format!("Bearer {}", s.admin_token))]);
        assert_eq!(r.status, 200, "{}", r.body);
        let mut got = serde_json::Map::new();
        for row in r.json()["errors_by_code"].as_array().unwrap() {
            assert!(row["day"].as_str().is_some_and(|d| d.len() == 10), "{row}");
            let key = format!("{}/{}", row["status"], row["code"].as_str().unwrap());
            let sum = got.get(&key).and_then(|v| v.as_i64()).unwrap_or(0) + row["count"].as_i64().unwrap();
            got.insert(key, sum.into());
        }
        if serde_json::Value::Object(got.clone()) == want {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "errors_by_code never matched: {got:?}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
