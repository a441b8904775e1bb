use crate::catalogue::ModelInfo;
use crate::chat_request::{ChatRequest, RequestError, MAX_BODY_BYTES};
use crate::dialects::Dialect;
use crate::hold::{HoldPlan, Quote};
use crate::money::{Markup, Micros};
use serde_json::{json, Value};

fn read(body: &Value) -> Result<ChatRequest, RequestError> {
    super::read(Dialect::Messages, body)
}

fn refused(body: &Value, needle: &str) {
    super::refused(Dialect::Messages, body, needle)
}

/// A Claude Code turn: cached system blocks, a thinking budget, a tool call
/// and its result, client tools.
fn claude_code_turn() -> Value {
    json!({
        "model": "claude-sonnet-4-5-20250929", "max_tokens": 32000, "stream": true,
        "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
        "thinking": {"type": "enabled", "budget_tokens": 31999},
        "metadata": {"user_id": "user_abc"}, "temperature": 1,
        "tools": [{"name": "Read", "description": "Reads a file", "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}},
                  {"type": "custom", "name": "Bash", "input_schema": {"type": "object"}}],
        "messages": [
            {"role": "user", "content": "fix the bug in main.rs"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "I should read the file.", "signature": "sig"},
                {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"path": "main.rs"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "fn main() {}"}]}]}
        ]
    })
}

#[test]
fn reads_what_claude_code_sends() {
    let r = read_whole(&claude_code_turn(), (3, 2));
    assert_eq!(r.model, "anthropic/claude-sonnet-4.5", "the Anthropic id resolves to the catalogue's");
    assert_eq!((r.max_output, r.limit_fields, r.stream, r.n, r.images), (Some(32000), (true, false), true, 1, 0));
}

/// `body` read with every byte counted and chat's allowance: a turn for the
/// system prompt and each of its `messages`, one per tool of `tools`; cache
/// writes asked (`cache_control`).
fn read_whole(body: &Value, (messages, tools): (u64, u64)) -> ChatRequest {
    let r = read(body).unwrap();
    assert!(r.cache_writes, "cache_control asks for cache writes");
    let prints = r.prints.clone().expect("fingerprinted");
    assert_eq!(prints.allowance, (messages + 1) * 16 + tools * 64 + 512);
    assert_eq!(r.prompt_bound, body.to_string().len() as u64 + prints.allowance, "every byte of the body counts");
    assert_eq!(u64::from(prints.boundaries[0].messages), messages);
    r
}

#[test]
fn the_quote_holds_for_max_tokens_like_chat() {
    let r = read(&json!({"model": "anthropic/claude-haiku-4.5", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]})).unwrap();
    let haiku = ModelInfo { id: "anthropic/claude-haiku-4.5".into(), prompt_price: 1_000_000, completion_price: 5_000_000, context_length: 200_000, max_output: Some(64_000), ..ModelInfo::default() };
    let q = Quote::for_request(&r, &[(&haiku, Markup::NONE)], 1024).unwrap();
    assert_eq!(q.ceiling(), 100);
    let full = Micros(r.prompt_bound as i64 + 100 * 5);
    assert_eq!(q.plan(Micros(1_000_000)), HoldPlan::Held { amount: full, max_tokens: 100, clamped: false });
}

#[test]
fn images_are_counted_and_priced_per_image_not_per_byte() {
    let payload = "A".repeat(100_000);
    let body = json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": payload}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
        {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}]}]}]});
    let r = read(&body).unwrap();
    assert_eq!(r.images, 3);
    assert!(r.prompt_bound < 1_500, "{}", r.prompt_bound);
}

#[test]
fn max_tokens_is_required_and_bounded() {
    let messages = json!([{"role": "user", "content": "x"}]);
    refused(&json!({"model": "m", "messages": messages}), "`max_tokens` is required");
    refused(&json!({"model": "m", "messages": messages, "max_tokens": 0}), "`max_tokens` must be an integer");
    refused(&json!({"model": "m", "messages": messages, "max_tokens": 2_000_000}), "`max_tokens` must be an integer");
    refused(&json!({"model": "m", "messages": messages, "max_tokens": "5"}), "`max_tokens` must be an integer");
}

#[test]
fn thinking_is_output_spent_within_max_tokens() {
    let with = |thinking: Value| json!({"model": "m", "max_tokens": 2048, "thinking": thinking, "messages": [{"role": "user", "content": "x"}]});
    assert_eq!(read(&with(json!({"type": "enabled", "budget_tokens": 1024}))).unwrap().max_output, Some(2048), "the ceiling covers the budget");
    assert!(read(&with(json!({"type": "disabled"}))).is_ok());
    assert!(read(&with(json!({"type": "adaptive"}))).is_ok());
    refused(&with(json!({"type": "enabled", "budget_tokens": 2048})), "below `max_tokens`");
    refused(&with(json!({"type": "enabled"})), "below `max_tokens`");
    refused(&with(json!({"type": "always"})), "`thinking` must be");
}

#[test]
fn what_cannot_be_bounded_is_refused_by_name() {
    let content = |block: Value| json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": [block]}]});
    refused(&content(json!({"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}})), "PDF `document` blocks");
    refused(&content(json!({"type": "document", "source": {"type": "url", "url": "https://a/b.pdf"}})), "PDF `document` blocks");
    refused(&content(json!({"type": "image", "source": {"type": "file", "file_id": "file_1"}})), "`base64` or `url` source");
    refused(&content(json!({"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}})), "`server_tool_use` content blocks");
    refused(&content(json!({"type": "tool_result", "tool_use_id": "t", "content": [{"type": "tool_use", "id": "u", "name": "f", "input": {}}]})), "`tool_use` content blocks");
    let text_doc = content(json!({"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain words"}}));
    assert!(read(&text_doc).is_ok(), "a plain-text document is text");
    let base = |extra: (&str, Value)| {
        let mut body = json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]});
        body[extra.0] = extra.1;
        body
    };
    refused(&base(("tools", json!([{"type": "web_search_20250305", "name": "web_search"}]))), "tools[0]: `web_search_20250305` tools are not supported");
    refused(&base(("tools", json!([{"type": "bash_20250124", "name": "bash"}]))), "`bash_20250124` tools");
    refused(&base(("mcp_servers", json!([{"type": "url", "url": "https://mcp"}]))), "`mcp_servers` is not supported");
    refused(&base(("container", json!("c1"))), "`container` is not supported");
    refused(&base(("plugins", json!([{"id": "web"}]))), "`plugins` is not supported");
}

#[test]
fn malformed_bodies_are_refused_with_what_to_do() {
    let ok = |field: &str, value: Value| {
        let mut body = json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]});
        body[field] = value;
        body
    };
    for (body, needle) in [
        (json!([]), "JSON object"),
        (json!({"max_tokens": 10, "messages": []}), "`model` is required"),
        (ok("messages", json!([])), "must not be empty"),
        (ok("messages", json!("hi")), "`messages` must be an array"),
        (ok("messages", json!([{"role": "tool", "content": "x"}])), "role `tool` is not a Messages role"),
        (ok("messages", json!([{"content": "x"}])), "`role` is required"),
        (ok("messages", json!([{"role": "user", "content": 5}])), "`content` must be a string or an array"),
        (ok("messages", json!([{"role": "user", "content": [{"text": "x"}]}])), "needs a `type`"),
        (ok("messages", json!([{"role": "user", "content": [{"type": "text"}]}])), "needs `text`"),
        (ok("system", json!(5)), "`system` must be a string or an array of text blocks"),
        (ok("system", json!([{"type": "image"}])), "`system` must be"),
        (ok("tools", json!({"name": "f"})), "`tools` must be an array"),
        (ok("tools", json!(["f"])), "tools[0] must be an object"),
        (ok("stream", json!("yes")), "`stream` must be a boolean"),
        (ok("temperature", json!("hot")), "`temperature` must be a number"),
        (ok("top_k", json!(-1)), "`top_k` must be a non-negative integer"),
        (ok("stop_sequences", json!([1])), "`stop_sequences` must be an array of strings"),
        (ok("metadata", json!("x")), "`metadata` must be an object"),
    ] {
        refused(&body, needle);
    }
    assert_eq!(Dialect::Messages.read(b"not json").map_err(|e| matches!(e, RequestError::Invalid(m) if m.contains("not valid JSON"))), Err(true));
    assert_eq!(Dialect::Messages.read(&vec![b' '; MAX_BODY_BYTES + 1]), Err(RequestError::TooLarge));
}

#[test]
fn a_count_in_one_dialect_never_bounds_another() {
    // Valid as chat and as Messages, byte for byte: the upstream may read it
    // differently in each, so their fingerprints must differ.
    let body = br#"{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"x"}]}"#;
    let chat = Dialect::Chat.read(body).unwrap().prints.unwrap();
    let messages = Dialect::Messages.read(body).unwrap().prints.unwrap();
    assert_eq!(chat.boundaries.len(), messages.boundaries.len());
    assert!(chat.boundaries.iter().zip(&messages.boundaries).all(|(a, b)| a.print != b.print));
}

#[test]
fn the_next_turn_is_bounded_by_the_count_of_the_last() {
    let whole = claude_code_turn();
    let mut first = whole.clone();
    first["messages"] = json!([whole["messages"][0]]);
    first["max_tokens"] = json!(64000); // prompt-neutral
    let counted = read(&first).unwrap().prints.unwrap().memo().prints;
    let next = read(&whole).unwrap().prints.unwrap();
    let counts: Vec<_> = counted.into_iter().map(|print| crate::prompt_prefix::Counted { print, prompt_tokens: 300 }).collect();
    let bound = next.bound_from(&counts).expect("the next turn extends the counted one");
    assert_eq!(bound.prefix_messages, 1);
    let suffix = next.boundaries.iter().find(|b| b.messages == 1).unwrap().suffix_bytes;
    assert_eq!(bound.tokens, 300 + suffix + next.allowance + crate::prompt_prefix::JUNCTION_TOKENS);
    assert!(bound.tokens < next.text_bytes + next.allowance, "below the byte bound");
}

/// Claude Code 2.1.328's request for its default (5.x) models, as recorded
/// (docs/agent-clients.md): a billing-header system block and two cached
/// ones, a `user` message then a `system` one (environment, deferred tool
/// list), adaptive thinking with `display`, `output_config.effort`,
/// `context_management`, `metadata.user_id` as a JSON string, client tools
/// of which one is deferred.
fn claude_code_default_request() -> Value {
    let tool = |name: &str| json!({"name": name, "description": format!("{name} tool"), "input_schema": {"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"], "additionalProperties": false, "$schema": "http://json-schema.org/draft-07/schema#"}});
    let mut tools: Vec<Value> = ["Agent", "Bash", "Edit", "Glob", "Grep", "Read", "Skill", "TodoWrite", "WebFetch", "WebSearch", "Write"].iter().map(|n| tool(n)).collect();
    let mut deferred = tool("DeferredToolPlaceholder");
    deferred["defer_loading"] = json!(true);
    tools.push(deferred);
    json!({
        "model": "claude-opus-5-5",
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "<system-reminder>\nAs you answer the user's questions, you can use the following context: …\n</system-reminder>\n"},
                {"type": "text", "text": "say hi"}]},
            {"role": "system", "content": [{"type": "text", "text": "<env>\nWorking directory: /tmp/w\nPlatform: linux\n</env>\nDeferred tools: NotebookEdit, WebFetch"}]}
        ],
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.328.abc; cc_entrypoint=sdk-cli;"},
            {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "You are an interactive agent that helps users with software engineering tasks.", "cache_control": {"type": "ephemeral"}}
        ],
        "tools": tools,
        "metadata": {"user_id": "{\"device_id\":\"9f1c\",\"account_uuid\":\"\",\"session_id\":\"5b7e\"}"},
        "max_tokens": 128000,
        "thinking": {"type": "adaptive", "display": "omitted"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "medium"},
        "stream": true
    })
}

#[test]
fn reads_claude_codes_default_model_request() {
    // The `system` message counts like any; the deferred tool too.
    let r = read_whole(&claude_code_default_request(), (2, 12));
    assert_eq!(r.model, "anthropic/claude-opus-5.5", "the 5.x default resolves by the general rule");
    assert_eq!((r.max_output, r.limit_fields, r.stream), (Some(128000), (true, false), true), "adaptive thinking is output within max_tokens");
}

#[test]
fn claude_codes_other_shapes_are_read_too() {
    // 4.x: everything in one user message, thinking with a budget and `display`; the non-streaming re-send.
    let mut sonnet = claude_code_default_request();
    sonnet["model"] = json!("claude-sonnet-4-5");
    sonnet["max_tokens"] = json!(32000);
    sonnet["thinking"] = json!({"type": "enabled", "budget_tokens": 31999, "display": "omitted"});
    sonnet["messages"] = json!([{"role": "user", "content": [{"type": "text", "text": "say hi", "cache_control": {"type": "ephemeral"}}]}]);
    sonnet.as_object_mut().unwrap().remove("output_config");
    assert_eq!(read(&sonnet).unwrap().model, "anthropic/claude-sonnet-4.5");
    let mut fallback = claude_code_default_request();
    fallback["stream"] = json!(false);
    fallback["max_tokens"] = json!(64000);
    assert_eq!(read(&fallback).unwrap().max_output, Some(64000));
    // An id it does not recognise, a system message as a plain string, `MAX_THINKING_TOKENS=0`.
    let mut other = claude_code_default_request();
    other["model"] = json!("openai/gpt-4o-mini");
    other["messages"][1]["content"] = json!("<env>Platform: linux</env>");
    other["output_config"] = json!({"effort": "high"});
    assert_eq!(read(&other).unwrap().model, "openai/gpt-4o-mini", "a catalogue id passes unchanged");
    other["thinking"] = json!({"type": "disabled"});
    assert!(read(&other).is_ok());
}

#[test]
fn claude_codes_extra_fields_are_type_checked() {
    let with = |field: &str, value: Value| {
        let mut body = claude_code_default_request();
        body[field] = value;
        body
    };
    refused(&with("context_management", json!("clear")), "`context_management` must be an object");
    refused(&with("output_config", json!("medium")), "`output_config` must be an object");
    refused(&with("thinking", json!({"type": "adaptive", "display": 1})), "`thinking.display` must be a string");
    refused(&with("metadata", json!({"user_id": 5})), "`metadata.user_id` must be a string");
    let mut body = claude_code_default_request();
    body["messages"][1] = json!({"role": "system", "content": [{"type": "tool_use", "id": "u", "name": "f", "input": {}}]});
    refused(&body, "messages[1]: a `system` message holds text");
}
