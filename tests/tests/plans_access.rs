//! Plans (docs/ARCHITECTURE.md, "Plans") through the real stack: what a plan
//! gives (models, limits, the upstream key's limit), how a user gets and
//! changes it (Stripe Checkout, the portal, the dashboard's previews), and
//! the reconciliation that repairs lost Stripe events. The credit movements
//! themselves are in plans.rs.

use integration_tests::plans::*;
use integration_tests::stripe_fixtures::id;
use integration_tests::{start, Stack};
use serde_json::{json, Value};
use std::sync::OnceLock;

fn stack() -> &'static Stack {
    static S: OnceLock<Stack> = OnceLock::new();
    S.get_or_init(|| start(&[("BILLING_TEST_FAULTS", "1"), ("PLAN_TEST_CLOCK", "1"), ("ALLOWED_MODELS_TTL_SECONDS", "0")]))
}

#[test]
fn a_plan_that_restricts_models_refuses_others_in_the_callers_dialect() {
    let s = stack();
    let r = s.admin("POST", "/admin/plans", Some(json!({"id": "t-mini", "name": "Mini only", "stripe_price_id": "price_t_mini",
        "price_cents": 500, "included_usd": "5", "models": ["openai/gpt-4o-mini"]})));
    assert_eq!(r.status, 200, "{}", r.body);
    let u = s.new_user("1");
    let now = integration_tests::now_ms() / 1000 * 1000;
    assert_eq!(outcome(s, &invoice_paid(&u.id, &id("sub_"), "price_t_mini", 500, now - DAY_MS, now + DAY_MS)), "granted");
    small_chat(s, &u.key);
    let refused = s.chat(&u.key, &json!({"model": "openai/gpt-4o", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}));
    assert_eq!(refused.status, 403, "{}", refused.body);
    let message = refused.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("`openai/gpt-4o`") && message.contains("Mini only") && message.contains("Free"), "{message}");
    // A fallback outside the plan is refused too, before any hold or upstream call.
    let fallback = s.chat(&u.key, &json!({"model": "openai/gpt-4o-mini", "models": ["openai/gpt-4o-mini", "openai/gpt-4o"], "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}));
    assert_eq!(fallback.status, 403, "{}", fallback.body);
    // The Messages dialect answers in its own envelope.
    let headers = [("Content-Type", "application/json"), ("x-api-key", u.key.as_str()), ("anthropic-version", "2023-06-01")];
    let body = json!({"model": "anthropic/claude-haiku-4.5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    let m = integration_tests::post(&format!("{}/v1/messages", s.base), &headers, body.to_string().as_bytes());
    assert_eq!(m.status, 403, "{}", m.body);
    assert_eq!((m.json()["type"].as_str(), m.json()["error"]["type"].as_str()), (Some("error"), Some("permission_error")), "{}", m.body);
    assert!(s.books_balanced(&u.id, 1)["usage_totals"]["requests"] == 1, "refusals are not billed");
    // A user on another plan is not restricted.
    let other = s.new_user("1");
    small_chat(s, &other.key);
    let r = s.chat(&other.key, &json!({"model": "openai/gpt-4o", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}));
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn subscribe_change_cancel_and_the_portal_go_through_stripe_with_a_preview() {
    let s = stack();
    let small = define(s, "t-api-small", 1000, "10", None);
    let large = define(s, "t-api-large", 3000, "30", None);
    let u = s.new_user("0");
    let token = s.session_token(&u.id, "api@example.com");
    let plans = s.call("GET", "/api/billing/plans", &token, None);
    assert_eq!(plans.status, 200, "{}", plans.body);
    let preview = |body: &Value, id: &str| body["data"].as_array().unwrap().iter().find(|p| p["id"] == id).unwrap()["preview"].clone();
    assert_eq!((plans.json()["current"]["id"].as_str(), preview(&plans.json(), "t-api-small")["change"].as_str()), (Some("free"), Some("subscribe")));

    // Subscribing: a Checkout Session in subscription mode for the plan's price.
    let r = s.call("POST", "/api/billing/subscription", &token, Some(json!({"plan_id": "t-api-small"})));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["checkout_url"].as_str().unwrap().contains("/c/pay/cs_test_"), "{}", r.body);
    let form = stripe_calls(s, &format!("subscription_data%5Bmetadata%5D%5Buser_id%5D={}", u.id))[0]["body"].as_str().unwrap().to_string();
    let back = dexto_shared::url_query::encode(&format!("{}/dashboard/settings/billing?plan=subscribed", s.base));
    for field in ["mode=subscription", &format!("line_items%5B0%5D%5Bprice%5D={small}"), &format!("client_reference_id={}", u.id), &format!("success_url={back}")] {
        assert!(form.contains(field), "{field} in {form}");
    }
    assert_eq!(s.call("POST", "/api/billing/subscription", &token, Some(json!({"plan_id": "nope"}))).status, 400);

    // Paid: Stripe has the subscription and sends the first invoice.
    let (sub, now) = (id("sub_"), integration_tests::now_ms() / 1000 * 1000);
    let (start, end) = (now - 10 * DAY_MS, now + 20 * DAY_MS);
    mock_stripe(s, "/__mock/stripe/subscriptions", &json!({"id": sub, "customer": "cus_api", "price": small,
        "user_id": u.id, "current_period_start": start / 1000, "current_period_end": end / 1000}));
    let mut first = invoice_paid(&u.id, &sub, &small, 1000, start, end);
    first["data"]["object"]["customer"] = json!("cus_api");
    assert_eq!(outcome(s, &first), "granted");

    // The preview says what a change would do before it is done.
    let plans = s.call("GET", "/api/billing/plans", &token, None).json();
    let up = preview(&plans, "t-api-large");
    assert_eq!((up["change"].as_str(), up["takes_effect"].as_str()), (Some("upgrade"), Some("now")));
    let expected = dexto_shared::plans::period::upgrade_grant(dexto_shared::money::Micros(10_000_000), dexto_shared::money::Micros(30_000_000), start, end, integration_tests::now_ms());
    assert!((up["included_now_usd"].as_f64().unwrap() - expected.0 as f64 / 1e6).abs() < 0.01, "{up} vs {expected:?}");
    assert_eq!(preview(&plans, "t-api-small")["change"], "current");
    assert_eq!((preview(&plans, "free")["change"].as_str(), preview(&plans, "free")["at"].as_i64()), (Some("downgrade"), Some(end)));

    // Upgrading changes the price at Stripe, invoicing the prorated difference now.
    let r = s.call("POST", "/api/billing/subscription", &token, Some(json!({"plan_id": "t-api-large"})));
    assert_eq!(r.status, 200, "{}", r.body);
    let change = stripe_calls(s, &format!("items%5B0%5D%5Bprice%5D={large}"));
    assert_eq!(change.len(), 1, "{change:?}");
    let body = change[0]["body"].as_str().unwrap();
    assert!(body.contains("proration_behavior=always_invoice") && body.contains("payment_behavior=pending_if_incomplete"), "{change:?}");
    let at_stripe = integration_tests::get_with(&format!("{}/v1/subscriptions/{sub}", s.mock), &[("Authorization", "Bearer sk_test_mock")]).json();
    assert_eq!(at_stripe["items"]["data"][0]["price"]["id"], large.as_str());
    // Stripe tells the gateway, which grants the prorated included credit.
    // (The reconciliation may apply it first, from Stripe's state: the same change, once.)
    let mut updated = json!({"id": id("evt_"), "type": "customer.subscription.updated", "created": integration_tests::now_ms() / 1000, "data": {"object": at_stripe}});
    assert!(["upgraded", "updated"].contains(&outcome(s, &updated).as_str()));
    assert_eq!(plan_state(s, &u.id)["plan_id"], "t-api-large");
    let prorated = proration_paid(&u.id, &sub, (&small, 1000), (&large, 3000), integration_tests::now_ms() / 1000 * 1000, (start, end));
    assert_eq!(outcome(s, &prorated), "upgrade_granted");
    let (included, _) = buckets(s, &u.id);
    assert!(included > 10_000_000 && included <= 30_000_000, "{included}");

    // Cancelling: at the period end, at Stripe.
    let r = s.call("DELETE", "/api/billing/subscription", &token, None);
    assert_eq!((r.status, r.json()["ends_at"].as_i64()), (200, Some(end)), "{}", r.body);
    let at_stripe = integration_tests::get_with(&format!("{}/v1/subscriptions/{sub}", s.mock), &[("Authorization", "Bearer sk_test_mock")]).json();
    assert_eq!(at_stripe["cancel_at_period_end"], true);
    updated["id"] = json!(id("evt_"));
    updated["data"]["object"] = at_stripe;
    assert!(["cancel_at_period_end", "updated"].contains(&outcome(s, &updated).as_str()));
    assert_eq!(plan_state(s, &u.id)["status"], "canceling");

    // The billing portal, for the customer Stripe named.
    let r = s.call("POST", "/api/billing/portal", &token, Some(json!({})));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["url"].as_str().unwrap().contains("/p/session/bps_"), "{}", r.body);
    assert_eq!(stripe_calls(s, "customer=cus_api").len(), 1);
    let evil = s.call("POST", "/api/billing/portal", &token, Some(json!({"return_url": "https://evil.tld/"})));
    assert_eq!(evil.status, 400, "{}", evil.body);
}

#[test]
fn the_dashboard_shows_the_plan_its_credit_and_a_preview_of_each_change() {
    let s = stack();
    let low = define(s, "t-dash-low", 1000, "10", Some("4"));
    define(s, "t-dash-high", 3000, "30", None);
    let u = s.new_user("2.5");
    let visitor = integration_tests::visitor::Visitor::with_session(&s.session_token(&u.id, "dash@example.com"));
    // Free: everything purchased, every paid plan offered as a subscription.
    let page = visitor.get(s, "/dashboard/settings/billing");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(r#"<strong id="plan-name">Free</strong>"#), "{}", page.body);
    assert!(page.body.contains(r#"<strong id="purchased-credit">$2.50</strong>"#) && page.body.contains(r#"<strong id="included-credit">$0.00</strong>"#), "{}", page.body);
    assert!(page.body.contains("Subscribe: $30.00 of included credit each month"), "{}", page.body);
    // Choosing a plan goes to Stripe Checkout (the client follows the redirect to the mock's page).
    let chosen = visitor.post(s, "/dashboard/settings/billing/plan", &[("plan_id", "t-dash-low")]);
    assert!(chosen.status == 200 && chosen.body.contains("Mock Stripe Checkout"), "{} {}", chosen.status, chosen.body);
    let form = stripe_calls(s, &format!("subscription_data%5Bmetadata%5D%5Buser_id%5D={}", u.id));
    assert_eq!(form.len(), 1);
    assert!(form[0]["body"].as_str().unwrap().contains("plan%3Dsubscribed"), "Checkout returns to the plan notice: {form:?}");
    let back = visitor.get(s, "/dashboard/settings/billing?plan=subscribed").body;
    assert!(back.contains(r#"id="plan-notice""#) && !back.contains(r#"class="error""#), "{back}");

    // Subscribed: the period, what is left and when it resets, and each change's preview.
    let sub = id("sub_");
    let now = integration_tests::now_ms() / 1000 * 1000;
    let end = now + 20 * DAY_MS;
    outcome(s, &invoice_paid(&u.id, &sub, &low, 1000, now - 10 * DAY_MS, end));
    let page = visitor.get(s, "/dashboard/settings/billing").body;
    assert!(page.contains(r#"<strong id="plan-name">t-dash-low</strong>"#), "{page}");
    assert!(!page.contains("No subscription"), "{page}");
    assert!(page.contains(r#"<strong id="included-credit">$10.00</strong>"#) && page.contains(r#"<strong id="purchased-credit">$2.50</strong>"#), "{page}");
    let reset = dexto_shared::web::html::when(Some(end));
    assert!(page.contains(&format!("resets {reset} (up to $4.00 rolls over)")), "{page}");
    assert!(page.contains("Upgrade now: $") && page.contains("price difference is charged now"), "{page}");
    assert!(page.contains(&format!("From {reset}: this period keeps your current plan")), "a downgrade (to free) waits: {page}");

    // A failed renewal: the grace and what happens after it.
    let failed = json!({"id": id("evt_"), "type": "invoice.payment_failed", "created": now / 1000, "data": {"object": {
        "id": id("in_"), "object": "invoice", "amount_paid": 0, "currency": "usd", "billing_reason": "subscription_cycle",
        "parent": {"subscription_details": {"subscription": sub, "metadata": {"user_id": u.id}}}}}});
    assert_eq!(outcome(s, &failed), "past_due");
    let page = visitor.get(s, "/dashboard/settings/billing").body;
    let grace = dexto_shared::web::html::when(Some(now + 7 * DAY_MS));
    assert!(page.contains(&format!("Update your card in the billing portal before {grace}, or the account falls back to the free plan")), "{page}");
}

#[test]
fn the_plans_default_limits_apply_while_the_user_is_on_it() {
    let s = stack();
    let r = s.admin("POST", "/admin/plans", Some(json!({"id": "t-slow", "name": "Slow", "stripe_price_id": "price_t_slow", "price_cents": 100,
        "included_usd": "1", "rate_limit_per_minute": 1, "max_concurrent": 4})));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s.admin("POST", "/admin/plans", Some(json!({"id": "t-capped", "name": "Capped", "stripe_price_id": "price_t_capped", "price_cents": 100,
        "included_usd": "1", "monthly_cap_usd": "0.00001"})));
    assert_eq!(r.status, 200, "{}", r.body);
    let u = s.new_user("1");
    let (sub, now) = (id("sub_"), integration_tests::now_ms() / 1000 * 1000);
    let end = now + DAY_MS;
    // Before: the gateway's default rate.
    small_chat(s, &u.key);
    small_chat(s, &u.key);
    assert_eq!(outcome(s, &invoice_paid(&u.id, &sub, "price_t_slow", 100, now - DAY_MS, end)), "granted");
    // On the plan: one a minute (a burst of one).
    small_chat(s, &u.key);
    let limited = s.chat(&u.key, &json!({"model": "openai/gpt-4o-mini", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}));
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert!(limited.header("retry-after").is_some());
    // Back on the free plan: the gateway's defaults again.
    outcome(s, &subscription_updated(&sub, "price_t_slow", true, now));
    run_periods(s, &[&u.id], end);
    assert_eq!(plan_state(s, &u.id)["plan_id"], "free");
    small_chat(s, &u.key);
    s.books_balanced(&u.id, 4);

    // A plan's monthly cap binds like an operator's: the user cannot lift it.
    let c = s.new_user("1");
    assert_eq!(outcome(s, &invoice_paid(&c.id, &id("sub_"), "price_t_capped", 100, now - DAY_MS, end)), "granted");
    let capped = s.chat(&c.key, &json!({"model": "openai/gpt-4o-mini", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}));
    assert_eq!(capped.status, 403, "{}", capped.body);
    assert!(capped.json()["error"]["message"].as_str().unwrap().contains("comes with your plan"), "{}", capped.body);
    let caps = s.user(&c.id)["caps"].clone();
    assert!(caps.as_array().unwrap().iter().any(|c| c["set_by"] == "plan" && c["window"] == "monthly"), "{caps}");
}

#[test]
fn a_paid_plan_invoice_whose_webhook_was_lost_is_granted_by_the_reconciliation_once() {
    let s = stack();
    let price = define(s, "t-lost", 1000, "10", None);
    let u = s.new_user("0");
    let (sub, now) = (id("sub_"), integration_tests::now_ms() / 1000 * 1000);
    // Paid at Stripe two hours ago (past the grace); its webhook never came.
    let mut paid = invoice_paid(&u.id, &sub, &price, 1000, now - DAY_MS, now + DAY_MS);
    paid["data"]["object"]["created"] = json!(now / 1000 - 7200);
    let invoice = paid["data"]["object"].clone();
    mock_stripe(s, "/__mock/stripe/invoices", &invoice);
    s.run_cron();
    s.run_cron();
    assert_eq!(buckets(s, &u.id), (10_000_000, 0), "granted once");
    let found = findings(s, &u.id);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0]["kind"].as_str(), found[0]["detail"]["action"].as_str()), (Some("plan_invoice_missing"), Some("granted")));
    assert_eq!(plan_state(s, &u.id)["plan_id"], "t-lost");
    // The webhook, late: a replay.
    assert_eq!(outcome(s, &paid), "already_granted");
    assert_eq!(buckets(s, &u.id), (10_000_000, 0));
}

#[test]
fn a_paid_upgrade_invoice_whose_webhook_was_lost_is_granted_by_the_reconciliation_once() {
    let s = stack();
    let basic = define(s, "t-lost-basic", 1000, "10", None);
    let pro = define(s, "t-lost-pro", 4000, "40", None);
    let u = s.new_user("0");
    let (sub, now) = (id("sub_"), integration_tests::now_ms() / 1000 * 1000);
    let (start, end) = (now - 10 * DAY_MS, now + 20 * DAY_MS);
    assert_eq!(outcome(s, &invoice_paid(&u.id, &sub, &basic, 1000, start, end)), "granted");
    assert_eq!(outcome(s, &subscription_updated(&sub, &pro, false, now)), "upgraded");
    // The proration invoice was paid two hours ago; its webhook never came.
    let mut paid = proration_paid(&u.id, &sub, (&basic, 1000), (&pro, 4000), now, (start, end));
    paid["data"]["object"]["created"] = json!(now / 1000 - 7200);
    mock_stripe(s, "/__mock/stripe/invoices", &paid["data"]["object"]);
    s.run_cron();
    s.run_cron();
    assert_eq!(buckets(s, &u.id), (30_000_000, 0), "the upgrade's 20 granted once");
    let found = findings(s, &u.id);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0]["kind"].as_str(), found[0]["detail"]["action"].as_str()), (Some("plan_upgrade_missing"), Some("granted")));
    // The webhook, late: a replay.
    assert_eq!(outcome(s, &paid), "already_granted");
    assert_eq!(buckets(s, &u.id), (30_000_000, 0));
}

#[test]
fn the_upstream_keys_limit_covers_included_and_purchased_credit_and_follows_the_period_end() {
    let s = stack();
    let price = define(s, "t-key", 1000, "10", Some("2"));
    let u = s.new_user("1.5");
    let hash = s.d1_until(&format!("SELECT upstream_hash FROM upstream_keys WHERE user_id = '{}' AND status = 'active'", u.id), |r| !r.is_empty())[0]["upstream_hash"]
        .as_str()
        .unwrap()
        .to_string();
    let limit = || {
        let r = integration_tests::get_with(&format!("{}/keys/{hash}", s.mock), &[("Authorization", &format!("Bearer {}", mock_openrouter::DEFAULT_MANAGEMENT_KEY))]);
        r.json()["data"]["limit"].clone()
    };
    let now = integration_tests::now_ms() / 1000 * 1000;
    let end = now + DAY_MS;
    assert_eq!(outcome(s, &invoice_paid(&u.id, &id("sub_"), &price, 1000, now - DAY_MS, end)), "granted");
    s.eventually_user(&u.id, "limit: included + purchased", |_| limit() == json!(11.5));
    // The period ends: what does not roll over leaves the limit too.
    run_periods(s, &[&u.id], end);
    assert_eq!(buckets(s, &u.id), (2_000_000, 1_500_000));
    s.eventually_user(&u.id, "limit after the period end", |_| limit() == json!(3.5));
}

#[test]
fn a_plan_invoice_refund_whose_webhook_was_lost_is_taken_back_by_the_reconciliation() {
    let s = stack();
    let price = define(s, "t-lost-refund", 1000, "10", None);
    let u = s.new_user("1");
    let pi = id("pi_");
    let now = integration_tests::now_ms() / 1000 * 1000;
    let mut paid = invoice_paid(&u.id, &id("sub_"), &price, 1000, now - DAY_MS, now + DAY_MS);
    paid["data"]["object"]["payment_intent"] = json!(pi);
    assert_eq!(outcome(s, &paid), "granted");
    // Half refunded at Stripe two hours ago; the webhook never came.
    mock_stripe(s, "/__mock/stripe/refunds", &json!({"payment_intent": pi, "amount": 500, "created": now / 1000 - 7200}));
    s.run_cron();
    s.run_cron();
    assert_eq!(buckets(s, &u.id), (5_000_000, 1_000_000), "half the grant back, once; purchased untouched");
    let found = findings(s, &u.id);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0]["kind"].as_str(), found[0]["detail"]["action"].as_str()), (Some("plan_refund_missing"), Some("taken_back")));
}

#[test]
fn a_subscription_whose_events_were_lost_is_brought_in_line_with_stripe_by_the_reconciliation() {
    let s = stack();
    let price = define(s, "t-drift", 1000, "10", None);
    let u = s.new_user("0");
    let (sub, now) = (id("sub_"), integration_tests::now_ms() / 1000 * 1000);
    let (start, end) = (now - DAY_MS, now + DAY_MS);
    let at_stripe = |status: &str| {
        let body = json!({"id": sub, "customer": "cus_drift", "price": price, "user_id": u.id, "status": status,
            "current_period_start": start / 1000, "current_period_end": end / 1000});
        mock_stripe(s, "/__mock/stripe/subscriptions", &body);
    };
    at_stripe("active");
    assert_eq!(outcome(s, &invoice_paid(&u.id, &sub, &price, 1000, start, end)), "granted");
    // The renewal failed at Stripe; `invoice.payment_failed` never arrived.
    at_stripe("past_due");
    s.run_cron();
    s.run_cron();
    let state = plan_state(s, &u.id);
    assert_eq!(state["status"], "past_due", "{state}");
    assert!(state["grace_until"].as_i64().is_some_and(|g| g > now), "{state}");
    let found = findings(s, &u.id);
    assert_eq!(found.len(), 1, "once: {found:?}");
    assert_eq!((found[0]["kind"].as_str(), found[0]["detail"]["after"]["status"].as_str()), (Some("subscription_drift"), Some("past_due")));
}

#[test]
fn the_plans_concurrency_limit_bounds_requests_in_flight() {
    let s = stack();
    let r = s.admin("POST", "/admin/plans", Some(json!({"id": "t-one", "name": "One at a time", "stripe_price_id": "price_t_one", "price_cents": 100,
        "included_usd": "1", "max_concurrent": 1})));
    assert_eq!(r.status, 200, "{}", r.body);
    let u = s.new_user("1");
    let now = integration_tests::now_ms() / 1000 * 1000;
    assert_eq!(outcome(s, &invoice_paid(&u.id, &id("sub_"), "price_t_one", 100, now - DAY_MS, now + DAY_MS)), "granted");
    let slow = json!({"model": "openai/gpt-4o-mini", "stream": true, "max_tokens": 50,
        "messages": [{"role": "user", "content": "[[mock:tokens=10,chunk_delay_ms=600]]"}]});
    let (key, base) = (u.key.clone(), s.base.clone());
    let running = std::thread::spawn(move || {
        integration_tests::SseReader::open(&format!("{base}/v1/chat/completions"), &[("Authorization", &format!("Bearer {key}"))], slow.to_string().as_bytes()).collect()
    });
    s.eventually_user(&u.id, "the slow call's hold", |u| u["open_holds"].as_array().is_some_and(|h| h.len() == 1));
    let second = s.chat(&u.key, &json!({"model": "openai/gpt-4o-mini", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}));
    assert_eq!(second.status, 429, "{}", second.body);
    assert!(running.join().unwrap().iter().any(|(e, _)| e.contains("[DONE]")));
    s.books_balanced(&u.id, 1);
    small_chat(s, &u.key);
}
