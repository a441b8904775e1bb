//! Allow-list curation: the admin API, its effect on `/v1/models` and on chat
//! (refused before any hold or upstream call; per-model markup on holds and
//! charges), and the staleness bound (`ALLOWED_MODELS_TTL_SECONDS`, 1 s here).
//! The allow-list is global, so the whole story is one sequential test.

use dexto_shared::money::{Markup, Picos};
use integration_tests::{marker, start, HttpResponse, Stack};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn listed_ids(s: &Stack) -> Vec<String> {
    let r = s.models(None);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_string()).collect()
}

/// Waits until the listing shows `expected` (bounded by the 1 s isolate TTL).
fn wait_for_listing(s: &Stack, expected: &[&str]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if listed_ids(s) == expected {
            return s.models(None).json();
        }
        assert!(Instant::now() < deadline, "listing never became {expected:?}: {:?}", listed_ids(s));
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn chat(s: &Stack, key: &str, model: &str, m: &str, max_tokens: u64) -> HttpResponse {
    s.chat(key, &json!({"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": m}]}))
}

fn assert_refused(s: &Stack, key: &str, user_id: &str, model: &str) {
    let m = marker("refused");
    let r = chat(s, key, model, &m, 4);
    assert_eq!(r.status, 404, "{}", r.body);
    let err = &r.json()["error"];
    assert_eq!(err["code"], "model_not_found");
    assert!(err["message"].as_str().unwrap().contains(model), "names the model: {err}");
    assert_eq!(s.upstream_calls(&m), 0, "no upstream call for {model}");
    let user = s.user(user_id);
    assert_eq!(user["open_holds"], json!([]), "no hold for {model}");
}

#[test]
fn the_allow_list_curates_listing_and_chat_and_prices_with_per_model_markup() {
    let s = start(&[("ALLOWED_MODELS_TTL_SECONDS", "1")]);
    let all: Vec<&str> = {
        let mut ids: Vec<&str> = mock_openrouter::catalogue::MODELS.iter().map(|m| m.id).collect();
        ids.sort();
        ids
    };
    let open = s.admin("GET", "/admin/models", None).json();
    assert_eq!((open["mode"].as_str(), open["data"].as_array().map(Vec::len)), (Some("open"), Some(0)));
    assert_eq!(listed_ids(&s), all);
    let u = s.new_user("1");
    assert_refused(&s, &u.key, &u.id, "nobody/unknown-model");

    // Validation.
    for (body, why) in [
        (json!({"model": ""}), "empty id"),
        (json!({"model": "a b"}), "whitespace"),
        (json!({"model": "openai/gpt-4o", "markup": "0.9"}), "below cost"),
        (json!({"model": "openai/gpt-4o", "markup": "1.00001"}), "too precise"),
        (json!({"model": "openai/gpt-4o", "markup": true}), "not a number"),
    ] {
        assert_eq!(s.admin("POST", "/admin/models", Some(body)).status, 400, "{why}");
    }

    // Curate: two priced models (one at 1.5×) and one the upstream does not list.
    let added = s.admin("POST", "/admin/models", Some(json!({"model": "openai/gpt-4o", "markup": "1.5"})));
    assert_eq!(added.status, 201, "{}", added.body);
    assert_eq!((added.json()["markup"].as_str(), added.json()["markup_bps"].as_i64()), (Some("1.5"), Some(15_000)));
    assert_eq!(s.admin("POST", "/admin/models", Some(json!({"model": "mock/output-only", "markup": 2}))).status, 201);
    assert_eq!(s.admin("POST", "/admin/models", Some(json!({"model": "gone/not-upstream"}))).status, 201);
    let curated = s.admin("GET", "/admin/models", None).json();
    assert_eq!(curated["mode"], "allow_list");
    assert_eq!(curated["data"].as_array().unwrap().len(), 3);

    let listing = wait_for_listing(&s, &["mock/output-only", "openai/gpt-4o"]);
    assert_eq!(listing["curated"], true);
    let gpt = &listing["data"][1];
    assert_eq!((gpt["markup"].as_str(), gpt["pricing"]["prompt"].as_str(), gpt["pricing"]["completion"].as_str()), (Some("1.5"), Some("0.00000375"), Some("0.000015")));

    // Disallowed (though priced upstream) and unlisted models: 404 naming the model, nothing held, no upstream call.
    assert_refused(&s, &u.key, &u.id, "openai/gpt-4o-mini");
    assert_refused(&s, &u.key, &u.id, "gone/not-upstream");
    assert_eq!(s.user(&u.id)["balance_micros"], 1_000_000);

    // An allowed model is charged at its own markup.
    let r = chat(&s, &u.key, "openai/gpt-4o", &marker("allowed"), 4);
    assert_eq!(r.status, 200, "{}", r.body);
    let cost = Picos::parse_usd(&r.json()["usage"]["cost"].to_string()).unwrap();
    let expected = Markup::parse("1.5").unwrap().apply(cost).ceil_micros();
    assert_eq!(r.header("X-Dexto-Cost-USD").unwrap(), expected.usd_fixed());
    let row = &s.settled_user(&u.id, 1)["recent_usage"][0];
    assert_eq!(row["user_price_micros"], expected.0);
    assert_eq!(row["provider_cost_micros"], cost.ceil_micros().0);

    // The hold uses it too: 10 output tokens of mock/output-only cost 200 µ$ at
    // list price, so 400 µ$ at 2×; a wallet with 300 µ$ is refused (402).
    let poor = s.new_user("0.0003");
    let r = chat(&s, &poor.key, "mock/output-only", &marker("hold"), 10);
    assert_eq!(r.status, 402, "{}", r.body);
    assert_eq!(r.json()["error"]["balance"], json!(0.0003));

    // Reset a markup, remove entries; unknown entries are 404.
    let reset = s.admin("PATCH", "/admin/models/openai/gpt-4o", Some(json!({"markup": null})));
    assert_eq!((reset.status, reset.json()["markup"].clone()), (200, Value::Null), "{}", reset.body);
    assert_eq!(s.admin("PATCH", "/admin/models/nobody%2Fnothing", Some(json!({"markup": "1.1"}))).status, 404);
    assert_eq!(s.admin("PATCH", "/admin/models/openai/gpt-4o", Some(json!({}))).status, 400);
    assert_eq!(s.admin("DELETE", "/admin/models/gone%2Fnot-upstream", None).status, 200);
    assert_eq!(s.admin("DELETE", "/admin/models/gone/not-upstream", None).status, 404);
    assert_eq!(s.admin("DELETE", "/admin/models/mock/output-only", None).status, 200);
    let listing = wait_for_listing(&s, &["openai/gpt-4o"]);
    assert_eq!(listing["data"][0]["pricing"]["prompt"], "0.0000025", "back to the default markup");

    // Empty again: every model is listed and callable.
    assert_eq!(s.admin("DELETE", "/admin/models/openai/gpt-4o", None).status, 200);
    wait_for_listing(&s, &all);
    assert_eq!(chat(&s, &u.key, "openai/gpt-4o-mini", &marker("open"), 4).status, 200);
}
