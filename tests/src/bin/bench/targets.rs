//! What the bench measures side by side: the gateway and its floor
//! (tools/bench-floor: a bare Worker + per-user Durable Object proxy, run in
//! its own `wrangler dev` by scripts/floor.sh against the same mock). Each is
//! a chat URL, one user's credentials and that user's count of settled requests.

use integration_tests::client::agent;
use integration_tests::{spawn_guarded, wait_for_ready, Stack};
use std::io::Read;
use std::process::{Child, ChildStdin};
use std::time::{Duration, Instant};

/// The key the floor sends upstream, and the bench when it calls the mock directly.
pub const MOCK_AUTH: &str = "Bearer sk-or-v1-bench";

pub struct Floor {
    base: String,
    /// Kills the floor's process group when dropped or when the bench exits.
    _watchdog: (Child, ChildStdin),
}

impl Floor {
    pub fn start(stack: &Stack) -> Floor {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
        let run_dir = stack.run_dir.join("floor");
        std::fs::create_dir_all(&run_dir).expect("floor run dir");
        let script = root.join("scripts/floor.sh");
        let upstream_key = MOCK_AUTH.trim_start_matches("Bearer ");
        let mut child = spawn_guarded(
            &[script.as_os_str(), run_dir.as_os_str(), "0".as_ref()],
            &[("UPSTREAM_BASE", stack.mock.as_str()), ("UPSTREAM_KEY", upstream_key)],
        );
        let stdin = child.stdin.take().expect("stdin");
        let base = wait_for_ready(&mut child, &run_dir);
        Floor { base, _watchdog: (child, stdin) }
    }
}

pub struct Target<'a> {
    pub name: &'static str,
    pub url: String,
    pub auth: String,
    settled: Box<dyn Fn() -> u64 + Sync + 'a>,
}

impl<'a> Target<'a> {
    /// The gateway, as a new user with $100 of credit; settled = its usage rows.
    pub fn gateway(stack: &'a Stack) -> Self {
        Target::gateway_at(stack, "/v1/chat/completions")
    }

    /// The gateway at another API's path (`/v1/messages`, `/v1/responses`).
    pub fn gateway_at(stack: &'a Stack, path: &str) -> Self {
        let user = stack.new_user("100");
        let id = user.id.clone();
        Target {
            name: "gateway",
            url: format!("{}{path}", stack.base),
            auth: format!("Bearer {}", user.key),
            settled: Box::new(move || stack.user(&id)["usage_totals"]["requests"].as_u64().expect("usage_totals.requests")),
        }
    }

    /// The floor, as `user` (the floor's key names its user); settled = its settlement rows.
    pub fn floor(floor: &'a Floor, user: &str) -> Self {
        let auth = format!("Bearer sk-floor-{user}");
        let (stats, stats_auth) = (format!("{}/floor/stats", floor.base), auth.clone());
        Target {
            name: "floor",
            url: format!("{}/v1/chat/completions", floor.base),
            auth,
            settled: Box::new(move || {
                let mut resp = agent().get(&stats).header("Authorization", &stats_auth).call().expect("floor stats");
                let mut body = String::new();
                resp.body_mut().as_reader().read_to_string(&mut body).expect("floor stats body");
                let stats: serde_json::Value = serde_json::from_str(&body).expect("floor stats JSON");
                stats["settlements"].as_u64().expect("settlements")
            }),
        }
    }

    pub fn settled(&self) -> u64 {
        (self.settled)()
    }

    /// Polls until at least `expected` requests are settled (a stream settles
    /// after its last byte, a non-stream call may settle just after its reply);
    /// gives up after 30 s. Returns the count last seen.
    pub fn await_settled(&self, expected: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let settled = self.settled();
            if settled >= expected || Instant::now() > deadline {
                return settled;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
