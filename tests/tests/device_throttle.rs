//! Unauthenticated device-login starts each write to D1, so they are
//! throttled per client IP (and overall): past the limit, 429 with
//! Retry-After and nothing written. Its own stack: the limit is per IP, and
//! every test here comes from 127.0.0.1.

use integration_tests::{marker, post, Stack};
use serde_json::json;
use std::sync::OnceLock;

fn stack() -> &'static Stack {
    static S: OnceLock<Stack> = OnceLock::new();
    S.get_or_init(|| integration_tests::start(&[]))
}

#[test]
fn device_login_starts_are_rate_limited_per_client_ip() {
    let s = stack();
    let client = marker("flood");
    let body = json!({"client": client}).to_string();
    let (mut accepted, mut refused) = (0, None);
    // 30 a minute per IP (wrangler.toml); bounded so the test always ends.
    for _ in 0..100 {
        let r = post(&format!("{}/api/auth/device/start", s.base), &[("Content-Type", "application/json")], body.as_bytes());
        match r.status {
            200 => accepted += 1,
            429 => {
                refused = Some(r);
                break;
            }
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    let refused = refused.expect("a flood of starts is throttled");
    assert!(accepted >= 1, "the first starts are served");
    assert_eq!(refused.header("Retry-After"), Some("60"));
    assert_eq!(refused.json()["error"]["code"], "rate_limited");
    let rows = s.d1(&format!("SELECT COUNT(*) AS n FROM device_codes WHERE client = '{client}'"));
    assert_eq!(rows[0]["n"], accepted, "a refused start writes nothing");
}
