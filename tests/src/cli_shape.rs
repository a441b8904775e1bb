//! A faithful synthetic of the Dexto CLI's agent-loop request (issue 15:
//! the real CLI 1.10.4 sends ≈ 96 KB with 48 tool schemas, streams, sets no
//! output limit, and resends the whole conversation every turn). The npm
//! package is not reachable from this workplace, so the shape is built from
//! those facts and `shared/reference/dexto-client.md`: a system message with
//! the agent's instructions and environment, 48 function tools with JSON
//! Schema parameters, then per turn an assistant tool call and its result.

use serde_json::{json, Value};

const TOOLS: [&str; 48] = [
    "read_file", "write_file", "edit_file", "glob_files", "grep_content", "bash_exec", "bash_output", "kill_process",
    "ask_user", "todo_write", "invoke_skill", "delegate_to_url", "spawn_agent", "web_fetch", "list_directory", "move_file",
    "delete_file", "create_directory", "file_info", "search_symbols", "git_status", "git_diff", "git_log", "git_commit",
    "run_tests", "lint", "format", "build", "install_package", "open_browser", "browser_click", "browser_type",
    "browser_snapshot", "browser_navigate", "browser_screenshot", "memory_search", "memory_write", "plan_update",
    "http_request", "sql_query", "read_image", "notebook_edit", "diff_apply", "env_info", "process_list", "port_check",
    "archive_extract", "checksum",
];

fn tool(i: usize, name: &str) -> Value {
    let description = format!(
        "{name}: one of the agent's built-in tools. Use it when the task needs it and prefer it over shell equivalents. \
         It runs inside the working directory unless told otherwise, asks for approval outside it, and reports errors \
         as text the agent can act on. Keep calls small and precise; read before you write; never guess paths. {}",
        "Results longer than the output limit are truncated with a note saying how to read the rest. ".repeat(6 + i % 3)
    );
    let property = |what: &str| json!({"type": "string", "description": format!("The {what} for {name}. Relative paths resolve against the working directory; absolute paths are used as given, subject to approval.")});
    json!({"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object",
        "properties": {"path": property("path"), "pattern": property("pattern"), "content": property("content"),
            "limit": {"type": "integer", "minimum": 1, "description": "At most this many lines or entries."}},
        "required": ["path"], "additionalProperties": false, "$schema": "http://json-schema.org/draft-07/schema#"}}})
}

fn system_message() -> Value {
    let instructions = "You are Dexto, a coding agent working in the user's repository. Plan briefly, then act with \
        tools; keep the user informed in short messages; verify your changes by running the project's tests. ";
    let environment = "<env>os: linux; shell: bash; working directory: /home/dev/project; git: main, clean</env>";
    json!({"role": "system", "content": format!("{}{environment}", instructions.repeat(45))})
}

/// The request of turn `turn` (0 = the first): the same system message and
/// tools every turn, and the conversation so far. `marker` goes into the
/// first user message (the mock's faults and the tests' upstream lookups).
pub fn dexto_cli_turn(marker: &str, turn: usize) -> Value {
    let tools: Vec<Value> = TOOLS.iter().enumerate().map(|(i, name)| tool(i, name)).collect();
    let mut messages = vec![system_message(), json!({"role": "user", "content": format!("{marker} The build fails on CI; find out why and fix it.")})];
    for t in 0..turn {
        let id = format!("call_{t}");
        messages.push(json!({"role": "assistant", "content": "Let me look at that.", "tool_calls": [
            {"id": id, "type": "function", "function": {"name": "read_file", "arguments": format!("{{\"path\":\"src/module_{t}.rs\"}}")}}]}));
        let source = format!("pub fn step_{t}(input: &str) -> Result<String, Error> {{\n    let parsed = parse(input)?;\n    Ok(parsed.to_string())\n}}\n");
        messages.push(json!({"role": "tool", "tool_call_id": id, "content": source.repeat(24)}));
    }
    json!({"model": "anthropic/claude-haiku-4.5", "stream": true, "stream_options": {"include_usage": true}, "tools": tools, "messages": messages})
}
