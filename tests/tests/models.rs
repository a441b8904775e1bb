//! `/v1/models`: the first fetch, the cron refresh (`--test-scheduled`, relayed
//! by the edge), stale-while-revalidate when the upstream fails (the list is
//! served with its age, never emptied), and the public/authenticated switch.

use dexto_shared::money::{Markup, Picos};
use dexto_shared::time;
use integration_tests::{get, start, Stack};
use serde_json::{json, Value};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const TTL_SECONDS: i64 = 3;

/// Short TTL so staleness shows within a test; markup 1.2 to check our prices.
fn stack() -> &'static Stack {
    static S: OnceLock<Stack> = OnceLock::new();
    S.get_or_init(|| start(&[("PRICE_MARKUP", "1.2"), ("CATALOGUE_TTL_SECONDS", "3")]))
}

fn fetched_at(body: &Value) -> i64 {
    time::parse(body["fetchedAt"].as_str().expect("fetchedAt")).expect("RFC 3339").ms
}

fn listing(s: &Stack) -> Value {
    let r = s.models(None);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every mock model, priced at list price × 1.2, exactly as a decimal string.
fn assert_prices_and_shape(body: &Value) {
    assert_eq!(body["object"], "list");
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), mock_openrouter::catalogue::MODELS.len());
    let markup = Markup::parse("1.2").unwrap();
    for spec in mock_openrouter::catalogue::MODELS {
        let m = data.iter().find(|m| m["id"] == spec.id).unwrap_or_else(|| panic!("{} listed", spec.id));
        let ours = |list: &str| markup.apply(Picos::parse_usd(list).unwrap()).usd_decimal();
        assert_eq!(m["object"], "model");
        assert_eq!(m["created"], spec.created);
        assert_eq!(m["owned_by"], spec.id.split('/').next().unwrap());
        assert_eq!(m["display"], spec.name);
        assert_eq!(m["context_length"], spec.context_length);
        assert_eq!(m["max_output"], json!(spec.max_completion_tokens));
        assert_eq!(m["pricing"]["prompt"], ours(spec.prompt));
        assert_eq!(m["pricing"]["completion"], ours(spec.completion));
        assert_eq!(m["markup"], "1.2");
    }
    let gpt = data.iter().find(|m| m["id"] == "openai/gpt-4o").unwrap();
    assert_eq!((gpt["pricing"]["prompt"].as_str(), gpt["pricing"]["completion"].as_str()), (Some("0.000003"), Some("0.000012")));
}

#[test]
fn catalogue_lifecycle_first_fetch_cron_refresh_and_stale_while_revalidate() {
    let s = stack();

    // First fetch: KV is empty, so the request itself fetches the upstream list.
    assert_eq!(s.upstream_model_fetches(), 0);
    let first = listing(s);
    assert_eq!(s.upstream_model_fetches(), 1);
    assert_prices_and_shape(&first);
    assert_eq!((first["stale"].as_bool(), first["ttl_seconds"].as_i64()), (Some(false), Some(TTL_SECONDS)));
    assert!(first["age_seconds"].as_i64().unwrap() <= 1);
    let r = s.models(None);
    assert_eq!(r.header("Cache-Control"), Some("public, max-age=60"));
    let one = get(&format!("{}/v1/models/openai/gpt-4o", s.base)).json();
    assert_eq!((one["id"].as_str(), one["pricing"]["prompt"].as_str()), (Some("openai/gpt-4o"), Some("0.000003")));
    let missing = get(&format!("{}/v1/models/nobody/nothing", s.base));
    assert_eq!(missing.status, 404);
    assert!(missing.json()["error"]["message"].as_str().unwrap().contains("nobody/nothing"));

    // The cron refreshes the copy: one more upstream fetch, a newer fetchedAt.
    let before = fetched_at(&first);
    std::thread::sleep(Duration::from_millis(20));
    s.run_cron();
    assert_eq!(s.upstream_model_fetches(), 2);
    let refreshed = listing(s);
    assert!(fetched_at(&refreshed) > before, "cron refresh replaced the copy");
    s.log_line(&["\"event\":\"cron.ran\"", "refreshed 7 models"]);

    // The cron while the upstream fails, or returns an empty list: the copy stays.
    let kept = fetched_at(&refreshed);
    s.mock_faults(json!({"models_status": 503}));
    s.run_cron();
    s.mock_faults(json!({"models_status": null, "models_empty": true}));
    s.run_cron();
    let after_failures = listing(s);
    assert_eq!(fetched_at(&after_failures), kept);
    assert_eq!(after_failures["data"].as_array().unwrap().len(), 7, "never emptied");
    s.log_line(&["catalogue.refresh_failed", "no priced models"]);

    // Upstream down past the TTL: the stale list is served with its age, and chat still prices.
    s.mock_faults(json!({"models_status": 503, "models_empty": false}));
    std::thread::sleep(Duration::from_millis(TTL_SECONDS as u64 * 1000 + 300));
    let stale = listing(s);
    assert_eq!(stale["stale"], true, "{stale}");
    assert!(stale["age_seconds"].as_i64().unwrap() >= TTL_SECONDS);
    assert_eq!(fetched_at(&stale), kept);
    assert_eq!(stale["data"].as_array().unwrap().len(), 7);
    let u = s.new_user("1");
    let chat = s.chat(&u.key, &json!({"model": "openai/gpt-4o", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]}));
    assert_eq!(chat.status, 200, "{}", chat.body);

    // The upstream is back: the next reads revalidate in the background.
    s.mock_faults(json!({"models_status": null}));
    eventually("a fresh copy after the upstream recovered", || {
        let body = listing(s);
        body["stale"] == false && fetched_at(&body) > kept
    });
}

#[test]
fn a_private_listing_needs_an_api_key_and_a_miss_without_upstream_is_an_error_not_an_empty_list() {
    let s = start(&[("MODELS_PUBLIC", "false")]);
    assert_eq!(s.models(None).status, 401);
    let u = s.new_user("0");
    assert_eq!(s.models(Some("dxk_not_a_real_key")).status, 401);

    s.mock_faults(json!({"models_status": 503}));
    let r = s.models(Some(&u.key));
    assert_eq!(r.status, 502, "no copy yet and the upstream is down: {}", r.body);
    assert_eq!(r.json()["error"]["code"], "upstream_unavailable");

    s.mock_faults(json!({"models_status": null}));
    let r = s.models(Some(&u.key));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("Cache-Control"), Some("private, max-age=60"));
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 7);
    assert_eq!(r.json()["data"][0]["markup"], "1.0");
}
