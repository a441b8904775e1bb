//! Real coding agents and the official SDKs, run as a user would against a
//! base URL and a key: Claude Code headless (`claude -p`), the Codex CLI
//! (`codex exec` with a custom provider on the Responses API), and one call
//! through the Anthropic or OpenAI SDK (`tools/agents/sdk-call.mjs`). All are
//! pinned by tools/agents/package-lock.json and installed once by
//! `scripts/bootstrap.sh` into `$DEXTO_AGENTS_DIR` (scripts/env.sh); nothing
//! is downloaded at test time.
//!
//! Every run starts from an empty environment plus what the client needs, in
//! its own throwaway HOME and config dirs, with the settings that stop all
//! traffic but to the base URL (a proxy trap fails the run if any is tried)
//! and with client retries off (one call, one request: what a test asserts),
//! under a timeout. What each client sends and why each setting is there:
//! docs/agent-clients.md.

pub mod recorder;
mod replies;

pub use recorder::{Recorded, Recorder};
pub use replies::{INPUT_TOKENS, OUTPUT_TOKENS};

use serde_json::Value;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

/// Generous for a loaded 2-core machine; a healthy run takes about a second.
const TIMEOUT: Duration = Duration::from_secs(180);

/// How Claude Code presents the key (both observed with 2.1.328).
#[derive(Clone, Copy, Debug)]
pub enum AnthropicAuth {
    /// `ANTHROPIC_AUTH_TOKEN`: sent as `Authorization: Bearer <key>`.
    AuthToken,
    /// `ANTHROPIC_API_KEY`: sent as `x-api-key: <key>`.
    ApiKey,
}

/// Which official SDK `Agent::sdk` calls through.
#[derive(Clone, Copy, Debug)]
pub enum Sdk {
    /// `@anthropic-ai/sdk` `messages.create` (base URL without `/v1`).
    Anthropic,
    /// `openai` `responses.create` (base URL with `/v1`).
    OpenAi,
}

/// What a client run left: its exit status and everything it printed.
#[derive(Debug)]
pub struct AgentRun {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl AgentRun {
    /// Exit code 124 is `timeout(1)` stopping the client.
    pub fn timed_out(&self) -> bool {
        self.status.code() == Some(124)
    }

    /// Panics with both outputs unless the client exited 0.
    pub fn assert_ok(&self) -> &Self {
        assert!(self.status.success(), "client failed ({}):\nstdout:\n{}\nstderr:\n{}", self.status, self.stdout, self.stderr);
        self
    }

    /// The JSON line `sdk-call.mjs` prints (result or `{"error": …}`).
    pub fn json(&self) -> Value {
        let line = self.stdout.lines().last().unwrap_or("");
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}):\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr))
    }
}

/// A client invocation being built; `run` executes it.
pub struct Agent {
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(String, String)>,
    dir: PathBuf,
    timeout: Duration,
}

fn installed(var: &str) -> PathBuf {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        panic!("{var} unset: run the tests through `npm test`, or `source scripts/env.sh` first")
    });
    assert!(path.exists(), "{} missing: scripts/bootstrap.sh (run by npm test) installs the agent clients", path.display());
    path
}

impl Agent {
    fn new(tag: &str, program: PathBuf) -> Agent {
        let dir = std::env::temp_dir().join("dexto-agents").join(format!("{tag}-{}", dexto_shared::ids::new_id("")));
        for sub in ["home", "work"] {
            std::fs::create_dir_all(dir.join(sub)).expect("agent run dir");
        }
        let home = dir.join("home").to_string_lossy().into_owned();
        // PATH as env.sh set it: Node 22 first (the Codex launcher and the SDKs run on it).
        let path = std::env::var("PATH").unwrap_or_default();
        Agent { program, args: Vec::new(), env: vec![("PATH".into(), path), ("HOME".into(), home)], dir, timeout: TIMEOUT }
    }

    /// `claude` with `ANTHROPIC_BASE_URL=base_url` and the key as `auth`
    /// says; add `-p "<prompt>"` and `--model <id>` with `args`.
    pub fn claude(base_url: &str, key: &str, auth: AnthropicAuth) -> Agent {
        let agent = Agent::new("claude", installed("DEXTO_CLAUDE_BIN"));
        let config = agent.dir.join("home/.claude").to_string_lossy().into_owned();
        let key_var = match auth {
            AnthropicAuth::AuthToken => "ANTHROPIC_AUTH_TOKEN",
            AnthropicAuth::ApiKey => "ANTHROPIC_API_KEY",
        };
        agent
            .env("CLAUDE_CONFIG_DIR", &config)
            .env("ANTHROPIC_BASE_URL", base_url)
            .env(key_var, key)
            // Else it reaches api.anthropic.com (telemetry, updates) beside the base URL.
            .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
            // Else 401, 429 and 5xx are retried 10 times over ~3 minutes.
            .env("CLAUDE_CODE_MAX_RETRIES", "0")
    }

    /// `codex exec` with a throwaway `CODEX_HOME` whose config.toml defines
    /// the `dexto` provider (`{base_url}/v1`, Responses API, key from
    /// `DEXTO_API_KEY`); add `-m <model>` and the prompt with `args`.
    pub fn codex(base_url: &str, key: &str) -> Agent {
        let agent = Agent::new("codex", installed("DEXTO_CODEX_BIN"));
        let codex_home = agent.dir.join("codex");
        std::fs::create_dir_all(&codex_home).expect("CODEX_HOME");
        std::fs::write(codex_home.join("config.toml"), codex_config(base_url)).expect("config.toml");
        let work = agent.dir.join("work");
        agent
            .env("CODEX_HOME", &codex_home.to_string_lossy())
            .env("DEXTO_API_KEY", key)
            .args(["exec", "--skip-git-repo-check", "--ephemeral", "--color", "never", "-C"])
            .arg(work)
    }

    /// One SDK call (`tools/agents/sdk-call.mjs`): by default non-streaming,
    /// `max_tokens`/`max_output_tokens` 64; see the script for `args`.
    pub fn sdk(sdk: Sdk, base_url: &str, key: &str) -> Agent {
        let agents_dir = installed("DEXTO_AGENTS_DIR");
        let script = crate::stack::root().join("tools/agents/sdk-call.mjs");
        let (dialect, base) = match sdk {
            Sdk::Anthropic => ("anthropic", base_url.to_string()),
            Sdk::OpenAi => ("openai", format!("{base_url}/v1")),
        };
        Agent::new("sdk", "node".into())
            .env("DEXTO_AGENTS_DIR", &agents_dir.to_string_lossy())
            .env("DEXTO_API_KEY", key)
            .arg(script)
            .args([dialect, "--base-url", &base])
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Agent {
        self.args.push(arg.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Agent {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets (or overrides) one environment variable of the client.
    pub fn env(mut self, name: &str, value: &str) -> Agent {
        self.env.retain(|(k, _)| k != name);
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Agent {
        self.timeout = timeout;
        self
    }

    /// Runs the client to completion (or the timeout) in an empty working
    /// directory outside any repository, stdin closed. Panics if the client
    /// tried to reach anything but loopback: its proxy is a local trap that
    /// records and refuses every such attempt.
    pub fn run(self) -> AgentRun {
        let trap = Recorder::failing(403);
        let proxy = [("HTTPS_PROXY", trap.base()), ("HTTP_PROXY", trap.base()), ("NO_PROXY", "127.0.0.1,localhost")];
        let proxy_env = proxy.iter().flat_map(|&(k, v)| [(k.to_string(), v), (k.to_ascii_lowercase(), v)]);
        // timeout(1) kills the client's whole process group, even if this test process dies first.
        let output = Command::new("timeout")
            .args(["-k", "5", &self.timeout.as_secs().to_string()])
            .arg(&self.program)
            .args(&self.args)
            .env_clear()
            .envs(proxy_env)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(self.dir.join("work"))
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", self.program.display()));
        let _ = std::fs::remove_dir_all(&self.dir);
        let run = AgentRun {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        let egress: Vec<String> = trap.requests().iter().map(|r| format!("{} {}", r.method, r.path)).collect();
        assert!(egress.is_empty(), "{} reached beyond the base URL: {egress:?}\n{run:?}", self.program.display());
        run
    }
}

fn codex_config(base_url: &str) -> String {
    format!(
        r#"# Written by tests/src/agents: Codex on Dexto through one custom provider.
model_provider = "dexto"
# Codex's hosted web search is billed per call beyond what Dexto can bound
# before the call: the gateway refuses it (README, "Coding agents").
web_search = "disabled"

# Else metrics go to ab.chatgpt.com.
[analytics]
enabled = false

# Else plugin sync reaches github.com, api.github.com and chatgpt.com.
[features]
plugins = false

[model_providers.dexto]
name = "Dexto"
base_url = "{base_url}/v1"
env_key = "DEXTO_API_KEY"
wire_api = "responses"
# Else a failed request is re-sent up to 4 times, and a failed stream 5 times.
request_max_retries = 0
stream_max_retries = 0
"#
    )
}
