//! The dashboard in a real browser (Debian's headless Chromium over
//! WebDriver) against the real stack: sign-in through the mock Supabase
//! hosted page, keys, top-up through the mock Stripe Checkout and a signed
//! webhook, device approval (who is asking shown first) while a CLI-style
//! poll runs, the usage chart, an XSS attempt and a cross-site POST. Screenshots of every page are saved
//! in target/browser-artifacts/.

use integration_tests::browser::{one_at_a_time, Browser};
use integration_tests::{start, Stack};
use mock_openrouter::supabase_auth::sub_for;
use serde_json::{json, Value};
use std::sync::OnceLock;

fn stack() -> &'static Stack {
    static S: OnceLock<Stack> = OnceLock::new();
    // CLI polls may come every second here (the protocol's interval).
    S.get_or_init(|| start(&[("DEVICE_POLL_INTERVAL_SECONDS", "1")]))
}

fn email(tag: &str) -> String {
    format!("{tag}-{}@example.com", dexto_shared::ids::new_id(""))
}

/// Signs in through the dashboard: provider button → the (mock) hosted page
/// → back with a code. Returns the user id (Supabase `sub`).
fn sign_in(b: &Browser, s: &Stack, email: &str, start_path: &str) -> String {
    b.goto(&format!("{}{start_path}", s.base));
    b.wait_for("a.button");
    b.click("a.button");
    b.type_into("#email", email);
    b.click("#continue");
    b.wait_until("the page after sign-in", || b.url().starts_with(&s.base) && !b.url().contains("/dashboard/login") && b.count("h1") > 0);
    sub_for(email)
}

/// One test's browser, signed in as a fresh user (see `sign_in`). Browsers
/// take turns (`one_at_a_time`); the turn ends after the browser closes.
struct Visitor {
    b: Browser,
    mail: String,
    user: String,
    _turn: std::sync::MutexGuard<'static, ()>,
}

fn visitor(tag: &str, start_path: &str) -> Visitor {
    let turn = one_at_a_time();
    let b = Browser::open();
    let mail = email(tag);
    let user = sign_in(&b, stack(), &mail, start_path);
    Visitor { b, mail, user, _turn: turn }
}

fn session(s: &Stack, user: &str, email: &str) -> String {
    s.session_token(user, email)
}

fn keys_of(s: &Stack, user: &str, email: &str) -> Vec<Value> {
    let r = s.call("GET", "/api/keys", &session(s, user, email), None);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["data"].as_array().cloned().unwrap_or_default()
}

#[test]
fn sign_in_create_use_and_revoke_a_key() {
    let (s, v) = (stack(), visitor("keys", "/dashboard/keys"));
    let (b, mail, user) = (&v.b, &v.mail, &v.user);
    assert!(b.url().ends_with("/dashboard/keys"), "returned to the page asked for: {}", b.url());
    b.screenshot("keys-empty");

    b.type_into("#key-name", "laptop");
    b.click("form[action='/dashboard/keys'] button[type=submit]");
    b.wait_for("#new-key");
    let secret = b.text("#new-key");
    assert!(secret.starts_with("dxk_") && secret.len() > 40, "{secret}");
    assert_eq!(b.count("[data-copy='new-key']"), 1, "a copy button");
    b.screenshot("keys-created");
    // Shown once: the list (and a reload) never shows it again.
    b.goto(&format!("{}/dashboard/keys", s.base));
    assert!(!b.source().contains(&secret));

    // The key works, and the list learns when it was last used.
    s.credit(user, "1");
    let call = s.chat(&secret, &json!({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}));
    assert_eq!(call.status, 200, "{}", call.body);
    let key_id = keys_of(s, user, mail).iter().find(|k| k["name"] == "laptop").expect("listed")["id"].as_str().unwrap().to_string();
    let row = format!("tr[data-key-id='{key_id}']");
    b.wait_until("last used to be shown", || {
        b.goto(&format!("{}/dashboard/keys", s.base));
        b.text(&format!("{row} td.last-used")) != "never"
    });
    b.screenshot("keys-used");

    b.click(&format!("{row} form[action$='/revoke'] button"));
    b.wait_for("p.notice");
    assert_eq!(b.text(&format!("{row} td.status")), "revoked");
    let refused = s.chat(&secret, &json!({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}));
    assert_eq!(refused.status, 401, "{}", refused.body);
}

#[test]
fn an_xss_attempt_in_a_key_name_is_inert() {
    let (s, v) = (stack(), visitor("xss", "/dashboard/keys"));
    let b = &v.b;
    let payload = r#"<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>"#;
    b.type_into("#key-name", payload);
    b.click("form[action='/dashboard/keys'] button[type=submit]");
    b.wait_for("#new-key");
    b.goto(&format!("{}/dashboard/keys", s.base));
    b.wait_for("#keys");
    assert_eq!(b.count("#keys img"), 0, "no element was created from the name");
    assert_eq!(b.count("#keys script"), 0);
    assert_eq!(b.script("return window.__xss === undefined"), json!(true), "no script ran");
    assert!(b.text("#keys td.name").contains("<img src=x"), "the name is shown as text");
    b.screenshot("keys-xss");
}

#[test]
fn a_cross_site_post_is_refused() {
    let (s, v) = (stack(), visitor("csrf", "/dashboard"));
    let (b, mail, user) = (&v.b, &v.mail, &v.user);
    // Another origin (same host, other port: the same *site*, so SameSite
    // cookies alone would not stop it) auto-submits a form to our endpoint.
    let target = format!("{}/dashboard/keys", s.base);
    let evil = serve_once(&format!(
        r#"<!doctype html><form id="f" method="post" action="{target}"><input name="name" value="pwned"></form><script>document.getElementById("f").submit()</script>"#
    ));
    b.goto(&evil);
    b.wait_until("the cross-site POST to land", || b.url().starts_with(&target));
    assert!(b.source().contains("Cross-site request refused."), "{}", b.source());
    b.screenshot("csrf-refused");
    assert!(keys_of(s, user, mail).iter().all(|k| k["name"] != "pwned"), "no key was created");
}

/// What the page at `path` (already loaded) cost: the document and every
/// resource it fetched, as the browser's Resource Timing reports them.
fn page_weight(b: &Browser, path: &str) -> String {
    let v = b.script(
        "const n = performance.getEntriesByType('navigation')[0]; const r = performance.getEntriesByType('resource');\
         return {html: n.encodedBodySize, html_decoded: n.decodedBodySize, resources: r.length, resource_bytes: r.reduce((a, e) => a + e.encodedBodySize, 0)};",
    );
    format!("{path}: html {} B ({} B decoded), {} resources {} B", v["html"], v["html_decoded"], v["resources"], v["resource_bytes"])
}

/// Serves `html` to every request on a fresh port (the attacker's page).
fn serve_once(html: &str) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let body = html.to_string();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = write!(conn, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        }
    });
    url
}

#[test]
fn top_up_through_checkout_waits_for_the_webhook_then_shows_the_credit() {
    let (s, v) = (stack(), visitor("topup", "/dashboard/settings/billing?credits_usd=25"));
    let (b, user) = (&v.b, &v.user);
    // Hold webhook deliveries so the return page is seen waiting (other
    // browser tests wait for their turn, so none pays meanwhile).
    hold_webhooks(s, true);
    assert!(b.url().ends_with("/dashboard/settings/billing?credits_usd=25"), "{}", b.url());
    assert_eq!(b.script("return document.querySelector('input[name=pack][value=\"25\"]').checked"), json!(true), "?credits_usd preselects");
    b.screenshot("billing");
    b.click("form[action$='/checkout'] button[type=submit]");
    b.wait_for("#pay");
    assert!(b.url().starts_with(&s.mock), "on the (mock) Stripe Checkout page: {}", b.url());
    b.click("#pay");
    b.wait_for("#topup-pending");
    b.screenshot("billing-waiting");
    assert_eq!(s.user(user)["balance_micros"], 0, "nothing credited before the webhook");

    let delivered = integration_tests::post(&format!("{}/__mock/stripe/deliver", s.mock), &[], b"");
    assert_eq!(delivered.json()["delivered"], json!([200]), "{}", delivered.body);
    b.wait_for("#topup-done");
    assert!(b.text("#topup-done").contains("$25.00"));
    assert_eq!(b.text("#balance"), "$25.00");
    assert_eq!(s.user(user)["balance_micros"], 25_000_000);
    b.screenshot("billing-credited");
    hold_webhooks(s, false);
}

/// Where the mock's Checkout page sends its signed webhooks: this stack,
/// delivered at once or (`hold`) queued until `POST /__mock/stripe/deliver`.
fn hold_webhooks(s: &Stack, hold: bool) {
    let hook = json!({"url": format!("{}/api/stripe/webhook", s.base), "secret": s.webhook_secret, "hold": hold});
    let put = integration_tests::client::send("PUT", &format!("{}/__mock/stripe/webhook", s.mock), &[], Some(hook.to_string().as_bytes()));
    assert_eq!(put.status, 200, "{}", put.body);
}

#[test]
fn approving_a_device_code_while_the_cli_polls() {
    let s = stack();
    let started = integration_tests::post(&format!("{}/api/auth/device/start", s.base), &[("Content-Type", "application/json")], br#"{"client":"dexto-cli on ci"}"#).json();
    let (device_code, user_code) = (started["deviceCode"].as_str().unwrap().to_string(), started["userCode"].as_str().unwrap().to_string());
    // The CLI side (1.8.0+): poll at the protocol's interval until approved.
    let base = s.base.clone();
    let cli = std::thread::spawn(move || loop {
        let r = integration_tests::post(&format!("{base}/api/auth/device/poll"), &[("Content-Type", "application/json")], json!({"deviceCode": device_code}).to_string().as_bytes());
        let v = r.json();
        match v["status"].as_str() {
            Some("approved") => return v,
            Some("pending" | "slow_down") => std::thread::sleep(std::time::Duration::from_secs(1)),
            _ => panic!("poll: {} {}", r.status, r.body),
        }
    });
    let v = visitor("device", &format!("/device?user_code={user_code}"));
    let (b, mail, user) = (&v.b, &v.mail, &v.user);
    assert_eq!(b.text("#device-code"), user_code, "came back to the code after sign-in");
    // Who is asking, before anything is approved.
    assert_eq!(b.text("#device-client"), "dexto-cli on ci, version not reported");
    assert!(!b.text("#device-ip").is_empty());
    let age = b.text("#device-age");
    assert!(age == "just now" || age.ends_with(" ago"), "{age}");
    assert!(b.text("#device-warning").starts_with("Approve only if you started this login yourself just now"));
    b.screenshot("device");
    b.click("#approve");
    b.wait_for("#device-result");
    assert!(b.text("#device-result").starts_with("Approved"));
    let answer = cli.join().expect("CLI poll");
    let cli_key = answer["fullKey"].as_str().expect("the CLI got its key").to_string();
    let works = s.call("GET", "/keys/validate", &cli_key, None);
    assert_eq!(works.json()["valid"], true, "{}", works.body);
    b.goto(&format!("{}/dashboard/keys", s.base));
    b.wait_for("#keys");
    assert!(b.text("#keys").contains("Device login"), "the device-login key is told apart");
    assert_eq!(keys_of(s, user, mail).len(), 1);
    b.screenshot("keys-device-login");
}

#[test]
fn the_usage_chart_draws_real_rows_and_every_page_renders() {
    let (s, v) = (stack(), visitor("chart", "/dashboard"));
    let (b, mail, user) = (&v.b, &v.mail, &v.user);
    assert!(b.source().contains("No usage yet"), "empty state before any call");
    s.credit(user, "5");
    let created = s.call("POST", "/api/keys", &session(s, user, mail), Some(json!({"name": "chart"})));
    let key = created.json()["data"]["fullKey"].as_str().unwrap().to_string();
    for model in ["openai/gpt-4o-mini", "openai/gpt-4o-mini", "anthropic/claude-haiku-4.5"] {
        let r = s.chat(&key, &json!({"model": model, "messages": [{"role": "user", "content": "count"}]}));
        assert_eq!(r.status, 200, "{}", r.body);
    }
    s.settled_user(user, 3);
    b.goto(&format!("{}/dashboard", s.base));
    b.wait_for("svg.chart");
    // One segment per model and day (two days if the calls straddle midnight UTC).
    assert!((2..=4).contains(&b.count("svg.chart rect.bar")), "one segment per model today");
    let legend = b.text("ul.legend");
    assert!(legend.contains("openai/gpt-4o-mini") && legend.contains("anthropic/claude-haiku-4.5"), "{legend}");
    assert!(b.count("#ledger tbody tr") >= 4, "usage rows and the credit in recent activity");
    b.screenshot("overview");

    let mut weights = vec![page_weight(b, "/dashboard")];
    for (path, h1, name) in [
        ("/dashboard/keys", "API keys", "keys"),
        ("/dashboard/usage", "Usage", "usage"),
        ("/dashboard/settings/billing", "Billing", "billing-page"),
        ("/dashboard/account", "Account", "account"),
        ("/dashboard/models", "Models", "models"),
    ] {
        b.goto(&format!("{}{path}", s.base));
        assert_eq!(b.text("h1"), h1);
        assert_eq!(b.count(".error"), 0, "{path}: {}", b.source());
        b.screenshot(name);
        weights.push(page_weight(b, path));
    }
    // A measurement, not an assertion: written next to the screenshots.
    let report = weights.join("\n");
    eprintln!("dashboard page weight (HTML per page on the wire; resources this load fetched, cached ones count 0):\n{report}");
    std::fs::write(b.screenshot("models").with_file_name("page-weight.txt"), report + "\n").expect("page weight report");
    assert_eq!(b.count("#usage tbody tr"), 0, "the usage page is not on screen now");
    b.goto(&format!("{}/dashboard/usage?model=openai%2Fgpt-4o-mini", s.base));
    assert_eq!(b.count("#usage tbody tr"), 2, "filtered by model");
    assert!(b.text("#usage tbody tr td:nth-child(3)").starts_with("chart (dxk_"), "keys are named");
    assert_eq!(b.text("#usage tbody tr td:nth-child(8)"), "chat", "the API the client spoke");
    let key_id = created.json()["data"]["id"].as_str().unwrap().to_string();
    b.goto(&format!("{}/dashboard/usage?key={key_id}", s.base));
    assert_eq!(b.count("#usage tbody tr"), 3, "filtered by key");
    assert_eq!(b.script("return document.getElementById('f-key').value"), json!(key_id), "the filter shows what was chosen");
    b.goto(&format!("{}/dashboard/usage?model=openai%2Fgpt-4o-mini", s.base));
    // The export links download the same filter, with the session cookie.
    let fetch = |href: &str| b.script_async(&format!("const done = arguments[arguments.length - 1]; fetch(document.querySelector('a[href^=\"{href}\"]').href).then(r => r.text()).then(done, e => done('failed: ' + e))"));
    let csv = fetch("/dashboard/usage/export?format=csv");
    let csv = csv.as_str().unwrap();
    assert!(csv.starts_with("request_id,") && csv.lines().count() == 3 && !csv.contains("claude"), "{csv}");
    let json_export = fetch("/dashboard/usage/export?format=json");
    assert!(json_export.as_str().unwrap().matches("openai/gpt-4o-mini").count() >= 2, "{json_export}");
    assert!(b.count("#upstream") == 0 || b.text("h1") == "Usage");

    // A phone: nothing wider than the screen.
    b.resize(390, 844);
    for path in ["/dashboard", "/dashboard/keys", "/dashboard/settings/billing"] {
        b.goto(&format!("{}{path}", s.base));
        assert_eq!(b.script("return document.documentElement.scrollWidth <= window.innerWidth"), json!(true), "{path} fits a phone");
    }
    b.goto(&format!("{}/dashboard", s.base));
    b.screenshot("overview-phone");
}

#[test]
fn magic_link_sign_in_refresh_and_sign_out() {
    let _turn = one_at_a_time();
    let s = stack();
    let b = Browser::open();
    let mail = email("magic");
    b.goto(&format!("{}/dashboard/login", s.base));
    b.screenshot("login");
    b.type_into("#email", &mail);
    b.click("form[action$='/magic-link'] button");
    b.wait_for("p.notice");
    let link = integration_tests::get(&format!("{}/__mock/auth/mailbox?email={}", s.mock, dexto_shared::url_query::encode(&mail))).json()["link"].as_str().expect("a link was sent").to_string();
    // Sessions that expire within the refresh margin (60 s) are refreshed
    // through Supabase on the next page, transparently.
    let refreshes = || integration_tests::get(&format!("{}/__mock/requests", s.mock)).body.matches("grant_type=refresh_token").count();
    let before = refreshes();
    let lifetime = |secs: u32| integration_tests::client::send("PUT", &format!("{}/__mock/auth", s.mock), &[], Some(format!(r#"{{"expires_in": {secs}}}"#).as_bytes()));
    lifetime(30);
    b.goto(&link);
    b.wait_until("the overview", || b.url() == format!("{}/dashboard", s.base));
    b.goto(&format!("{}/dashboard/account", s.base));
    b.wait_for("#upstream");
    // An error page refreshes too; the rotated refresh token must reach the
    // browser with it (Supabase refuses a used one), or the next page signs out.
    b.goto(&format!("{}/dashboard/no-such-page", s.base));
    b.wait_until("the 404 page", || b.source().contains("No such page."));
    b.goto(&format!("{}/dashboard/account", s.base));
    b.wait_for("#upstream");
    lifetime(3600);
    assert!(refreshes() >= before + 3, "the session was refreshed on each page");
    b.goto(&format!("{}/dashboard/account", s.base));
    b.wait_for("#upstream");
    assert!(b.text("main").contains(&mail));

    b.click("form.signout button");
    b.wait_until("the signed-out page", || b.url().contains("/dashboard/login?signed_out=1"));
    b.goto(&format!("{}/dashboard/keys", s.base));
    b.wait_until("sign-in to be asked again", || b.url().contains("/dashboard/login"));
}
