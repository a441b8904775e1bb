//! A real browser for the dashboard tests: Debian's Chromium, headless,
//! driven over WebDriver by Debian's chromedriver (both installed by
//! `scripts/bootstrap.sh`; nothing is downloaded at test time). The protocol
//! is plain JSON over HTTP, spoken here with the same client as every test.
//!
//! One chromedriver per test binary; each `Browser` is a fresh session with
//! its own profile (no cookies shared between tests). Screenshots go to
//! `target/browser-artifacts/` (kept as CI artifacts).

use crate::client::send;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Child;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

struct Driver {
    url: String,
    /// The watchdog kills chromedriver and its browsers when the tests exit.
    _process: Mutex<Child>,
}

fn driver() -> &'static Driver {
    static DRIVER: OnceLock<Driver> = OnceLock::new();
    DRIVER.get_or_init(|| {
        let bin = std::env::var("DEXTO_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        assert!(std::path::Path::new(&bin).exists(), "{bin} missing: scripts/bootstrap.sh (run by npm test) installs chromium-driver");
        let command = format!("exec {bin} --port={port} --silent >/dev/null 2>&1");
        let process = crate::spawn_guarded(&["-c".as_ref(), command.as_ref()], &[]);
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + WAIT;
        // Readiness, not a delay: ask until the driver says it is ready.
        loop {
            let listening = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
            if listening && send("GET", &format!("{url}/status"), &[], None).json()["value"]["ready"] == true {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver not ready on {url}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver { url, _process: Mutex::new(process) }
    })
}

/// Browser tests in one binary take turns: one Chromium at a time keeps a
/// loaded 2-core CI machine predictable.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub struct Browser {
    session: String,
}

impl Browser {
    /// A fresh headless Chromium session (desktop-sized window).
    pub fn open() -> Browser {
        let binary = std::env::var("DEXTO_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            // Revoke/rotate ask `confirm()`: say yes, as a user would.
            "unhandledPromptBehavior": "accept",
            "goog:chromeOptions": {"binary": binary, "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900",
                "--no-first-run", "--disable-extensions", "--disable-background-networking"]},
        }}});
        let r = send("POST", &format!("{}/session", driver().url), &[("Content-Type", "application/json")], Some(caps.to_string().as_bytes()));
        assert_eq!(r.status, 200, "new WebDriver session: {}", r.body);
        Browser { session: r.json()["value"]["sessionId"].as_str().expect("session id").to_string() }
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_cmd(method, path, body).unwrap_or_else(|body| panic!("WebDriver {method} {path}: {body}"))
    }

    /// The command's value, or the driver's error body.
    fn try_cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}/session/{}{path}", driver().url, self.session);
        let body = body.map(|b| b.to_string());
        let r = send(method, &url, &[("Content-Type", "application/json")], body.as_deref().map(str::as_bytes));
        if r.status != 200 {
            return Err(r.body);
        }
        Ok(r.json()["value"].clone())
    }

    /// Runs `action` on the first element matching `css`. A page that
    /// re-renders between finding the element and acting on it leaves a stale
    /// reference: find it again (the page is still settling), within the usual wait.
    fn on_element(&self, css: &str, method: &str, action: &str, body: Option<Value>) -> Value {
        let mut done = None;
        self.wait_until(&format!("`{css}` to hold still for {method} {action}"), || {
            let id = self.find(css);
            match self.try_cmd(method, &format!("/element/{id}{action}"), body.clone()) {
                Ok(value) => done = Some(value),
                Err(error) if error.contains("stale element reference") => {}
                Err(error) => panic!("WebDriver {method} {action} on `{css}`: {error}"),
            }
            done.is_some()
        });
        done.expect("ready")
    }

    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({"url": url})));
    }

    pub fn url(&self) -> String {
        self.cmd("GET", "/url", None).as_str().unwrap_or("").to_string()
    }

    pub fn source(&self) -> String {
        self.cmd("GET", "/source", None).as_str().unwrap_or("").to_string()
    }

    pub fn script(&self, script: &str) -> Value {
        self.cmd("POST", "/execute/sync", Some(json!({"script": script, "args": []})))
    }

    /// Runs an async script: it gets a `done` callback as its last argument.
    pub fn script_async(&self, script: &str) -> Value {
        self.cmd("POST", "/execute/async", Some(json!({"script": script, "args": []})))
    }

    fn element_id(v: &Value) -> String {
        v.as_object().and_then(|o| o.values().next()).and_then(Value::as_str).expect("element reference").to_string()
    }

    /// Every element matching `css` (possibly none).
    pub fn count(&self, css: &str) -> usize {
        self.cmd("POST", "/elements", Some(json!({"using": "css selector", "value": css}))).as_array().map_or(0, Vec::len)
    }

    /// The first element matching `css`, waiting for it to appear.
    fn find(&self, css: &str) -> String {
        self.wait_for(css);
        Self::element_id(&self.cmd("POST", "/element", Some(json!({"using": "css selector", "value": css}))))
    }

    pub fn click(&self, css: &str) {
        self.on_element(css, "POST", "/click", Some(json!({})));
    }

    pub fn type_into(&self, css: &str, text: &str) {
        self.on_element(css, "POST", "/clear", Some(json!({})));
        self.on_element(css, "POST", "/value", Some(json!({"text": text})));
    }

    pub fn text(&self, css: &str) -> String {
        self.on_element(css, "GET", "/text", None).as_str().unwrap_or("").to_string()
    }

    /// Waits (up to 30 s) until an element matches `css`.
    pub fn wait_for(&self, css: &str) {
        self.wait_until(&format!("an element `{css}`"), || self.count(css) > 0);
    }

    /// Waits (up to 30 s) until `ready()` holds: a readiness check, not a delay.
    pub fn wait_until(&self, what: &str, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + WAIT;
        while !ready() {
            assert!(Instant::now() < deadline, "timed out waiting for {what} on {}:\n{}", self.url(), self.source());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `source` in every document this browser loads from now on,
    /// before the page's own scripts (CDP `Page.addScriptToEvaluateOnNewDocument`
    /// through chromedriver): e.g. a test wallet as a wallet extension would.
    pub fn before_each_page(&self, source: &str) {
        self.cmd("POST", "/goog/cdp/execute", Some(json!({"cmd": "Page.addScriptToEvaluateOnNewDocument", "params": {"source": source}})));
    }

    /// The value of this page's cookie `name` (httpOnly ones too).
    pub fn cookie(&self, name: &str) -> Option<String> {
        let all = self.cmd("GET", "/cookie", None);
        all.as_array()?.iter().find(|c| c["name"] == name).and_then(|c| c["value"].as_str()).map(str::to_string)
    }

    pub fn delete_cookie(&self, name: &str) {
        self.cmd("DELETE", &format!("/cookie/{name}"), None);
    }

    pub fn resize(&self, width: u32, height: u32) {
        self.cmd("POST", "/window/rect", Some(json!({"width": width, "height": height})));
    }

    /// Saves a PNG of the viewport as `target/browser-artifacts/<name>.png`.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        use base64::Engine;
        let png = self.cmd("GET", "/screenshot", None);
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap_or("")).expect("PNG base64");
        let dir = crate::stack::root().join("target/browser-artifacts");
        std::fs::create_dir_all(&dir).expect("artifact dir");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, bytes).expect("screenshot");
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| send("DELETE", &format!("{}/session/{}", driver().url, self.session), &[], None));
    }
}
