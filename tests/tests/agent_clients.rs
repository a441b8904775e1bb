//! The agent-client harness (tests/src/agents) against a local recorder, not
//! the gateway: each pinned client's request reaches the base URL it was
//! given, with the key where that client puts it, and the client prints the
//! recorder's canned answer; a failed request is made once (the harness turns
//! client retries off). The gateway tests of issue 17 drive the same harness
//! against the stack. No wrangler stack here.

use integration_tests::agents::{Agent, AgentRun, AnthropicAuth, Recorded, Recorder, Sdk, INPUT_TOKENS, OUTPUT_TOKENS};

/// Shaped like a Dexto key; the recorder accepts anything.
const KEY: &str = "dxk_agentclients_0123456789abcdef";

fn only_request(recorder: &Recorder) -> Recorded {
    let requests = recorder.requests();
    let seen: Vec<String> = requests.iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    assert_eq!(seen.len(), 1, "exactly one request: {seen:?}");
    requests[0].clone()
}

fn claude(recorder: &Recorder, auth: AnthropicAuth) -> AgentRun {
    Agent::claude(recorder.base(), KEY, auth).args(["-p", "say hi", "--model", "claude-sonnet-4-5"]).run()
}

fn codex(recorder: &Recorder) -> AgentRun {
    Agent::codex(recorder.base(), KEY).args(["-m", "openai/gpt-4o-mini", "say hi"]).run()
}

/// Claude Code answers "say hi" with the recorder's text; the one request it made.
fn claude_answers(auth: AnthropicAuth) -> Recorded {
    let answer = format!("canned answer for Claude Code ({auth:?})");
    let recorder = Recorder::answering(&answer);
    let run = claude(&recorder, auth);
    assert_eq!(run.assert_ok().stdout.trim(), answer);
    only_request(&recorder)
}

#[test]
fn claude_code_sends_its_auth_token_as_bearer_and_prints_the_answer() {
    let request = claude_answers(AnthropicAuth::AuthToken);
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/v1/messages?beta=true"));
    assert_eq!(request.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    assert_eq!(request.header("x-api-key"), None);
    assert_eq!(request.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(request.body["model"], "claude-sonnet-4-5");
    assert_eq!(request.body["stream"], true);
    assert!(request.body["max_tokens"].as_u64().is_some_and(|n| n > 0), "{}", request.body["max_tokens"]);
}

#[test]
fn claude_code_sends_its_api_key_as_x_api_key() {
    let request = claude_answers(AnthropicAuth::ApiKey);
    assert_eq!(request.header("x-api-key"), Some(KEY));
    assert_eq!(request.header("authorization"), None);
}

#[test]
fn claude_code_reports_a_server_error_after_one_request() {
    // Left to itself Claude Code re-sends a 500 ten times over ~3 minutes.
    let recorder = Recorder::failing(500);
    let run = claude(&recorder, AnthropicAuth::AuthToken);
    assert!(!run.status.success() && !run.timed_out(), "{run:?}");
    assert!(run.stdout.contains("500"), "the error is shown: {run:?}");
    only_request(&recorder);
}

#[test]
fn codex_exec_uses_the_custom_provider_and_prints_the_answer() {
    let recorder = Recorder::answering("canned answer for Codex");
    let run = codex(&recorder);
    run.assert_ok();
    assert_eq!(run.stdout.trim(), "canned answer for Codex");
    let request = only_request(&recorder);
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/v1/responses"));
    assert_eq!(request.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    assert_eq!(request.body["model"], "openai/gpt-4o-mini");
    assert_eq!(request.body["stream"], true);
    assert_eq!(request.body["store"], false);
}

#[test]
fn codex_exec_reports_a_server_error_after_one_request() {
    // Left to itself Codex makes 30 requests for a 500 (4 re-sends × 6 stream attempts).
    let recorder = Recorder::failing(500);
    let run = codex(&recorder);
    assert!(!run.status.success() && !run.timed_out(), "{run:?}");
    only_request(&recorder);
}

/// One SDK call, then one streamed: the text and usage come back, and the
/// request carries the key as a bearer token and the output ceiling asked for.
fn sdk_round_trip(sdk: Sdk, path: &str, ceiling_field: &str) {
    for stream in [false, true] {
        let answer = format!("canned answer for {sdk:?}, stream={stream}");
        let recorder = Recorder::answering(&answer);
        let mut agent = Agent::sdk(sdk, recorder.base(), KEY);
        if stream {
            agent = agent.arg("--stream");
        }
        let result = agent.run().assert_ok().json();
        assert_eq!(result["text"], answer.as_str(), "{result}");
        assert_eq!(result["response"]["usage"]["input_tokens"], INPUT_TOKENS);
        assert_eq!(result["response"]["usage"]["output_tokens"], OUTPUT_TOKENS);
        let request = only_request(&recorder);
        assert_eq!(request.path, path);
        assert_eq!(request.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
        assert_eq!(request.body[ceiling_field], 64);
        assert_eq!(request.body["stream"].as_bool().unwrap_or(false), stream);
    }
}

#[test]
fn anthropic_sdk_creates_and_streams_a_message() {
    // @anthropic-ai/sdk 1.x sends `apiKey` as a bearer token, not `x-api-key`.
    sdk_round_trip(Sdk::Anthropic, "/v1/messages", "max_tokens");
}

#[test]
fn openai_sdk_creates_and_streams_a_response() {
    sdk_round_trip(Sdk::OpenAi, "/v1/responses", "max_output_tokens");
}

#[test]
fn sdk_calls_report_the_status_and_error_body() {
    // Each SDK hands back its dialect's error as it parsed it: the Anthropic
    // SDK the whole `{"type":"error","error":{…}}` envelope, the OpenAI SDK
    // the object inside `{"error":{…}}`.
    for (sdk, pointer, expected) in [(Sdk::Anthropic, "/error/type", "billing_error"), (Sdk::OpenAi, "/code", "402")] {
        let recorder = Recorder::failing(402);
        let run = Agent::sdk(sdk, recorder.base(), KEY).run();
        assert!(!run.status.success(), "{run:?}");
        let error = &run.json()["error"];
        assert_eq!(error["status"], 402, "{sdk:?}: {error}");
        assert_eq!(error["body"].pointer(pointer), Some(&expected.into()), "{sdk:?}: {error}");
        only_request(&recorder);
    }
}
