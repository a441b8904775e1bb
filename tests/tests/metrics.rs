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
