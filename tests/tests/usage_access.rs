//! Usage endpoints: a user only ever sees their own rows, auth and parameters
//! are checked, month-to-date is the UTC calendar month, and every query is
//! served by an index on (user_id, created_at) — never a scan of the ledger.

use dexto_shared::time::{self, month_start};
use dexto_shared::usage_query::{history, summary, Cursor, Filters, GroupBy, TimeRange, MAX_MS};
use integration_tests::{marker, stack, Stack, TestUser};
use serde_json::{json, Value};
use std::sync::{Mutex, MutexGuard};

/// These tests run one at a time: one of them writes to the local D1 file
/// directly (wrangler d1 execute), which can make a concurrent write by the
/// stack fail with SQLITE_BUSY, a local-only artefact of two processes on one file.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

const ENDPOINTS: &[&str] = &["/me/usage", "/api/account/usage", "/me/usage/history", "/me/usage/summary", "/me/usage/export"];

fn call(s: &Stack, u: &TestUser) -> String {
    let r = s.chat(&u.key, &json!({"model": "openai/gpt-4o-mini", "max_tokens": 3, "messages": [{"role": "user", "content": marker("iso")}]}));
    assert_eq!(r.status, 200, "{}", r.body);
    r.header("X-Dexto-Request-ID").unwrap().to_string()
}

fn ids(v: &Value) -> Vec<String> {
    v["data"].as_array().unwrap().iter().map(|r| r["request_id"].as_str().unwrap().to_string()).collect()
}

/// Inserts a ledger row directly (a time the API cannot produce).
fn seed_row(s: &Stack, u: &TestUser, request_id: &str, created_at: i64, price_micros: i64) {
    s.d1(&format!(
        "INSERT INTO usage_ledger (request_id, user_id, key_id, model, prompt_tokens, completion_tokens, provider_cost_micros,
           user_price_micros, price_basis, billing_status, created_at)
         VALUES ('{request_id}', '{}', '{}', 'openai/gpt-4o', 10, 5, {price_micros}, {price_micros}, 'reported_cost', 'billed', {created_at})",
        u.id, u.key_id
    ));
}

#[test]
fn a_user_sees_only_their_own_usage() {
    let _serial = serial();
    let s = stack();
    let (a, b) = (s.new_user("1"), s.new_user("1"));
    let a_ids = [call(s, &a), call(s, &a)];
    let b_id = call(s, &b);
    s.settled_user(&a.id, 2);
    s.settled_user(&b.id, 1);

    assert_eq!(s.usage(&a.key, "/me/usage").json()["mtd_usage"]["total_requests"], 2);
    assert_eq!(s.usage(&b.key, &format!("/me/usage?user_id={}", a.id)).json()["mtd_usage"]["total_requests"], 1);
    let mut a_seen = ids(&s.usage(&a.key, &format!("/me/usage/history?user_id={}", b.id)).json());
    a_seen.sort();
    let mut expected = a_ids.to_vec();
    expected.sort();
    assert_eq!(a_seen, expected, "another user's id in the query changes nothing");
    assert_eq!(ids(&s.usage(&b.key, "/me/usage/history").json()), std::slice::from_ref(&b_id));
    assert_eq!(ids(&s.usage(&b.key, "/me/usage/export?format=json").json()), std::slice::from_ref(&b_id));
    let csv = s.usage(&b.key, "/me/usage/export").body;
    assert!(csv.contains(&b_id) && !a_ids.iter().any(|id| csv.contains(id)));
    assert_eq!(s.usage(&b.key, "/me/usage/summary?group_by=key").json()["total"]["requests"], 1);

    // A's cursor in B's hands pages through B's rows only.
    let page = s.usage(&a.key, "/me/usage/history?limit=1").json();
    let cursor = page["next_cursor"].as_str().expect("a second page");
    let foreign = s.usage(&b.key, &format!("/me/usage/history?cursor={cursor}")).json();
    assert!(ids(&foreign).iter().all(|id| *id == b_id), "{foreign}");
}

#[test]
fn auth_methods_and_parameters_are_checked() {
    let _serial = serial();
    let s = stack();
    let u = s.new_user("0");
    for path in ENDPOINTS {
        let r = integration_tests::get(&format!("{}{path}", s.base));
        assert_eq!((r.status, r.json()["error"]["code"].as_str()), (401, Some("missing_api_key")), "{path}");
        assert_eq!(s.usage("dxk_bogus", path).status, 401, "{path}");
        let post = integration_tests::post(&format!("{}{path}", s.base), &[("Authorization", &format!("Bearer {}", u.key))], b"{}");
        assert_eq!(post.status, 405, "{path}");
        assert_eq!(s.usage(&u.key, path).status, 200, "{path}");
    }
    assert_eq!(s.usage(&u.key, "/me/usage/nothing").status, 404);
    for (query, needle) in [
        ("/me/usage/history?limit=0", "limit"),
        ("/me/usage/history?limit=501", "limit"),
        ("/me/usage/history?cursor=nonsense", "cursor"),
        ("/me/usage/history?from=yesterday", "from"),
        ("/me/usage/history?status=paid", "status"),
        ("/me/usage/summary?group_by=user", "group_by"),
        ("/me/usage/summary?from=2026-02-01&to=2026-01-01", "before"),
        ("/me/usage/export?format=xml", "format"),
    ] {
        let r = s.usage(&u.key, query);
        assert_eq!(r.status, 400, "{query}: {}", r.body);
        assert!(r.json()["error"]["message"].as_str().unwrap().contains(needle), "{query}: {}", r.body);
    }

    // Revocation is seen on the very next request (keys are read fresh here).
    assert_eq!(s.admin("POST", &format!("/admin/keys/{}/revoke", u.key_id), None).status, 200);
    assert_eq!(s.usage(&u.key, "/me/usage").status, 401);
}

#[test]
fn month_to_date_is_the_calendar_month_in_utc() {
    let _serial = serial();
    let s = stack();
    let u = s.new_user("0");
    let now = integration_tests::now_ms();
    let start = month_start(now);
    seed_row(s, &u, &format!("req_prev_{}", u.id), start - 1, 700);
    seed_row(s, &u, &format!("req_this_{}", u.id), start, 300);

    let me = s.usage(&u.key, "/me/usage").json();
    assert_eq!((me["mtd_usage"]["total_requests"].as_i64(), me["mtd_usage"]["total_cost_usd"].clone()), (Some(1), json!(0.0003)));
    assert_eq!(me["mtd_usage"]["period_start"], time::rfc3339(start));
    assert_eq!(s.usage(&u.key, "/me/usage/summary").json()["total"]["user_price_usd"], "0.000300");
    assert_eq!(ids(&s.usage(&u.key, "/me/usage/export?format=json").json()).len(), 1);
    assert_eq!(ids(&s.usage(&u.key, "/me/usage/history").json()).len(), 2, "the history is all time");
    let previous = format!("/me/usage/summary?from={}&to={}", time::date(month_start(start - 1)), time::date(start - 1));
    let prev = s.usage(&u.key, &previous).json();
    assert_eq!((prev["total"]["requests"].as_i64(), prev["total"]["user_price_usd"].as_str()), (Some(1), Some("0.000700")), "{prev}");
}

#[test]
fn every_query_reads_one_users_rows_through_an_index() {
    let _serial = serial();
    let s = stack();
    let all_time = TimeRange { from_ms: 0, to_ms: MAX_MS };
    let cursor = Cursor { created_at: 1_769_508_000_000, request_id: "req_x".into() };
    let text = |v: &str| Some(v.to_string());
    let filtered = [
        (Filters::default(), "usage_user_time (user_id=? AND created_at>? AND created_at<?)"),
        (Filters { model: text("openai/gpt-4o"), ..Default::default() }, "usage_user_model_time (user_id=? AND model=? AND created_at>? AND created_at<?)"),
        (Filters { key_id: text("key_1"), ..Default::default() }, "usage_user_key_time (user_id=? AND key_id=? AND created_at>? AND created_at<?)"),
        (Filters { session_id: text("s1"), ..Default::default() }, "usage_user_session_time (user_id=? AND session_id=? AND created_at>? AND created_at<?)"),
        (Filters { status: text("needs_review"), ..Default::default() }, "usage_user_status_time (user_id=? AND billing_status=? AND created_at>? AND created_at<?)"),
    ];
    let mut cases = Vec::new();
    for (filters, index) in &filtered {
        cases.push((history("u", all_time, filters, None, 51), *index));
        cases.push((history("u", all_time, filters, Some(&cursor), 51), *index));
    }
    for group in [GroupBy::Day, GroupBy::Model, GroupBy::Key] {
        // A summary reads only its range's rows, never the user's whole history.
        cases.push((summary("u", TimeRange::month_to_date(1_769_508_000_000), group), filtered[0].1));
    }
    let plans = s.query_plans(&cases.iter().map(|(q, _)| q.inline()).collect::<Vec<_>>());
    assert_eq!(plans.len(), cases.len());
    for ((q, index), plan) in cases.iter().zip(plans) {
        assert!(!plan.iter().any(|step| step.starts_with("SCAN")), "{plan:?} for {}", q.sql);
        assert!(plan[0].starts_with("SEARCH usage_ledger USING ") && plan[0].ends_with(index), "{plan:?} for {}", q.sql);
        // Only ties on created_at may need sorting, never the whole result.
        assert!(plan.iter().skip(1).all(|step| step.contains("RIGHT PART OF ORDER BY") || step.contains("LAST TERM OF ORDER BY") || step.contains("GROUP BY")), "{plan:?}");
    }
}
