//! OpenRouter provider routing (`provider`) may choose a provider dearer than
//! the catalogue price the hold assumes. The gateway bounds such a request at
//! the upstream (`provider.max_price` = the prices the hold covers), so the
//! dearer provider is never chosen; charges the upstream still reports beyond
//! a hold are capped and counted in `/admin/metrics` (`settle_excess`).
//!
//! The mock serves every model from its list-price provider "Mock" and a
//! dearer "Pricey" (3×), honouring `order`, `only`, `allow_fallbacks` and
//! `max_price` like OpenRouter.

use integration_tests::{get, marker, Stack};
use serde_json::{json, Value};
use std::sync::OnceLock;

fn stack() -> &'static Stack {
    static S: OnceLock<Stack> = OnceLock::new();
    S.get_or_init(|| integration_tests::start(&[]))
}

fn upstream_bodies(s: &Stack, marker: &str) -> Vec<Value> {
    let r = get(&format!("{}/__mock/requests?contains={marker}", s.mock));
    r.json()["requests"].as_array().unwrap().iter().filter_map(|q| serde_json::from_str(q["body"].as_str()?).ok()).collect()
}

#[test]
fn routing_to_a_dearer_provider_is_bounded_at_the_price_the_hold_covers() {
    let s = stack();
    let u = s.new_user("1");
    let m = marker("route");
    let body = json!({"model": "openai/gpt-4o", "max_tokens": 10, "provider": {"order": ["pricey"], "sort": "throughput"},
        "messages": [{"role": "user", "content": format!("{m} [[mock:tokens=10]]")}]});
    let r = s.chat(&u.key, &body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["provider"], "Mock", "the list-price provider served it: {}", r.body);
    let sent = upstream_bodies(s, &m);
    assert_eq!(sent.len(), 1);
    // gpt-4o lists $2.50 / $10 per million tokens.
    assert_eq!(sent[0]["provider"]["max_price"]["prompt"], 2.5, "{}", sent[0]);
    assert_eq!(sent[0]["provider"]["max_price"]["completion"], 10.0);
    assert_eq!(sent[0]["provider"]["order"], json!(["pricey"]), "the client's preferences are kept");
    let reported = r.json()["usage"]["cost"].as_f64().unwrap();
    let charged: f64 = r.header("x-dexto-cost-usd").unwrap().parse().unwrap();
    assert!((charged - reported).abs() < 0.000_001, "charged the list price the upstream reported: {charged} vs {reported}");

    // Only the dearer provider: nothing within the bound, so the upstream's
    // 404 — no charge, the hold released.
    let only = json!({"model": "openai/gpt-4o", "max_tokens": 10, "provider": {"only": ["pricey"]},
        "messages": [{"role": "user", "content": format!("{m}-only")}]});
    let refused = s.chat(&u.key, &only);
    assert_eq!(refused.status, 404, "{}", refused.body);
    let user = s.settled_user(&u.id, 1);
    assert_eq!(user["open_holds"], json!([]));
    assert_eq!(user["ledger_totals"]["net_micros"], user["balance_micros"], "Σ ledger == balance");
}

#[test]
fn a_charge_capped_at_its_hold_is_counted_as_excess() {
    let s = integration_tests::start(&[]);
    let u = s.new_user("1");
    let before = s.admin("GET", "/admin/metrics", None).json();
    assert_eq!(before["settle_excess"]["requests"], 0, "{before}");
    // A provider that ignores max_tokens: 1 000 tokens reported for a 5-token hold.
    let body = json!({"model": "openai/gpt-4o-mini", "max_tokens": 5, "messages": [{"role": "user", "content": "[[mock:tokens=1000,ignore_max=1]]"}]});
    let r = s.chat(&u.key, &body);
    assert_eq!(r.status, 200, "{}", r.body);
    let reported = dexto_shared::money::Picos::parse_usd(&r.json()["usage"]["cost"].to_string()).unwrap().ceil_micros();
    let charged = dexto_shared::money::Micros::parse_usd_exact(r.header("x-dexto-cost-usd").unwrap()).unwrap();
    assert!(reported > charged, "the upstream reported more than the hold: {reported:?} vs {charged:?}");
    s.settled_user(&u.id, 1);
    let after = s.admin("GET", "/admin/metrics", None).json();
    assert_eq!(after["settle_excess"]["requests"], 1, "{after}");
    let excess = dexto_shared::money::Micros::from_json_usd(&after["settle_excess"]["excess_usd"]).unwrap();
    assert_eq!(excess, reported.saturating_sub(charged), "{after}");
}
