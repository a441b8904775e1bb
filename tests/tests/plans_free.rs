//! The free plan's limits (docs/ARCHITECTURE.md, "Plans", Limits) on
//! accounts that never had a plan (what a new account gets) and on those
//! back from a paid one, and an operator's change to them reaching both
//! without any plan event.
//! Its own stack: it changes the free plan every other test's users are on.

use integration_tests::plans::*;
use integration_tests::stripe_fixtures::id;
use integration_tests::{start, Stack};
use serde_json::json;
use std::sync::OnceLock;

fn stack() -> &'static Stack {
    static S: OnceLock<Stack> = OnceLock::new();
    S.get_or_init(|| start(&[("ALLOWED_MODELS_TTL_SECONDS", "0"), ("PLAN_TEST_CLOCK", "1")]))
}

fn free_plan(s: &Stack, limits: serde_json::Value) {
    let mut plan = json!({"id": "free", "name": "Free", "price_cents": 0});
    plan.as_object_mut().unwrap().extend(limits.as_object().unwrap().clone());
    let r = s.admin("POST", "/admin/plans", Some(plan));
    assert_eq!(r.status, 200, "{}", r.body);
}

fn call(s: &Stack, key: &str) -> integration_tests::HttpResponse {
    s.chat(key, &json!({"model": "openai/gpt-4o-mini", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}))
}

#[test]
fn new_and_returning_free_accounts_are_held_to_the_free_plans_limits_and_an_operators_change_reaches_them() {
    let s = stack();
    // One account comes back from a paid plan (cancelled, its period over).
    let price = define(s, "f-paid", 1000, "10", None);
    let back = s.new_user("1");
    let (sub, now) = (id("sub_"), integration_tests::now_ms() / 1000 * 1000);
    assert_eq!(outcome(s, &invoice_paid(&back.id, &sub, &price, 1000, now - DAY_MS, now + DAY_MS)), "granted");
    outcome(s, &subscription_updated(&sub, &price, true, now));
    run_period(s, &back.id, now + DAY_MS);
    assert_eq!(plan_state(s, &back.id)["plan_id"], "free");

    free_plan(s, json!({"rate_limit_per_minute": 1}));
    let u = s.new_user("1");
    for key in [&u.key, &back.key] {
        small_chat(s, key);
        let limited = call(s, key);
        assert_eq!(limited.status, 429, "one a minute on the free plan: {}", limited.body);
    }
    // The operator lifts it: the next calls are under the gateway's defaults.
    free_plan(s, json!({}));
    small_chat(s, &u.key);
    small_chat(s, &u.key);
    small_chat(s, &back.key);
    // A monthly cap on the free plan binds a new account like a plan's cap.
    free_plan(s, json!({"monthly_cap_usd": "0.00001"}));
    let c = s.new_user("1");
    let capped = call(s, &c.key);
    assert_eq!(capped.status, 403, "{}", capped.body);
    assert!(capped.json()["error"]["message"].as_str().unwrap().contains("comes with your plan"), "{}", capped.body);
    free_plan(s, json!({}));
    small_chat(s, &c.key);
    s.books_balanced(&u.id, 3);
    s.books_balanced(&back.id, 2);
    s.books_balanced(&c.id, 1);
}
