//! Starts (once per test binary) the mock OpenRouter in-process and the local
//! gateway through `scripts/stack.sh`, reading wrangler's "Ready on" line for
//! the port. The stack runs in its own process group under a watchdog shell
//! that kills the group when this process exits (its stdin pipe closes). Each
//! stack has its own local chain (crate::chain), started before wrangler.

use crate::chain::{Chain, DEFAULT_CHAIN_ID};
use crate::client::{send, HttpResponse, SseReader};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub struct Stack {
    pub base: String,
    pub mock: String,
    pub admin_token: String,
    /// The legacy HS256 secret the stack verifies session tokens with.
    pub jwt_secret: String,
    /// The Stripe webhook signing secret the stack accepts.
    pub webhook_secret: String,
    pub run_dir: PathBuf,
    /// This stack's Ethereum node and USDC-like token (the Workers' EVM_* vars).
    pub chain: Chain,
    _watchdog: Mutex<(Child, ChildStdin)>,
}

pub struct TestUser {
    pub id: String,
    pub key: String,
    pub key_id: String,
}

static STACK: OnceLock<Stack> = OnceLock::new();

pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// The shared stack for this test binary, started on first use.
pub fn stack() -> &'static Stack {
    STACK.get_or_init(|| start(&[]))
}

/// Starts a stack with extra Worker variables (e.g. `("PRICE_MARKUP", "1.5")`;
/// `EVM_CHAIN_ID` also sets its chain's id).
pub fn start(vars: &[(&str, &str)]) -> Stack {
    start_on(vars, None)
}

/// Starts a stack; with `again = (run dir, mock, chain)`, on an earlier stack's
/// state, mock and chain (a restart: what a deploy or a crash does to running objects).
fn start_on(vars: &[(&str, &str)], again: Option<(PathBuf, String, Chain)>) -> Stack {
    let root = root();
    for worker in std::fs::read_dir(root.join("functions")).expect("functions/").flatten() {
        let built = worker.path().join("build/index.js");
        assert!(built.exists(), "{} missing: run `npm test` (it builds the Workers) or `npm run build`", built.display());
    }
    let (run_dir, mock, chain) = again.unwrap_or_else(|| {
        let run_dir = root.join("target/itest").join(format!("run-{}-{}", std::process::id(), dexto_shared::ids::new_id("")));
        std::fs::create_dir_all(&run_dir).expect("run dir");
        let chain_id = vars.iter().find(|(k, _)| *k == "EVM_CHAIN_ID").map_or(DEFAULT_CHAIN_ID, |(_, v)| v.parse().expect("EVM_CHAIN_ID"));
        let chain = Chain::start(chain_id, &run_dir);
        (run_dir, format!("http://{}", mock_openrouter::spawn_in_background()), chain)
    });
    // Secrets are per run dir, so a restarted stack accepts what its first run issued.
    let secret = |name: &str, fresh: String| {
        let path = run_dir.join(format!("test-{name}"));
        std::fs::read_to_string(&path).unwrap_or_else(|_| {
            std::fs::write(&path, &fresh).expect("secret file");
            fresh
        })
    };
    let admin_token = secret("admin", format!("test-admin-{}", dexto_shared::ids::new_id("")));
    // The chain's variables, unless the test names its own (e.g. a wrong token).
    let chain_vars = chain.worker_vars().into_iter().filter(|(k, _)| !vars.iter().any(|(name, _)| name == k));
    let stack_vars: String = chain_vars.map(|(k, v)| format!("{k}={v}\n")).chain(vars.iter().map(|(k, v)| format!("{k}={v}\n"))).collect();
    let jwt_secret = secret("jwt", format!("test-jwt-{}", dexto_shared::ids::new_id("")));
    let webhook_secret = secret("webhook", format!("whsec_test{}", dexto_shared::ids::new_id("")));

    let script = root.join("scripts/stack.sh");
    let mut child = spawn_guarded(
        &[script.as_os_str(), run_dir.as_os_str(), "0".as_ref()],
        &[
            ("OPENROUTER_BASE_URL", mock.as_str()),
            ("ADMIN_TOKEN", admin_token.as_str()),
            ("STACK_VARS", stack_vars.as_str()),
            // The mock also plays the Supabase project (JWKS) and the management API.
            ("SUPABASE_URL", mock.as_str()),
            ("SUPABASE_JWT_SECRET", jwt_secret.as_str()),
            ("OPENROUTER_PROVISIONING_KEY", mock_openrouter::DEFAULT_MANAGEMENT_KEY),
            // Key-rotation tests publish a new kid and expect an immediate refetch.
            ("SUPABASE_JWKS_MIN_REFETCH_SECONDS", "0"),
            // ...and Stripe's API.
            ("STRIPE_API_BASE", mock.as_str()),
            ("STRIPE_SECRET_KEY", "sk_test_mock"),
            ("STRIPE_WEBHOOK_SECRET", webhook_secret.as_str()),
            // The dashboard sends browsers to the mock's hosted Checkout page.
            ("CHECKOUT_ORIGIN", mock.as_str()),
        ],
    );
    let stdin = child.stdin.take().expect("stdin");
    let base = wait_for_ready(&mut child, &run_dir);
    // Payments on the mock's Checkout page reach this stack's webhook, signed.
    let hook = serde_json::json!({"url": format!("{base}/api/stripe/webhook"), "secret": webhook_secret});
    let r = crate::client::send("PUT", &format!("{mock}/__mock/stripe/webhook"), &[("Content-Type", "application/json")], Some(hook.to_string().as_bytes()));
    assert_eq!(r.status, 200, "configuring the mock's webhook: {}", r.body);
    Stack { base, mock, admin_token, jwt_secret, webhook_secret, run_dir, chain, _watchdog: Mutex::new((child, stdin)) }
}

/// Runs `bash ARGS…` in its own process group under a watchdog shell that
/// kills the group when this test process exits (its stdin pipe then closes),
/// so no workerd outlives the tests.
pub fn spawn_guarded(args: &[&std::ffi::OsStr], env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new("sh");
    // After the TERM, wait for the whole group, not only its leader: workerd
    // is wrangler's child, and a restart on the same state (or a test that
    // rewrites it) must not race a dying runtime's writes. Bounded: KILL after 10 s.
    let script = r#"setsid "$@" & pid=$!; read _; kill -TERM -"$pid" 2>/dev/null; wait
        for _ in $(seq 200); do kill -0 -"$pid" 2>/dev/null || exit 0; sleep 0.05; done; kill -KILL -"$pid" 2>/dev/null"#;
    cmd.arg("-c").arg(script).arg("watchdog").arg("bash");
    cmd.args(args).envs(env.iter().copied()).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.spawn().expect("spawn guarded process")
}

/// Reads wrangler's output until "Ready on http://…", teeing everything to
/// RUN_DIR/wrangler.log (which tests also read to check what was logged).
pub fn wait_for_ready(child: &mut Child, run_dir: &std::path::Path) -> String {
    let log_path = run_dir.join("wrangler.log");
    let ready = tee_output(child, &log_path, |line| line.find("Ready on http://").map(|i| line[i + "Ready on ".len()..].trim().to_string()));
    let deadline = Duration::from_secs(120);
    match ready.recv_timeout(deadline) {
        Ok(url) => url,
        Err(_) => panic!("stack not ready within {deadline:?}; see {}", log_path.display()),
    }
}

/// Appends the child's stdout and stderr to `log_path`, line by line, for as
/// long as it runs; sends what `pick` finds in a line. The channel closes when
/// both pipes do (the child died).
pub(crate) fn tee_output(child: &mut Child, log_path: &std::path::Path, pick: fn(&str) -> Option<String>) -> Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    for pipe in [Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>, Box::new(child.stderr.take().unwrap())] {
        let tx = tx.clone();
        let log_path = log_path.to_path_buf();
        std::thread::spawn(move || {
            let mut log = std::fs::OpenOptions::new().create(true).append(true).open(log_path).expect("log");
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = writeln!(log, "{line}");
                if let Some(found) = pick(&line) {
                    let _ = tx.send(found);
                }
            }
        });
    }
    rx
}

impl Stack {
    /// This stack's x402 facilitator (the Workers' X402_FACILITATOR_URL).
    pub fn x402_facilitator(&self) -> &str {
        &self.chain.x402_facilitator.url
    }

    /// Stops this stack (the whole process group, as a crash would: nothing
    /// is told to finish) and starts another on the same state, mock and chain.
    pub fn restart(self, vars: &[(&str, &str)]) -> Stack {
        self.restart_with(vars, |_| {})
    }

    /// `restart`, running `between` on the stopped stack's state directory
    /// (wrangler's `--persist-to`) before the next one starts on it.
    pub fn restart_with(self, vars: &[(&str, &str)], between: impl FnOnce(&std::path::Path)) -> Stack {
        let (run_dir, mock, chain) = (self.run_dir, self.mock, self.chain);
        let (mut child, stdin) = self._watchdog.into_inner().expect("watchdog");
        drop(stdin); // the watchdog kills the group
        child.wait().expect("stack exit");
        between(&run_dir.join("state"));
        start_on(vars, Some((run_dir, mock, chain)))
    }

    pub fn admin(&self, method: &str, path: &str, body: Option<Value>) -> HttpResponse {
        let auth = format!("Bearer {}", self.admin_token);
        let payload = body.map(|b| b.to_string().into_bytes());
        send(method, &format!("{}{path}", self.base), &[("Authorization", &auth)], payload.as_deref())
    }

    /// A new user with one `gateway:use` key and `credit_usd` of credit (a JSON number text).
    pub fn new_user(&self, credit_usd: &str) -> TestUser {
        let created = self.admin("POST", "/admin/users", Some(json!({"email": "test@example.com"})));
        assert_eq!(created.status, 201, "{}", created.body);
        let id = created.json()["id"].as_str().unwrap().to_string();
        let key = self.admin("POST", &format!("/admin/users/{id}/keys"), Some(json!({"name": "test"})));
        assert_eq!(key.status, 201, "{}", key.body);
        let k = key.json();
        if credit_usd != "0" {
            self.credit(&id, credit_usd);
        }
        TestUser { id, key: k["key"].as_str().unwrap().into(), key_id: k["id"].as_str().unwrap().into() }
    }

    pub fn credit(&self, user_id: &str, amount_usd: &str) -> Value {
        let amount: Value = serde_json::from_str(amount_usd).expect("amount");
        let r = self.admin("POST", &format!("/admin/users/{user_id}/credits"), Some(json!({"amount_usd": amount, "reason": "test", "idempotency_key": dexto_shared::ids::new_id("test-")})));
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    }

    /// The admin view of a user: authoritative balance/holds and the D1 ledger.
    pub fn user(&self, user_id: &str) -> Value {
        let r = self.admin("GET", &format!("/admin/users/{user_id}"), None);
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    }

    pub fn chat(&self, key: &str, body: &Value) -> HttpResponse {
        self.chat_raw(key, body.to_string().as_bytes(), &[])
    }

    pub fn chat_raw(&self, key: &str, body: &[u8], extra: &[(&str, &str)]) -> HttpResponse {
        let auth = format!("Bearer {key}");
        let mut headers = vec![("Authorization", auth.as_str()), ("Content-Type", "application/json")];
        headers.extend_from_slice(extra);
        send("POST", &format!("{}/v1/chat/completions", self.base), &headers, Some(body))
    }

    pub fn stream(&self, key: &str, body: &Value) -> SseReader {
        let auth = format!("Bearer {key}");
        SseReader::open(
            &format!("{}/v1/chat/completions", self.base),
            &[("Authorization", &auth), ("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
    }

    /// Upstream chat calls the mock received whose body contains `marker`.
    pub fn upstream_calls(&self, marker: &str) -> usize {
        let r = send("GET", &format!("{}/__mock/requests?contains={marker}", self.mock), &[], None);
        r.json()["count"].as_u64().unwrap() as usize
    }

    /// Polls `check` against the user view until it holds (settlement of a
    /// stream happens after the client's last byte). Fails after 15 s.
    pub fn eventually_user(&self, user_id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let user = self.user(user_id);
            if check(&user) {
                return user;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {user:#}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The first log line containing every needle, once wrangler has written it
    /// (worker logs reach its output asynchronously). Fails after 15 s.
    pub fn log_line(&self, needles: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(line) = self.logs().lines().find(|l| needles.iter().all(|n| l.contains(n))) {
                return line.to_string();
            }
            assert!(Instant::now() < deadline, "no log line with {needles:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The user view once `n` requests are settled (non-stream calls settle
    /// just after their response, streams after their last byte).
    pub fn settled_user(&self, user_id: &str, n: u64) -> Value {
        self.eventually_user(user_id, &format!("{n} settled requests"), |u| u["usage_totals"]["requests"] == n)
    }

    /// The user once `n` requests are settled, after checking the books:
    /// no open hold, Σ ledger == balance (in total and per bucket), and no balance below zero, now or
    /// after any recent ledger entry.
    pub fn books_balanced(&self, user_id: &str, n: u64) -> Value {
        let user = self.settled_user(user_id, n);
        let balance = user["balance_micros"].as_i64().expect("balance");
        assert!(balance >= 0, "{user:#}");
        assert_eq!(user["ledger_totals"]["net_micros"], balance, "Σ ledger == balance");
        assert_eq!(user["ledger_totals"]["included_net_micros"], user["included_micros"], "Σ ledger == balance, included bucket");
        assert_eq!(user["open_holds"], json!([]));
        for row in user["recent_ledger"].as_array().expect("ledger") {
            assert!(row["balance_after_micros"].as_i64().expect("balance after") >= 0, "negative balance in {row}");
        }
        user
    }

    /// A stream whose owner (the wallet's exchange) dies before the upstream
    /// names its generation: the test hook kills it after the upstream's first
    /// event, a keep-alive, so the sweep can only charge provisionally (the
    /// upstream's generation ends, billed on the key, long before). Needs
    /// DEXTO_TEST_HOOKS (every test stack has it). Returns the hold that was
    /// open and the user once the sweep has settled the call (after the
    /// user's earlier calls, which must be settled already).
    pub fn orphan_before_generation_id(&self, user: &TestUser) -> (i64, Value) {
        let settled = self.user(&user.id)["usage_totals"]["requests"].as_u64().unwrap_or(0);
        let body = json!({"model": "openai/gpt-4o-mini", "stream": true, "max_tokens": 100,
            "messages": [{"role": "user", "content": "[[mock:hide_generation=1,tokens=20,chunk_delay_ms=5]]"}]});
        let auth = format!("Bearer {}", user.key);
        let sse = SseReader::open(
            &format!("{}/v1/chat/completions", self.base),
            &[("Authorization", &auth), ("X-Dexto-Test-Die-After-Events", "1")],
            body.to_string().as_bytes(),
        );
        let open = self.eventually_user(&user.id, "the hold", |u| u["open_holds"].as_array().is_some_and(|h| h.len() == 1));
        let hold = open["open_holds"][0]["amount_micros"].as_i64().expect("the hold's amount");
        drop(sse);
        (hold, self.settled_user(&user.id, settled + 1))
    }

    /// The issuer session tokens must carry.
    pub fn issuer(&self) -> String {
        format!("{}/auth/v1", self.mock)
    }

    /// A valid Supabase-style session token (HS256) for `sub`, valid 1 h.
    pub fn session_token(&self, sub: &str, email: &str) -> String {
        let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64 + 3600;
        dexto_shared::jwt::sign_hs256(&dexto_shared::jwt_testing::claims(sub, email, &self.issuer(), exp), self.jwt_secret.as_bytes())
    }

    /// Calls a path with a bearer token (session or API key).
    pub fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> HttpResponse {
        let auth = format!("Bearer {token}");
        let payload = body.map(|b| b.to_string().into_bytes());
        send(method, &format!("{}{path}", self.base), &[("Authorization", &auth), ("Content-Type", "application/json")], payload.as_deref())
    }

    /// Delivers a Stripe event signed exactly as Stripe signs it.
    pub fn webhook(&self, event: &Value, extra: &[(&str, &str)]) -> HttpResponse {
        let body = event.to_string();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let signature = dexto_shared::stripe::sign(body.as_bytes(), &self.webhook_secret, now);
        self.webhook_raw(body.as_bytes(), Some(&signature), extra)
    }

    pub fn webhook_raw(&self, body: &[u8], signature: Option<&str>, extra: &[(&str, &str)]) -> HttpResponse {
        let mut headers: Vec<(&str, &str)> = vec![("Content-Type", "application/json")];
        if let Some(sig) = signature {
            headers.push(("Stripe-Signature", sig));
        }
        headers.extend_from_slice(extra);
        send("POST", &format!("{}/api/stripe/webhook", self.base), &headers, Some(body))
    }

    /// `d1` until `check` holds: another process reading the local database
    /// sees a Worker's commit a moment after the Worker does. Fails after 20 s.
    pub fn d1_until(&self, sql: &str, check: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let rows = self.d1(sql);
            if check(&rows) {
                return rows;
            }
            assert!(Instant::now() < deadline, "D1 never satisfied the check for {sql}: {rows:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `GET /v1/models`, with an API key or without.
    pub fn models(&self, key: Option<&str>) -> HttpResponse {
        let auth = key.map(|k| format!("Bearer {k}"));
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        send("GET", &format!("{}/v1/models", self.base), &headers, None)
    }

    /// Sets the mock's runtime switches (`{"models_status":503}`; `{}` → unchanged).
    pub fn mock_faults(&self, switches: Value) {
        let r = send("POST", &format!("{}/__mock/faults", self.mock), &[], Some(switches.to_string().as_bytes()));
        assert_eq!(r.status, 200, "{}", r.body);
    }

    /// How many times the gateway fetched the upstream model list.
    pub fn upstream_model_fetches(&self) -> usize {
        let r = send("GET", &format!("{}/__mock/requests?contains=/models", self.mock), &[], None);
        r.json()["requests"].as_array().unwrap().iter().filter(|q| q["path"].as_str().is_some_and(|p| p.ends_with("/models"))).count()
    }

    /// Fires the hourly cron as `wrangler dev --test-scheduled` does (the chat
    /// Worker's, then relayed to billing; see functions/chat/src/cron_relay.rs).
    pub fn run_cron(&self) {
        let r = send("GET", &format!("{}/__scheduled?cron=0+*+*+*+*", self.base), &[], None);
        assert_eq!(r.status, 200, "{}", r.body);
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.run_dir.join("wrangler.log")).unwrap_or_default()
    }
}
