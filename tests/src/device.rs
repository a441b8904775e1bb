//! Device-login steps as the CLI generations take them (start, poll, and
//! the person's approve/deny), shared by the device-login test files.

use crate::{HttpResponse, Stack};
use serde_json::{json, Value};
use std::time::Duration;

/// Both path families the CLI generations use.
pub const FAMILIES: [&str; 2] = ["/api/auth/device", "/auth/device"];

pub fn post(s: &Stack, path: &str, body: &Value) -> HttpResponse {
    crate::post(&format!("{}{path}", s.base), &[("Content-Type", "application/json")], body.to_string().as_bytes())
}

pub fn begin(s: &Stack, family: &str) -> Value {
    let r = post(s, &format!("{family}/start"), &json!({"client": "dexto-cli"}));
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

pub fn poll_new(s: &Stack, family: &str, started: &Value) -> HttpResponse {
    post(s, &format!("{family}/poll"), &json!({"deviceCode": started["deviceCode"]}))
}

pub fn poll_old(s: &Stack, family: &str, started: &Value) -> HttpResponse {
    post(s, &format!("{family}/poll"), &json!({"device_code": started["device_code"]}))
}

pub fn decide(s: &Stack, action: &str, token: &str, user_code: &Value) -> HttpResponse {
    s.call("POST", &format!("/api/auth/device/{action}"), token, Some(json!({"userCode": user_code})))
}

/// Just over the poll interval.
pub fn wait_interval() {
    std::thread::sleep(Duration::from_millis(1100));
}

pub fn fresh_sub() -> String {
    format!("dev-{}", dexto_shared::ids::new_id(""))
}

pub fn chat_body() -> Value {
    json!({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi from device login"}], "max_tokens": 5})
}
