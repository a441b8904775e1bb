use crate::chat_request::{ChatRequest, RequestError};
use crate::dialects::{set_output_limit, Dialect};
use serde_json::{json, Value};

fn read(body: &Value) -> Result<ChatRequest, RequestError> {
    super::read(Dialect::Responses, body)
}

fn refused(body: &Value, needle: &str) {
    super::refused(Dialect::Responses, body, needle)
}

fn with(field: &str, value: Value) -> Value {
    let mut body = json!({"model": "openai/gpt-5", "input": "hi"});
    body[field] = value;
    body
}

/// A Codex CLI turn: instructions, the whole conversation as items (a
/// reasoning item, function and custom tool calls with their outputs),
/// function and custom tools, no output limit, nothing stored.
fn codex_turn() -> Value {
    json!({
        "model": "openai/gpt-5-codex", "instructions": "You are Codex.", "stream": true, "store": false,
        "tool_choice": "auto", "parallel_tool_calls": false, "reasoning": {"effort": "medium", "summary": "auto"},
        "include": ["reasoning.encrypted_content"], "prompt_cache_key": "conv_1",
        "tools": [{"type": "function", "name": "shell", "parameters": {"type": "object", "properties": {"command": {"type": "array"}}}},
                  {"type": "custom", "name": "apply_patch", "format": {"type": "grammar", "syntax": "lark", "definition": "start: x"}}],
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "fix the bug"}]},
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "look first"}], "encrypted_content": "gAAAA"},
            {"type": "function_call", "call_id": "c1", "name": "shell", "arguments": "{\"command\":[\"ls\"]}"},
            {"type": "function_call_output", "call_id": "c1", "output": "main.rs"},
            {"type": "custom_tool_call", "call_id": "c2", "name": "apply_patch", "input": "*** Begin Patch"},
            {"type": "custom_tool_call_output", "call_id": "c2", "output": "Done"},
            {"role": "assistant", "content": [{"type": "output_text", "text": "fixed"}]}
        ]
    })
}

#[test]
fn reads_what_codex_sends() {
    let body = codex_turn();
    let r = read(&body).unwrap();
    assert_eq!(r.model, "openai/gpt-5-codex");
    assert_eq!((r.max_output, r.limit_fields, r.stream, r.n, r.images), (None, (false, false), true, 1, 0));
    let prints = r.prints.expect("input items are fingerprinted");
    // 7 items + the instructions, 2 tools, fixed: the same allowance as chat's.
    assert_eq!(prints.allowance, 8 * 16 + 2 * 64 + 512);
    assert_eq!(r.prompt_bound, body.to_string().len() as u64 + prints.allowance);
    assert!(!r.cache_writes);
}

#[test]
fn max_output_tokens_is_the_ceiling_when_set_and_forwarded_either_way() {
    let r = read(&with("max_output_tokens", json!(500))).unwrap();
    assert_eq!((r.max_output, r.limit_fields), (Some(500), (true, false)));
    let body = br#"{"model":"m","input":"hi"}"#;
    let r = Dialect::Responses.read(body).unwrap();
    assert_eq!(r.prints, None, "a string input has no boundaries");
    let forwarded = set_output_limit(Dialect::Responses, body, r.limit_fields, r.max_output, 4096);
    assert_eq!(forwarded, br#"{"max_output_tokens":4096,"model":"m","input":"hi"}"#);
    refused(&with("max_output_tokens", json!(0)), "`max_output_tokens` must be an integer");
}

#[test]
fn stored_state_is_refused_with_what_to_send_instead() {
    refused(&with("previous_response_id", json!("resp_1")), "`previous_response_id` is not supported: this gateway is stateless");
    refused(&with("previous_response_id", json!("resp_1")), "send the whole conversation in `input`");
    refused(&with("conversation", json!("conv_1")), "`conversation` is not supported");
    refused(&with("prompt", json!({"id": "pmpt_1"})), "`prompt` is not supported");
    refused(&with("background", json!(true)), "`background` is not supported");
    refused(&with("input", json!([{"type": "item_reference", "id": "msg_1"}])), "input[0]: `item_reference` items are not supported");
    assert!(read(&with("background", json!(false))).is_ok());
    assert!(read(&with("previous_response_id", Value::Null)).is_ok());
    // `store` is forwarded as sent; nothing is stored either way.
    assert!(read(&with("store", json!(true))).is_ok());
    refused(&with("store", json!("yes")), "`store` must be a boolean");
}

#[test]
fn hosted_tools_and_unboundable_inputs_are_refused_by_name() {
    for hosted in ["web_search", "web_search_preview", "file_search", "code_interpreter", "image_generation", "mcp", "local_shell", "computer_use_preview"] {
        refused(&with("tools", json!([{"type": "function", "name": "f"}, {"type": hosted}])), &format!("tools[1]: `{hosted}` tools are not supported"));
    }
    refused(&with("tools", json!([{"name": "f"}])), "tools[0] needs a `type`");
    let part = |p: Value| with("input", json!([{"role": "user", "content": [p]}]));
    refused(&part(json!({"type": "input_file", "file_data": "data:application/pdf;base64,JVBE"})), "`input_file` parts are not supported");
    refused(&part(json!({"type": "input_image", "file_id": "file_1"})), "need an `image_url`");
    refused(&part(json!({"type": "input_audio", "input_audio": {}})), "`input_audio` content parts are not supported");
    refused(&with("input", json!([{"type": "web_search_call", "id": "ws_1"}])), "`web_search_call` items are not supported");
    refused(&with("service_tier", json!("priority")), "`service_tier` \"priority\" is not supported");
    assert!(read(&with("service_tier", json!("flex"))).is_ok());
    refused(&with("plugins", json!([{"id": "web"}])), "`plugins` is not supported");
}

#[test]
fn images_are_priced_per_image() {
    let image = json!({"type": "input_image", "image_url": format!("data:image/png;base64,{}", "A".repeat(100_000))});
    let r = read(&with("input", json!([{"role": "user", "content": [image.clone()]}, {"type": "function_call_output", "call_id": "c", "output": [image]}]))).unwrap();
    assert_eq!(r.images, 2);
    assert!(r.prompt_bound < 2_000, "{}", r.prompt_bound);
}

#[test]
fn malformed_bodies_are_refused_with_what_to_do() {
    for (body, needle) in [
        (json!({"model": "m"}), "`input` is required"),
        (json!({"input": "x"}), "`model` is required"),
        (with("input", json!(5)), "`input` must be a string or an array of items"),
        (with("input", json!([])), "`input` must not be empty"),
        (with("input", json!(["hi"])), "input[0]: each input item must be an object"),
        (with("input", json!([{"content": "x"}])), "needs a `type`"),
        (with("input", json!([{"role": "wizard", "content": "x"}])), "unknown role `wizard`"),
        (with("input", json!([{"type": "message", "content": "x"}])), "`role` is required"),
        (with("input", json!([{"role": "user", "content": 5}])), "`content` must be a string or an array"),
        (with("input", json!([{"role": "user", "content": [{"text": "x"}]}])), "needs a `type`"),
        (with("input", json!([{"role": "user", "content": [{"type": "input_text"}]}])), "needs `text`"),
        (with("input", json!([{"type": "function_call_output", "call_id": "c", "output": 5}])), "`output` must be a string or an array"),
        (with("instructions", json!(["x"])), "`instructions` must be a string"),
        (with("text", json!("json")), "`text` must be an object"),
        (with("tools", json!({"type": "function"})), "`tools` must be an array"),
        (with("stream", json!(1)), "`stream` must be a boolean"),
    ] {
        refused(&body, needle);
    }
}
