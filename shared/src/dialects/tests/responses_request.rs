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

/// Codex CLI 0.169.0's request, as recorded (docs/agent-clients.md): four
/// `message` items with ids (2 developer, 2 user), 7 function tools, a
/// `namespace` of 5 more, the hosted `web_search`, and the fields it sends
/// every turn; no `max_output_tokens`, `instructions` or `metadata`.
fn codex_request() -> Value {
    let function = |name: &str| json!({"type": "function", "name": name, "description": format!("{name} tool"), "strict": false,
        "parameters": {"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"], "additionalProperties": false}});
    let mut tools: Vec<Value> = ["exec_command", "write_stdin", "request_user_input", "view_image", "get_goal", "create_goal", "update_goal"].iter().map(|n| function(n)).collect();
    let agents: Vec<Value> = ["spawn_agent", "send_input", "resume_agent", "wait", "close_agent"].iter().map(|n| function(n)).collect();
    tools.push(json!({"type": "namespace", "name": "multi_agent_v1", "description": "Sub-agents", "tools": agents}));
    tools.push(json!({"type": "web_search", "external_web_access": false}));
    let message = |id: &str, role: &str, text: &str| json!({"type": "message", "id": id, "role": role, "content": [{"type": "input_text", "text": text}]});
    json!({
        "model": "openai/gpt-4o-mini",
        "input": [
            message("msg_1", "developer", "You are Codex, a coding agent based on GPT-5. …"),
            message("msg_2", "developer", "<permissions instructions>sandbox: workspace-write</permissions instructions>"),
            message("msg_3", "user", "<environment_context>\n  <cwd>/tmp/w</cwd>\n  <shell>bash</shell>\n</environment_context>"),
            message("msg_4", "user", "say hi")
        ],
        "tools": tools,
        "tool_choice": "auto",
        "parallel_tool_calls": true,
        "reasoning": {"summary": "auto"},
        "store": false,
        "stream": true,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "019b-session",
        "client_metadata": {"session_id": "019b-session", "x-codex-turn-metadata": "{\"turn_id\":\"t1\",\"sandbox\":\"workspace-write\"}"}
    })
}

fn without_web_search(mut body: Value) -> Value {
    body["tools"].as_array_mut().unwrap().retain(|t| t["type"] != "web_search");
    body
}

#[test]
fn reads_codexs_request_once_web_search_is_disabled() {
    let body = without_web_search(codex_request());
    let r = read(&body).unwrap();
    assert_eq!((r.model.as_str(), r.max_output, r.limit_fields, r.stream), ("openai/gpt-4o-mini", None, (false, false), true), "the gateway picks the ceiling");
    let prints = r.prints.expect("input items are fingerprinted");
    // 4 items; 7 function tools + the namespace's 5, each counted as a tool; fixed.
    assert_eq!(prints.allowance, 4 * 16 + 12 * 64 + 512);
    assert_eq!(r.prompt_bound, body.to_string().len() as u64 + prints.allowance);
    // gpt-6.1-sol's variant: reasoning effort and context, text verbosity.
    let mut sol = body.clone();
    sol["reasoning"] = json!({"effort": "low", "context": "all_turns"});
    sol["text"] = json!({"verbosity": "low"});
    assert!(read(&sol).is_ok());
}

#[test]
fn codexs_hosted_web_search_is_refused_with_the_config_fix() {
    let body = codex_request();
    refused(&body, "tools[8]: `web_search` tools are not supported: hosted tools are billed per call");
    refused(&body, "remove it (Codex CLI: web_search = \"disabled\" in config.toml)");
    refused(&with("tools", json!([{"type": "web_search_preview"}])), "web_search = \"disabled\"");
}

#[test]
fn a_namespace_holds_function_tools_only() {
    let namespace = |tools: Value| with("tools", json!([{"type": "namespace", "name": "ns", "tools": tools}]));
    assert!(read(&namespace(json!([{"type": "custom", "name": "apply_patch"}]))).is_ok());
    refused(&namespace(json!([{"type": "web_search"}])), "tools[0].tools[0]: `web_search` tools are not supported");
    refused(&namespace(json!([{"type": "namespace", "name": "inner", "tools": []}])), "tools[0].tools[0]: `namespace` tools are not supported");
    refused(&namespace(json!({"type": "function"})), "tools[0]: a `namespace` needs `tools`, an array of function tools");
    refused(&with("client_metadata", json!("ids")), "`client_metadata` must be an object");
    refused(&with("prompt_cache_key", json!(7)), "`prompt_cache_key` must be a string");
}

#[test]
fn codexs_next_turn_is_bounded_by_the_count_of_the_last() {
    // Each turn resends the conversation with new turn ids in `client_metadata`:
    // they never reach the prompt, so the last turn's count still bounds this one.
    let first = without_web_search(codex_request());
    let mut next = first.clone();
    next["client_metadata"]["x-codex-turn-metadata"] = json!("{\"turn_id\":\"t2\",\"sandbox\":\"workspace-write\"}");
    let items = next["input"].as_array_mut().unwrap();
    items.push(json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hi"}]}));
    items.push(json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "and now?"}]}));
    let counted = read(&first).unwrap().prints.unwrap().memo().prints;
    let counts: Vec<_> = counted.into_iter().map(|print| crate::prompt_prefix::Counted { print, prompt_tokens: 9000 }).collect();
    let bound = read(&next).unwrap().prints.unwrap().bound_from(&counts).expect("the next turn extends the counted one");
    assert_eq!(bound.prefix_messages, 4);
}
