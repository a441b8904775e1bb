//! Device login through the real stack, both CLI generations on both path
//! families: start → pending → approve (session) → poll → credential, with
//! slow-down, expiry, deny, single use, the session requirement, the page
//! (who is asking, before approval; a second confirmation for old codes),
//! and the off switch (what the older generation's device token may do, and
//! the audit row of every key-creating path: device_token.rs). Polls are 1 s
//! apart (`DEVICE_POLL_INTERVAL_SECONDS=1`).

use dexto_shared::jwt_testing::{self as t, EC_KID};
use integration_tests::device::{begin, chat_body, decide, fresh_sub, poll_new, poll_old, post, wait_interval, FAMILIES};
use integration_tests::visitor::Visitor;
use integration_tests::{start, HttpResponse, Stack};
use serde_json::{json, Value};
use std::sync::OnceLock;
use std::time::Duration;

fn main_stack() -> &'static Stack {
    static S: OnceLock<Stack> = OnceLock::new();
    S.get_or_init(|| start(&[("DEVICE_POLL_INTERVAL_SECONDS", "1")]))
}

/// Codes live 1 s, no HS256 secret (device tokens need none), and no
/// verification URL (so the page on this origin), as `npm run dev` does.
fn short_stack() -> &'static Stack {
    static S: OnceLock<Stack> = OnceLock::new();
    S.get_or_init(|| {
        start(&[("DEVICE_CODE_TTL_SECONDS", "1"), ("DEVICE_POLL_INTERVAL_SECONDS", "1"), ("SUPABASE_JWT_SECRET", ""), ("DEVICE_VERIFICATION_URL", "")])
    })
}

fn disabled_stack() -> &'static Stack {
    static S: OnceLock<Stack> = OnceLock::new();
    S.get_or_init(|| start(&[("DEVICE_LOGIN_ENABLED", "false")]))
}

#[test]
fn start_answers_every_generations_fields() {
    let s = main_stack();
    for family in FAMILIES {
        let b = begin(s, family);
        let code = b["userCode"].as_str().unwrap();
        assert_eq!(code.len(), 9, "{code}");
        assert!(code.chars().enumerate().all(|(i, c)| if i == 4 { c == '-' } else { "0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains(c) }), "{code}");
        assert_eq!(b["deviceCode"].as_str().unwrap().len(), 64);
        assert_eq!(b["verificationUri"], "https://api.dexto.ai/device");
        assert_eq!(b["verificationUriComplete"], format!("https://api.dexto.ai/device?user_code={code}"));
        assert_eq!((b["expiresIn"].as_i64(), b["interval"].as_i64()), (Some(600), Some(1)));
        for (camel, snake) in [("deviceCode", "device_code"), ("userCode", "user_code"), ("verificationUri", "verification_uri"), ("verificationUrl", "verification_url"), ("verificationUriComplete", "verification_uri_complete"), ("verificationUriComplete", "verificationUrlComplete"), ("expiresIn", "expires_in")] {
            assert_eq!(b[camel], b[snake], "{snake}");
        }
    }
    // Only the SHA-256 of the device code is stored.
    let b = begin(s, "/api/auth/device");
    let plain = b["deviceCode"].as_str().unwrap();
    let hash = dexto_shared::device::device_code_hash(plain);
    let stored = s.d1(&format!("SELECT user_code, client, status, device_code_hash = '{plain}' AS plain FROM device_codes WHERE device_code_hash = '{hash}'"));
    assert_eq!(json!(stored), json!([{"user_code": b["userCode"], "client": "dexto-cli", "status": "pending", "plain": 0}]));
}

#[test]
fn new_generation_gets_a_working_api_key_once() {
    let s = main_stack();
    for family in FAMILIES {
        let u = s.new_user("1");
        let session = s.session_token(&u.id, "dev@example.com");
        let started = post(s, &format!("{family}/start"), &json!({"client": "dexto-cli", "host": "my-laptop"})).json();

        let pending = poll_new(s, family, &started);
        assert_eq!((pending.status, pending.json()), (200, json!({"status": "pending"})), "2xx, no error field");
        assert_eq!(decide(s, "approve", &session, &started["userCode"]).status, 200);

        wait_interval();
        let r = poll_new(s, family, &started);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.header("Cache-Control"), Some("no-store"));
        let b = r.json();
        assert_eq!(b["status"], "approved");
        let key = b["fullKey"].as_str().unwrap();
        assert!(key.starts_with("dxk_"));
        let api_key = &b["apiKey"];
        assert_eq!((&api_key["scopes"], &api_key["status"]), (&json!(["gateway:use"]), &json!("active")));
        // Named so a person can tell device logins apart: client, host, when.
        let name = api_key["name"].as_str().unwrap();
        assert!(name.starts_with("Device login · dexto-cli on my-laptop · 20") && name.ends_with(" UTC"), "{name}");
        assert!(api_key["keyDisplay"].as_str().unwrap().starts_with(&key[..8]));

        let chat = s.chat(key, &chat_body());
        assert_eq!(chat.status, 200, "{}", chat.body);
        let listed = s.call("GET", "/api/keys", &session, None).json();
        assert!(listed["data"].as_array().unwrap().iter().any(|k| k["id"] == api_key["id"]), "{listed}");
        // …and when it was last used.
        s.d1_until(&format!("SELECT last_used_at FROM api_keys WHERE id = '{}'", api_key["id"].as_str().unwrap()), |rows| {
            rows.first().is_some_and(|r| !r["last_used_at"].is_null())
        });

        wait_interval();
        let again = poll_new(s, family, &started);
        assert_eq!((again.status, again.json()["error"].as_str()), (400, Some("invalid_grant")), "single use: {}", again.body);
    }
}

#[test]
fn polling_faster_than_the_interval_is_slowed_down() {
    let s = main_stack();
    let started = begin(s, "/api/auth/device");
    assert_eq!(poll_new(s, "/api/auth/device", &started).status, 200);
    let fast = poll_new(s, "/api/auth/device", &started);
    assert_eq!((fast.status, fast.json()["status"].as_str(), fast.header("Retry-After")), (429, Some("slow_down"), Some("1")));
    assert!(fast.json().get("error").is_none());
    let fast_old = poll_old(s, "/auth/device", &started);
    assert_eq!((fast_old.status, fast_old.json()["error"].as_str()), (429, Some("slow_down")));
    // A refused poll does not restart the clock.
    wait_interval();
    assert_eq!(poll_new(s, "/api/auth/device", &started).json(), json!({"status": "pending"}));
}

#[test]
fn denied_logins_are_refused_in_both_generations() {
    let s = main_stack();
    let session = s.session_token(&fresh_sub(), "deny@example.com");
    let new_gen = begin(s, "/api/auth/device");
    let old_gen = begin(s, "/auth/device");
    for started in [&new_gen, &old_gen] {
        let r = decide(s, "deny", &session, &started["userCode"]);
        assert_eq!((r.status, r.json()["status"].as_str()), (200, Some("denied")), "{}", r.body);
    }
    let r = poll_new(s, "/api/auth/device", &new_gen);
    assert_eq!((r.status, r.json()["status"].as_str(), r.json()["error"].as_str()), (400, Some("denied"), Some("access_denied")));
    let r = poll_old(s, "/auth/device", &old_gen);
    assert_eq!((r.status, r.json()["error"].as_str()), (400, Some("access_denied")));
    // A decided code cannot be decided the other way.
    assert_eq!(decide(s, "approve", &session, &new_gen["userCode"]).status, 409);
}

#[test]
fn approval_needs_a_session_and_a_live_code() {
    let s = main_stack();
    let started = begin(s, "/api/auth/device");
    let code = started["userCode"].as_str().unwrap();
    let bare = post(s, "/api/auth/device/approve", &json!({"userCode": code}));
    assert_eq!(bare.status, 401, "{}", bare.body);
    let u = s.new_user("0");
    assert_eq!(decide(s, "approve", &u.key, &json!(code)).status, 401, "an API key is not a session");
    assert_eq!(decide(s, "deny", "not.a.jwt", &json!(code)).status, 401);

    let session = s.session_token(&fresh_sub(), "a@example.com");
    assert_eq!(decide(s, "approve", &session, &json!("ZZZZ-ZZZ0")).status, 404);
    assert_eq!(decide(s, "approve", &session, &json!("nope")).status, 404);
    assert_eq!(s.call("POST", "/api/auth/device/approve", &session, Some(json!({}))).status, 400);

    // Typed loosely (lower case, no hyphen) it is the same code; repeating is a no-op.
    let typed = code.replace('-', " ").to_lowercase();
    assert_eq!(decide(s, "approve", &session, &json!(typed)).status, 200);
    assert_eq!(decide(s, "approve", &session, &json!(code)).status, 200);
    let other = s.session_token(&fresh_sub(), "b@example.com");
    assert_eq!(decide(s, "approve", &other, &json!(code)).status, 409, "someone else's approved code");
}

#[test]
fn racing_polls_mint_exactly_one_key() {
    let s = main_stack();
    let sub = fresh_sub();
    let session = s.session_token(&sub, "race@example.com");
    let started = begin(s, "/api/auth/device");
    assert_eq!(decide(s, "approve", &session, &started["userCode"]).status, 200);
    let polls: Vec<HttpResponse> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4).map(|_| scope.spawn(|| poll_new(s, "/api/auth/device", &started))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let approved = polls.iter().filter(|r| r.status == 200).count();
    assert_eq!(approved, 1, "{:?}", polls.iter().map(|r| (r.status, &r.body)).collect::<Vec<_>>());
    assert!(polls.iter().all(|r| r.status == 200 || r.status == 429 || r.status == 400));
    let keys = s.call("GET", "/api/keys", &session, None).json();
    assert_eq!(keys["data"].as_array().unwrap().len(), 1, "{keys}");
}

#[test]
fn unknown_codes_and_bad_bodies() {
    let s = main_stack();
    for family in FAMILIES {
        let r = post(s, &format!("{family}/poll"), &json!({"deviceCode": "no-such-code"}));
        assert_eq!((r.status, r.json()["error"].as_str()), (400, Some("invalid_grant")));
        let r = post(s, &format!("{family}/poll"), &json!({"device_code": "no-such-code"}));
        assert_eq!((r.status, r.json()["error"].as_str()), (400, Some("invalid_grant")));
        let r = post(s, &format!("{family}/poll"), &json!({}));
        assert_eq!((r.status, r.json()["error"].as_str()), (400, Some("invalid_request")));
        let r = integration_tests::post(&format!("{}{family}/poll", s.base), &[], b"device_code=x");
        assert_eq!((r.status, r.json()["error"].as_str()), (400, Some("invalid_request")));
    }
}

#[test]
fn the_verification_page_asks_to_sign_in_and_comes_back() {
    // Signed out, /device leads to the dashboard's sign-in, which returns to
    // the same code afterwards (tests/tests/dashboard_browser.rs approves one).
    let s = main_stack();
    let r = integration_tests::get(&format!("{}/device?user_code=ABCD-EFGH", s.base));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("text/html; charset=utf-8"));
    assert!(r.header("Content-Security-Policy").unwrap().contains("frame-ancestors 'none'"));
    assert!(r.body.contains("Sign in to Dexto") && r.body.contains("next=%2Fdevice%3Fuser_code%3DABCD-EFGH"), "{}", r.body);
    assert!(!r.body.contains("<script>"), "no inline script");
}

fn visitor(s: &Stack, sub: &str) -> Visitor {
    Visitor::with_session(&s.session_token(sub, "page@example.com"))
}

/// A 1.8.0+-style start from "ci-box", version in `X-Dexto-Version`.
fn begin_from_ci_box(s: &Stack) -> Value {
    let headers = [("Content-Type", "application/json"), ("X-Dexto-Version", "1.7.2")];
    let r = integration_tests::post(&format!("{}/api/auth/device/start", s.base), &headers, json!({"clientId": "dexto-cli", "host": "ci-box"}).to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

#[test]
fn the_page_shows_who_is_asking_before_approval() {
    let s = main_stack();
    let started = begin_from_ci_box(s);
    let code = started["userCode"].as_str().unwrap();
    let stored = s.d1(&format!("SELECT client, client_version, client_ip, client_country FROM device_codes WHERE user_code = '{code}'"));
    let ip = stored[0]["client_ip"].as_str().unwrap_or_else(|| panic!("the requesting IP is recorded: {stored:?}")).to_string();
    assert_eq!((&stored[0]["client"], &stored[0]["client_version"]), (&json!("dexto-cli on ci-box"), &json!("1.7.2")), "{stored:?}");

    let v = visitor(s, &fresh_sub());
    let page = v.get(s, &format!("/device?user_code={code}"));
    assert_eq!(page.status, 200, "{}", page.body);
    let html = &page.body;
    for shown in ["dexto-cli on ci-box", "version 1.7.2", "just now", "Approve only if you started this login yourself just now", code] {
        assert!(html.contains(shown), "{shown:?} missing: {html}");
    }
    let from = match stored[0]["client_country"].as_str() {
        Some(country) => format!(r#"<dd id="device-ip">{ip} ({country})</dd>"#),
        None => format!(r#"<dd id="device-ip">{ip}</dd>"#),
    };
    assert!(html.contains(&from), "{from} missing: {html}");
    assert!(!html.contains(started["deviceCode"].as_str().unwrap()), "never the device code");
    assert!(!html.contains("<script>") && !html.contains("style="), "no inline script or style");
    // Still pending: showing is not approving.
    assert_eq!(poll_new(s, "/api/auth/device", &started).json(), json!({"status": "pending"}));

    // The look-up is for signed-in people only, and names no device code.
    let api = format!("/api/auth/device/pending?user_code={code}");
    assert_eq!(integration_tests::get(&format!("{}{api}", s.base)).status, 401);
    let looked = s.call("GET", &api, &s.session_token(&fresh_sub(), "x@example.com"), None).json();
    assert_eq!((&looked["client"], &looked["clientVersion"], &looked["ip"], &looked["needsConfirmation"]), (&json!("dexto-cli on ci-box"), &json!("1.7.2"), &json!(ip), &json!(false)));
    assert!(!looked.to_string().contains(started["deviceCode"].as_str().unwrap()));

    // Approving from the page hands the CLI its key.
    let done = v.post(s, "/device", &[("user_code", code), ("decision", "approve")]);
    assert!(done.body.contains(r#"id="device-result">Approved"#), "{}", done.body);
    wait_interval();
    assert_eq!(poll_new(s, "/api/auth/device", &started).json()["status"], "approved");

    // Without a code the page asks for one; an unknown code says so.
    assert!(v.get(s, "/device").body.contains(r#"id="user-code""#));
    let unknown = v.get(s, "/device?user_code=ZZZZ-ZZZ0");
    assert!(unknown.body.contains(r#"id="device-problem""#) && !unknown.body.contains(r#"id="approve""#), "{}", unknown.body);
}

#[test]
fn an_old_code_needs_a_second_confirmation() {
    let s = main_stack();
    let started = begin_from_ci_box(s);
    let code = started["userCode"].as_str().unwrap();
    // Issued 4 minutes ago (past CONFIRM_AFTER_SECS), still live.
    let age_ms = (dexto_shared::device::CONFIRM_AFTER_SECS + 60) * 1000;
    s.d1(&format!("UPDATE device_codes SET created_at = created_at - {age_ms} WHERE user_code = '{code}'"));
    let v = visitor(s, &fresh_sub());
    let page = v.get(s, &format!("/device?user_code={code}"));
    assert!(page.body.contains(r#"<dd id="device-age">4 minutes ago</dd>"#), "{}", page.body);

    // The first Approve asks again, and approves nothing yet.
    let first = v.post(s, "/device", &[("user_code", code), ("decision", "approve")]);
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(first.body.contains(r#"id="device-confirm""#) && first.body.contains(r#"name="confirm" value="yes""#), "{}", first.body);
    assert!(!first.body.contains("device-result"), "{}", first.body);
    assert_eq!(poll_new(s, "/api/auth/device", &started).json(), json!({"status": "pending"}));
    // The API holds the same line for any other caller.
    let session = s.session_token(&fresh_sub(), "api@example.com");
    let unconfirmed = decide(s, "approve", &session, &json!(code));
    assert_eq!(unconfirmed.status, 409, "{}", unconfirmed.body);
    assert!(unconfirmed.json()["error"]["message"].as_str().unwrap().contains("4 minutes ago"), "{}", unconfirmed.body);

    let second = v.post(s, "/device", &[("user_code", code), ("decision", "approve"), ("confirm", "yes")]);
    assert!(second.body.contains(r#"id="device-result">Approved"#), "{}", second.body);
    wait_interval();
    assert_eq!(poll_new(s, "/api/auth/device", &started).json()["status"], "approved");
}

#[test]
fn codes_expire() {
    let s = short_stack();
    let started = begin(s, "/api/auth/device");
    assert_eq!(started["expiresIn"], 1);
    std::thread::sleep(Duration::from_millis(1200));
    let r = poll_new(s, "/api/auth/device", &started);
    assert_eq!((r.status, r.json()["status"].as_str(), r.json()["error"].as_str()), (400, Some("expired"), Some("expired_token")), "{}", r.body);
    let claims = t::claims(&fresh_sub(), "late@example.com", &s.issuer(), started_secs() + 600);
    let session = t::sign_es256(&claims, EC_KID);
    assert_eq!(decide(s, "approve", &session, &started["userCode"]).status, 404);
}

#[test]
fn without_an_hs256_secret_old_clients_still_log_in() {
    // Device tokens need no signing secret: the 1.6.9–1.7.x poll waits like any other.
    let s = short_stack();
    let started = begin(s, "/auth/device");
    assert_eq!(started["verificationUri"], format!("{}/device", s.base));
    let r = poll_old(s, "/auth/device", &started);
    assert_eq!((r.status, r.json()["error"].as_str()), (400, Some("authorization_pending")), "{}", r.body);
}

#[test]
fn the_switch_turns_device_login_off() {
    let s = disabled_stack();
    for family in FAMILIES {
        assert_eq!(post(s, &format!("{family}/start"), &json!({"client": "dexto-cli"})).status, 404);
        assert_eq!(post(s, &format!("{family}/poll"), &json!({"deviceCode": "x"})).status, 404);
        assert_eq!(post(s, &format!("{family}/poll"), &json!({"device_code": "x"})).status, 404);
    }
    assert_eq!(integration_tests::get(&format!("{}/device", s.base)).status, 404);
    assert_eq!(decide(s, "approve", &s.session_token(&fresh_sub(), "x@example.com"), &json!("ABCD-EFGH")).status, 404);
}

fn started_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}
