//! The real clients on Dexto credit, against the whole local stack: Claude
//! Code (headless, `claude -p`), Codex CLI (`codex exec`, custom provider on
//! the Responses API) and the official Anthropic and OpenAI SDKs. Each run
//! must print the answer, and the wallet must be debited exactly the price of
//! the usage rows it made (one per request the client sent).

use integration_tests::agents::{Agent, AgentRun, AnthropicAuth, Sdk};
use integration_tests::{stack, Stack, TestUser};
use serde_json::Value;

const HAIKU: &str = "anthropic/claude-haiku-4.5";

/// The user once every request settled: each usage row of the given API, and
/// the balance equal to the credit less their prices.
fn billed_exactly(s: &Stack, u: &TestUser, credit_micros: i64, api: &str) -> Vec<Value> {
    let user = s.eventually_user(&u.id, "settled and projected", |v| v["open_holds"] == serde_json::json!([]) && v["usage_totals"]["requests"].as_i64() > Some(0));
    let user = s.settled_user(&u.id, user["usage_totals"]["requests"].as_u64().unwrap());
    let rows: Vec<Value> = user["recent_usage"].as_array().unwrap().clone();
    assert!(rows.iter().all(|r| r["api"] == api && r["billing_status"] == "billed"), "{rows:?}");
    let charged: i64 = rows.iter().map(|r| r["user_price_micros"].as_i64().unwrap()).sum();
    assert!(charged > 0, "{rows:?}");
    assert_eq!(user["balance_micros"].as_i64().unwrap(), credit_micros - charged, "debited exactly the usage rows' prices");
    rows
}

fn answered(run: &AgentRun) -> String {
    let out = run.assert_ok().stdout.trim().to_string();
    assert!(!out.is_empty(), "no answer: {run:?}");
    out
}

#[test]
fn claude_code_runs_on_dexto_credit() {
    let s = stack();
    for auth in [AnthropicAuth::AuthToken, AnthropicAuth::ApiKey] {
        let u = s.new_user("5");
        let run = Agent::claude(&s.base, &u.key, auth).args(["-p", "say hi", "--model", HAIKU]).run();
        let text = answered(&run);
        assert!(text.contains("tok"), "the mock's answer came back: {text}");
        let rows = billed_exactly(s, &u, 5_000_000, "messages");
        assert_eq!(rows.len(), 1, "{rows:?}");
    }
}

#[test]
fn codex_runs_on_dexto_credit() {
    let s = stack();
    let u = s.new_user("5");
    let run = Agent::codex(&s.base, &u.key).args(["-m", HAIKU, "say hi"]).run();
    let text = answered(&run);
    assert!(text.contains("tok"), "the mock's answer came back: {text}");
    billed_exactly(s, &u, 5_000_000, "responses");
}

#[test]
fn the_official_sdks_run_on_dexto_credit_streaming_or_not() {
    let s = stack();
    for (sdk, api) in [(Sdk::Anthropic, "messages"), (Sdk::OpenAi, "responses")] {
        for stream in [false, true] {
            let u = s.new_user("5");
            let mut agent = Agent::sdk(sdk, &s.base, &u.key).args(["--model", HAIKU]);
            if stream {
                agent = agent.arg("--stream");
            }
            let run = agent.run();
            let out = run.json();
            assert!(out["text"].as_str().is_some_and(|t| t.contains("tok")), "{sdk:?} stream={stream}: {out}");
            billed_exactly(s, &u, 5_000_000, api);
        }
    }
}
