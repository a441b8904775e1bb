//! Plans (docs/ARCHITECTURE.md, "Plans") through the real stack: plans as
//! data under `/admin/plans`; included and purchased credit in one wallet;
//! period grants from `invoice.paid` once per invoice, expiry and rollover
//! at period end (the admin period pass with the local test clock).

use integration_tests::{start, Stack};
use serde_json::{json, Value};
use std::sync::OnceLock;

fn stack() -> &'static Stack {
    static S: OnceLock<Stack> = OnceLock::new();
    S.get_or_init(|| start(&[("BILLING_TEST_FAULTS", "1"), ("PLAN_TEST_CLOCK", "1")]))
}

fn plans(s: &Stack) -> Vec<Value> {
    let r = s.admin("GET", "/admin/plans", None);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["data"].as_array().unwrap().clone()
}

#[test]
fn plans_are_data_an_operator_defines() {
    let s = stack();
    assert!(plans(s).iter().any(|p| p["id"] == "free" && p["included_usd"] == 0.0), "a free plan exists by default");
    let pro = json!({"id": "crud-pro", "name": "Pro", "stripe_price_id": "price_crud_pro", "price_cents": 2000,
        "included_usd": "20", "rollover": true, "rollover_cap_usd": "5", "models": ["openai/gpt-4o-mini"], "max_concurrent": 4});
    let r = s.admin("POST", "/admin/plans", Some(pro.clone()));
    assert_eq!(r.status, 200, "{}", r.body);
    let listed = plans(s).into_iter().find(|p| p["id"] == "crud-pro").expect("listed");
    assert_eq!((listed["included_usd"].as_f64(), listed["rollover_cap_usd"].as_f64(), listed["max_concurrent"].as_u64()), (Some(20.0), Some(5.0), Some(4)));
    assert_eq!(listed["models"], json!(["openai/gpt-4o-mini"]));
    // Replaced whole by id.
    let mut changed = pro.clone();
    changed["included_usd"] = json!("25");
    assert_eq!(s.admin("POST", "/admin/plans", Some(changed)).status, 200);
    assert_eq!(plans(s).into_iter().find(|p| p["id"] == "crud-pro").unwrap()["included_usd"], 25.0);
    // One price, one plan; refusals name the field.
    let clash = s.admin("POST", "/admin/plans", Some(json!({"id": "crud-other", "stripe_price_id": "price_crud_pro"})));
    assert_eq!(clash.status, 409, "{}", clash.body);
    let bad = s.admin("POST", "/admin/plans", Some(json!({"id": "crud-bad", "stripe_price_id": "p", "included_usd": "-3"})));
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("included_usd"), "{}", bad.body);
    // The free plan cannot be deleted; another can; an unknown one is a 404.
    assert_eq!(s.admin("DELETE", "/admin/plans/free", None).status, 409);
    assert_eq!(s.admin("DELETE", "/admin/plans/crud-pro", None).status, 200);
    assert_eq!(s.admin("DELETE", "/admin/plans/crud-pro", None).status, 404);
    assert!(!plans(s).iter().any(|p| p["id"] == "crud-pro"));
    // The admin token is required.
    assert_eq!(integration_tests::get(&format!("{}/admin/plans", s.base)).status, 401);
}
