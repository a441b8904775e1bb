//! `POST /v1/responses` bodies (OpenAI Responses) read for the quote, like
//! chat's: `max_output_tokens` is the ceiling when set (reasoning tokens are
//! output tokens within it), else the model's cap, forwarded either way.
//! The gateway is stateless like OpenRouter's Responses API: what refers to
//! stored state (`previous_response_id`, `conversation`, `prompt`, item
//! references, provider files, background responses) is refused, 400 saying
//! what to send instead; `store` is accepted and forwarded, but nothing is
//! stored. Hosted tools and file or audio inputs are billed in ways no bound
//! covers: refused, naming them. Function and custom tools are served, and
//! so are Codex's `namespace` tools (a named group of function tools).

use super::prompt_tally::{check_types, refuse_fields, Common, Kind, PromptTally};
use crate::chat_request::{invalid, json_object, output_limit, ChatRequest, RequestError};
use crate::prompt_prefix::Conversation;
use serde_json::{Map, Value};

/// Responses bodies are fingerprinted by their `input` items (a string input
/// has no boundaries: the byte bound alone applies).
const CONVERSATION: Conversation = Conversation {
    tag: b"dexto-prompt-prints-v1/responses\0",
    field: "input",
    // `client_metadata`: Codex's ids, new turn ids every turn; never the prompt.
    neutral: &[
        "max_output_tokens",
        "stream",
        "stream_options",
        "temperature",
        "top_p",
        "store",
        "metadata",
        "client_metadata",
        "user",
        "include",
        "prompt_cache_key",
        "safety_identifier",
    ],
};
const STATELESS: &str = "this gateway is stateless, like OpenRouter's Responses API, and stores nothing";
const REFUSED: &[(&str, &str)] = &[
    ("previous_response_id", "this gateway is stateless, like OpenRouter's Responses API, and stores no responses; send the whole conversation in `input`"),
    ("conversation", "this gateway is stateless and stores no conversations; send the whole conversation in `input`"),
    ("prompt", "stored prompt templates live with the provider, out of this gateway's reach; send `instructions` and `input`"),
    ("background", "background responses are stored for later retrieval, and this gateway is stateless; stream instead (\"stream\": true)"),
];
/// Service tiers billed at the catalogue price (or below it).
const PRICED_TIERS: &[&str] = &["auto", "default", "flex"];
const TYPES: &[(&str, Kind)] = &[
    ("instructions", Kind::String),
    ("temperature", Kind::Number),
    ("top_p", Kind::Number),
    ("store", Kind::Bool),
    ("parallel_tool_calls", Kind::Bool),
    ("metadata", Kind::Object),
    ("client_metadata", Kind::Object),
    ("prompt_cache_key", Kind::String),
    ("reasoning", Kind::Object),
    ("text", Kind::Object),
    ("include", Kind::Strings),
    ("service_tier", Kind::String),
    ("truncation", Kind::String),
];

pub(super) fn read(body: &[u8]) -> Result<ChatRequest, RequestError> {
    let json = json_object(body)?;
    let obj = json.as_object().expect("checked");
    refuse_fields(obj, REFUSED)?;
    let common = Common::read(obj)?;
    let max_output = output_limit(obj, "max_output_tokens")?;
    check_types(obj, TYPES)?;
    if let Some(tier) = obj.get("service_tier").and_then(Value::as_str).filter(|t| !PRICED_TIERS.contains(t)) {
        return Err(invalid(format!("`service_tier` \"{tier}\" is not supported: it is billed above the catalogue price the hold covers; omit it or send \"auto\"")));
    }
    let mut tally = PromptTally::default();
    if let Some(instructions) = obj.get("instructions").and_then(Value::as_str) {
        tally.turn();
        tally.text(instructions);
    }
    match obj.get("input") {
        Some(Value::String(s)) => {
            tally.turn();
            tally.text(s);
        }
        Some(Value::Array(items)) if !items.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                read_item(item, &mut tally).map_err(|e| invalid(format!("input[{i}]: {e}")))?;
            }
        }
        Some(Value::Array(_)) => return Err(invalid("`input` must not be empty")),
        Some(_) => return Err(invalid("`input` must be a string or an array of items")),
        None => return Err(invalid("`input` is required: the whole conversation (this gateway keeps no earlier responses)")),
    }
    read_tools(obj, &mut tally)?;
    Ok(common.into_request(body, &json, tally, (max_output, obj.contains_key("max_output_tokens")), &CONVERSATION))
}

fn read_item(item: &Value, tally: &mut PromptTally) -> Result<(), String> {
    let obj = item.as_object().ok_or("each input item must be an object")?;
    let kind = match obj.get("type").and_then(Value::as_str) {
        Some(kind) => kind,
        None if obj.contains_key("role") => "message",
        None => return Err("each input item needs a `type` (or a `role`, for a message)".into()),
    };
    tally.turn();
    let text = |field: &str| obj.get(field).and_then(Value::as_str).unwrap_or_default();
    match kind {
        "message" => {
            match obj.get("role").and_then(Value::as_str) {
                Some("user" | "assistant" | "system" | "developer") => {}
                Some(other) => return Err(format!("unknown role `{other}`")),
                None => return Err("`role` is required".into()),
            }
            read_content(obj.get("content"), tally, "content")?;
        }
        "function_call" => {
            tally.text(text("name"));
            tally.text(text("arguments"));
        }
        "custom_tool_call" => {
            tally.text(text("name"));
            tally.text(text("input"));
        }
        "function_call_output" | "custom_tool_call_output" => read_content(obj.get("output"), tally, "output")?,
        "reasoning" => tally.json(obj.get("summary").unwrap_or(&Value::Null)),
        "item_reference" => return Err(format!("`item_reference` items are not supported: {STATELESS}; send the items themselves")),
        other => {
            return Err(format!(
                "`{other}` items are not supported: send messages, function and custom tool calls with their outputs, and reasoning items \
                 (hosted tools' items cannot be priced before the call)"
            ))
        }
    }
    Ok(())
}

/// A message's `content` or a tool output: a string or an array of parts.
fn read_content(content: Option<&Value>, tally: &mut PromptTally, field: &str) -> Result<(), String> {
    match content {
        Some(Value::String(s)) => tally.text(s),
        Some(Value::Array(parts)) => parts.iter().try_for_each(|p| read_part(p, tally))?,
        _ => return Err(format!("`{field}` must be a string or an array of content parts")),
    }
    Ok(())
}

fn read_part(part: &Value, tally: &mut PromptTally) -> Result<(), String> {
    let kind = part.get("type").and_then(Value::as_str).ok_or("each content part needs a `type`")?;
    match kind {
        "input_text" | "output_text" => tally.text(part.get("text").and_then(Value::as_str).ok_or_else(|| format!("an `{kind}` part needs `text`"))?),
        "refusal" => tally.text(part.get("refusal").and_then(Value::as_str).unwrap_or_default()),
        "input_image" if part.get("image_url").is_some_and(Value::is_string) => tally.image(part),
        "input_image" => {
            return Err(format!("`input_image` parts need an `image_url` (a URL or a data URL): {STATELESS}, and files stored with the provider are out of its reach"))
        }
        "input_file" => {
            return Err("`input_file` parts are not supported: the provider bills a file's pages as extracted text and images, \
                 which cannot be bounded before the call; send the text"
                .into())
        }
        other => return Err(format!("`{other}` content parts are not supported: their cost cannot be bounded before the call; send text or images")),
    }
    Ok(())
}

/// Function and custom tools, and namespaces of them (counted as the tools
/// they hold): hosted tools are billed per call (or run beyond the gateway),
/// which no bound covers.
fn read_tools(obj: &Map<String, Value>, tally: &mut PromptTally) -> Result<(), RequestError> {
    let tools = match obj.get("tools") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Array(tools)) => tools,
        Some(_) => return Err(invalid("`tools` must be an array")),
    };
    for (i, tool) in tools.iter().enumerate() {
        let at = format!("tools[{i}]");
        let held = match tool.get("type").and_then(Value::as_str) {
            Some("namespace") => match tool.get("tools") {
                Some(Value::Array(inner)) => {
                    inner.iter().enumerate().try_for_each(|(j, t)| check_function_tool(t, &format!("{at}.tools[{j}]")))?;
                    inner.len() as u64
                }
                _ => return Err(invalid(format!("{at}: a `namespace` needs `tools`, an array of function tools"))),
            },
            _ => {
                check_function_tool(tool, &at)?;
                1
            }
        };
        tally.tool(tool, held);
    }
    Ok(())
}

fn check_function_tool(tool: &Value, at: &str) -> Result<(), RequestError> {
    match tool.get("type").and_then(Value::as_str) {
        Some("function" | "custom") => Ok(()),
        Some(web @ ("web_search" | "web_search_preview")) => Err(invalid(format!(
            "{at}: `{web}` tools are not supported: hosted tools are billed per call beyond what the gateway can bound; \
             remove it (Codex CLI: web_search = \"disabled\" in config.toml)"
        ))),
        Some(other) => Err(invalid(format!(
            "{at}: `{other}` tools are not supported: hosted tools (web search, file search, code interpreter, image generation, \
             computer use, remote MCP, local shell) are billed per call or run beyond this gateway, which cannot be priced before the call; \
             offer function tools instead"
        ))),
        None => Err(invalid(format!("{at} needs a `type` (\"function\")"))),
    }
}
