//! Direct OpenRouter keys on the dashboard: the key created and shown once,
//! a form submitted twice moving the money once (its Idempotency-Key), a
//! fund the balance cannot cover refused, the usage page naming the key's
//! spending, and the unspent part reclaimed.

use integration_tests::direct_keys::{balance, user};
use integration_tests::visitor::Visitor;
use integration_tests::Stack;
use std::sync::OnceLock;

fn stack() -> &'static Stack {
    static S: OnceLock<Stack> = OnceLock::new();
    S.get_or_init(|| integration_tests::start(&[]))
}

/// The Idempotency-Key a page's forms carry.
fn form_idempotency_key(html: &str) -> String {
    let start = html.find(r#"name="idem" value=""#).expect("an idem field") + r#"name="idem" value=""#.len();
    html[start..].split('"').next().unwrap().to_string()
}

#[test]
fn the_dashboard_creates_funds_once_per_form_and_shows_the_direct_key() {
    let s = stack();
    let (sub, token) = user(s, "3");
    let v = Visitor::with_session(&token);
    let empty = v.get(s, "/dashboard/direct-key");
    assert_eq!(empty.status, 200, "{}", empty.body);
    assert!(empty.body.contains("Create a direct key"), "{}", empty.body);

    let created = v.post(s, "/dashboard/direct-key", &[]);
    assert_eq!(created.status, 200, "{}", created.body);
    assert!(created.body.contains("only time it is shown") && created.body.contains("sk-or-v1-"), "{}", created.body);
    let page = v.get(s, "/dashboard/direct-key");
    assert!(!page.body.contains("only time it is shown"), "shown once");

    // The same form submitted twice (a double click) moves the money once.
    let idem = form_idempotency_key(&page.body);
    for _ in 0..2 {
        let funded = v.post(s, "/dashboard/direct-key/fund", &[("amount_usd", "1.5"), ("idem", &idem)]);
        assert_eq!(funded.status, 200, "{}", funded.body);
        assert!(funded.body.contains("$1.50 moved to your direct key"), "{}", funded.body);
    }
    assert_eq!(balance(s, &sub), 1_500_000);
    let short = v.post(s, "/dashboard/direct-key/fund", &[("amount_usd", "2"), ("idem", "another")]);
    assert_eq!(short.status, 402, "{}", short.body);
    assert!(short.body.contains("Insufficient credits to move $2.00"), "{}", short.body);

    let usage = v.get(s, "/dashboard/usage");
    assert_eq!(usage.status, 200, "{}", usage.body);
    assert!(usage.body.contains("$0.00 spent of $1.50 funded"), "{}", usage.body);
    let reclaimed = v.post(s, "/dashboard/direct-key/reclaim", &[("amount_usd", ""), ("idem", "reclaim-all")]);
    assert_eq!(reclaimed.status, 200, "{}", reclaimed.body);
    assert!(reclaimed.body.contains("$1.50 returned to your balance"), "{}", reclaimed.body);
    assert_eq!(balance(s, &sub), 3_000_000);
}

