//! The Stripe slice: sessions created through the API, paid and refunded out
//! of band, then read back with Stripe's list shape and cursor pagination.

mod common;

use common::*;
use mock_openrouter::spawn_in_background;
use serde_json::{json, Value};

const SK: &str = "Bearer sk_test_mock";

fn create(addr: std::net::SocketAddr, cents: i64) -> String {
    let form = format!("mode=payment&line_items%5B0%5D%5Bprice_data%5D%5Bcurrency%5D=usd&line_items%5B0%5D%5Bprice_data%5D%5Bunit_amount%5D={cents}&line_items%5B0%5D%5Bquantity%5D=1&client_reference_id=u1&metadata%5Buser_id%5D=u1");
    let r = request(addr, "POST", "/v1/checkout/sessions", &[("Authorization", SK), ("Content-Type", "application/x-www-form-urlencoded")], &form);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["id"].as_str().unwrap().to_string()
}

fn post(addr: std::net::SocketAddr, path: &str, body: &Value) -> Reply {
    request(addr, "POST", path, &[("Content-Type", "application/json")], &body.to_string())
}

fn ids(page: &Value) -> Vec<String> {
    page["data"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn paid_sessions_are_listed_newest_first_in_pages() {
    let addr = spawn_in_background();
    let sessions: Vec<String> = (0..5).map(|i| create(addr, 500 + i)).collect();
    assert_eq!(get(addr, "/v1/checkout/sessions", None).status, 401);
    let open = get(addr, &format!("/v1/checkout/sessions/{}", sessions[0]), Some(SK)).json();
    assert_eq!((open["status"].as_str(), open["payment_status"].as_str(), open["amount_total"].as_i64()), (Some("open"), Some("unpaid"), Some(500)));
    assert_eq!(get(addr, "/v1/checkout/sessions/cs_nope", Some(SK)).status, 404);

    // Pay four of them; one was opened two hours ago.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let old = post(addr, &format!("/__mock/stripe/sessions/{}/pay", sessions[1]), &json!({"created": now - 7200})).json();
    assert_eq!((old["status"].as_str(), old["payment_status"].as_str(), old["created"].as_i64()), (Some("complete"), Some("paid"), Some(now - 7200)));
    assert!(old["payment_intent"].as_str().unwrap().starts_with("pi_"));
    for s in &sessions[2..] {
        assert_eq!(post(addr, &format!("/__mock/stripe/sessions/{s}/pay"), &json!({})).status, 200);
    }

    let first = get(addr, "/v1/checkout/sessions?status=complete&limit=2", Some(SK)).json();
    assert_eq!((first["object"].as_str(), first["url"].as_str(), first["has_more"].as_bool()), (Some("list"), Some("/v1/checkout/sessions"), Some(true)));
    assert_eq!(ids(&first), vec![sessions[4].clone(), sessions[3].clone()], "newest first");
    let after = ids(&first)[1].clone();
    let second = get(addr, &format!("/v1/checkout/sessions?status=complete&limit=2&starting_after={after}"), Some(SK)).json();
    assert_eq!(ids(&second), vec![sessions[2].clone(), sessions[1].clone()]);
    assert_eq!(second["has_more"], false);
    // `created[gte]` (encoded or not) bounds the window; the unpaid one is not complete.
    let recent = get(addr, &format!("/v1/checkout/sessions?status=complete&limit=100&created%5Bgte%5D={}", now - 60), Some(SK)).json();
    assert_eq!(ids(&recent), vec![sessions[4].clone(), sessions[3].clone(), sessions[2].clone()]);
    let older = get(addr, &format!("/v1/checkout/sessions?limit=100&created[lte]={}", now - 3600), Some(SK)).json();
    assert_eq!(ids(&older), vec![sessions[1].clone()]);
    assert_eq!(get(addr, "/v1/checkout/sessions?limit=101", Some(SK)).status, 400);
    assert_eq!(get(addr, "/v1/checkout/sessions?starting_after=cs_nope", Some(SK)).status, 400);
}

#[test]
fn refunds_made_out_of_band_are_listed_by_charge() {
    let addr = spawn_in_background();
    let cs = create(addr, 2000);
    let pi = post(addr, &format!("/__mock/stripe/sessions/{cs}/pay"), &json!({})).json()["payment_intent"].as_str().unwrap().to_string();
    let a = post(addr, "/__mock/stripe/refunds", &json!({"payment_intent": pi, "amount": 500})).json();
    let b = post(addr, "/__mock/stripe/refunds", &json!({"payment_intent": pi, "amount": 300})).json();
    assert_eq!(post(addr, "/__mock/stripe/refunds", &json!({"payment_intent": pi})).status, 400);
    assert_eq!(a["charge"], b["charge"], "one charge per payment");
    assert_eq!((a["object"].as_str(), a["status"].as_str(), a["amount"].as_i64(), a["currency"].as_str()), (Some("refund"), Some("succeeded"), Some(500), Some("usd")));
    let other = post(addr, "/__mock/stripe/refunds", &json!({"payment_intent": "pi_elsewhere", "amount": 100})).json();
    let all = get(addr, "/v1/refunds?limit=100", Some(SK)).json();
    assert_eq!(ids(&all).len(), 3);
    let charge = a["charge"].as_str().unwrap();
    let mine = get(addr, &format!("/v1/refunds?charge={charge}&limit=1"), Some(SK)).json();
    assert_eq!((ids(&mine), mine["has_more"].as_bool()), (vec![b["id"].as_str().unwrap().to_string()], Some(true)));
    let rest = get(addr, &format!("/v1/refunds?charge={charge}&limit=1&starting_after={}", b["id"].as_str().unwrap()), Some(SK)).json();
    assert_eq!((ids(&rest), rest["has_more"].as_bool()), (vec![a["id"].as_str().unwrap().to_string()], Some(false)));
    assert_ne!(other["charge"], a["charge"]);
}
