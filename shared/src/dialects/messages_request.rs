//! `POST /v1/messages` bodies (Anthropic Messages) read for the quote, like
//! chat's: `max_tokens` is required and is the ceiling (thinking tokens are
//! output tokens within it); text, images, tool calls and results and
//! thinking blocks are bounded by their bytes, and so is what Claude Code
//! adds (`role: "system"` messages, `context_management`, `output_config`,
//! deferred tools); what the provider bills per use or reads from storage
//! (server tools, MCP servers, PDFs, files) is refused, 400 naming it.
//! Anthropic-native model ids resolve to catalogue ids (`model_aliases`).

use super::model_aliases::catalogue_id;
use super::prompt_tally::{check_types, refuse_fields, Common, Kind, PromptTally};
use crate::chat_request::{invalid, json_object, output_limit, ChatRequest, RequestError};
use crate::prompt_prefix::Conversation;
use serde_json::{Map, Value};

/// Messages bodies are fingerprinted by their `messages`; `system`, `tools`
/// and the rest are context. Sampling and delivery fields never reach the prompt.
const CONVERSATION: Conversation = Conversation {
    tag: b"dexto-prompt-prints-v1/messages\0",
    field: "messages",
    neutral: &["max_tokens", "stream", "temperature", "top_p", "top_k", "metadata", "stop_sequences"],
};
const REFUSED: &[(&str, &str)] = &[
    ("mcp_servers", "MCP servers called by the provider are billed per use, which cannot be priced before the call; run the tools yourself"),
    ("container", "code execution containers are billed by the provider per use, which cannot be priced before the call"),
];
const TYPES: &[(&str, Kind)] = &[
    ("temperature", Kind::Number),
    ("top_p", Kind::Number),
    ("top_k", Kind::Integer),
    ("stop_sequences", Kind::Strings),
    ("metadata", Kind::Object),
    ("tool_choice", Kind::Object),
    ("service_tier", Kind::String),
    ("context_management", Kind::Object),
    ("output_config", Kind::Object),
];

pub(super) fn read(body: &[u8]) -> Result<ChatRequest, RequestError> {
    let json = json_object(body)?;
    let obj = json.as_object().expect("checked");
    refuse_fields(obj, REFUSED)?;
    let mut common = Common::read(obj)?;
    common.model = resolved(common.model);
    common.fallbacks = common.fallbacks.into_iter().map(resolved).collect();
    let max_tokens = output_limit(obj, "max_tokens")?
        .ok_or_else(|| invalid("`max_tokens` is required: the most output tokens the reply may use, thinking included (the hold covers them)"))?;
    check_types(obj, TYPES)?;
    if obj.get("metadata").and_then(|m| m.get("user_id")).is_some_and(|id| !id.is_null() && !id.is_string()) {
        return Err(invalid("`metadata.user_id` must be a string"));
    }
    check_thinking(obj, max_tokens)?;
    let messages = match obj.get("messages") {
        Some(Value::Array(m)) if !m.is_empty() => m,
        Some(Value::Array(_)) => return Err(invalid("`messages` must not be empty")),
        Some(_) => return Err(invalid("`messages` must be an array")),
        None => return Err(invalid("`messages` is required")),
    };
    let mut tally = PromptTally::default();
    read_system(obj.get("system"), &mut tally)?;
    for (i, message) in messages.iter().enumerate() {
        read_message(message, &mut tally).map_err(|e| invalid(format!("messages[{i}]: {e}")))?;
    }
    read_tools(obj.get("tools"), &mut tally)?;
    Ok(common.into_request(body, &json, tally, (Some(max_tokens), true), &CONVERSATION))
}

fn resolved(model: String) -> String {
    catalogue_id(&model).into_owned()
}

/// `thinking`: enabled with a budget below `max_tokens` (Anthropic's rule:
/// the budget is spent within the ceiling, so the hold already covers it),
/// disabled, or adaptive (no budget: the model spends what it needs, still
/// within `max_tokens`). `display` (`omitted`, `summarized`) only shapes
/// what the reply shows.
fn check_thinking(obj: &Map<String, Value>, max_tokens: u64) -> Result<(), RequestError> {
    let Some(thinking) = obj.get("thinking").filter(|t| !t.is_null()) else { return Ok(()) };
    if thinking.get("display").is_some_and(|d| !d.is_null() && !d.is_string()) {
        return Err(invalid("`thinking.display` must be a string"));
    }
    match thinking.get("type").and_then(Value::as_str) {
        Some("enabled") => match thinking.get("budget_tokens").and_then(Value::as_u64) {
            Some(budget) if budget < max_tokens => Ok(()),
            _ => Err(invalid("`thinking.budget_tokens` must be an integer below `max_tokens`: thinking tokens are output tokens, spent within max_tokens")),
        },
        Some("disabled" | "adaptive") => Ok(()),
        _ => Err(invalid("`thinking` must be {\"type\":\"enabled\",\"budget_tokens\":N}, {\"type\":\"disabled\"} or {\"type\":\"adaptive\"}")),
    }
}

fn read_system(system: Option<&Value>, tally: &mut PromptTally) -> Result<(), RequestError> {
    let malformed = || invalid("`system` must be a string or an array of text blocks");
    match system {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::String(s)) => tally.text(s),
        Some(Value::Array(blocks)) => {
            for block in blocks {
                tally.text(text_block(block).ok_or_else(malformed)?);
            }
        }
        Some(_) => return Err(malformed()),
    }
    tally.turn();
    Ok(())
}

/// A `user`, `assistant` or `system` message. Claude Code sends its
/// environment and deferred tool list as `system` messages after the user's
/// (5.x models): text, counted like any message's.
fn read_message(message: &Value, tally: &mut PromptTally) -> Result<(), String> {
    let obj = message.as_object().ok_or("each message must be an object")?;
    let system = match obj.get("role").and_then(Value::as_str) {
        Some("user" | "assistant") => false,
        Some("system") => true,
        Some(other) => return Err(format!("role `{other}` is not a Messages role: use `user`, `assistant` or `system`")),
        None => return Err("`role` is required".into()),
    };
    tally.turn();
    match obj.get("content") {
        Some(Value::String(s)) => tally.text(s),
        Some(Value::Array(blocks)) if system => {
            for block in blocks {
                tally.text(text_block(block).ok_or("a `system` message holds text: a string or an array of text blocks")?);
            }
        }
        Some(Value::Array(blocks)) => blocks.iter().try_for_each(|b| read_block(b, tally, false))?,
        _ => return Err("`content` must be a string or an array of content blocks".into()),
    }
    Ok(())
}

/// The text of a `{"type": "text", "text": …}` block (`cache_control` and
/// the like beside it are bounded by their bytes).
fn text_block(block: &Value) -> Option<&str> {
    match block.get("type").and_then(Value::as_str) {
        Some("text") => block.get("text").and_then(Value::as_str),
        _ => None,
    }
}

/// One content block. `nested`: inside a `tool_result`, where only text,
/// images, documents and search results may appear.
fn read_block(block: &Value, tally: &mut PromptTally, nested: bool) -> Result<(), String> {
    let kind = block.get("type").and_then(Value::as_str).ok_or("each content block needs a `type`")?;
    let source_type = block.pointer("/source/type").and_then(Value::as_str);
    match (kind, nested) {
        ("text", _) => tally.text(block.get("text").and_then(Value::as_str).ok_or("a `text` block needs `text`")?),
        ("image", _) => match source_type {
            Some("base64" | "url") => tally.image(block),
            _ => return Err("`image` blocks need a `base64` or `url` source (files stored with the provider are out of this gateway's reach)".into()),
        },
        ("document", _) => match (source_type, block.get("source")) {
            (Some("text"), Some(source)) => tally.text(source.get("data").and_then(Value::as_str).unwrap_or_default()),
            (Some("content"), Some(source)) => match source.get("content") {
                Some(Value::String(s)) => tally.text(s),
                Some(Value::Array(blocks)) => blocks.iter().try_for_each(|b| read_block(b, tally, true))?,
                _ => return Err("a `content` document needs `content`".into()),
            },
            _ => {
                return Err("PDF `document` blocks are not supported: the provider bills a PDF's pages as extracted text and page images, \
                     which cannot be bounded before the call; send the text (a `text` block or a plain-text document)"
                    .into())
            }
        },
        ("search_result", _) => tally.json(block),
        ("tool_use", false) => {
            tally.text(block.get("name").and_then(Value::as_str).unwrap_or_default());
            tally.json(block.get("input").unwrap_or(&Value::Null));
        }
        ("tool_result", false) => match block.get("content") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => tally.text(s),
            Some(Value::Array(blocks)) => blocks.iter().try_for_each(|b| read_block(b, tally, true))?,
            Some(_) => return Err("a `tool_result`'s `content` must be a string or an array of content blocks".into()),
        },
        ("thinking", false) => tally.text(block.get("thinking").and_then(Value::as_str).unwrap_or_default()),
        ("redacted_thinking", false) => tally.json(block),
        (other, _) => {
            return Err(format!(
                "`{other}` content blocks are not supported here: their cost cannot be bounded before the call \
                 (server tools are billed per use); send text, image, tool_use, tool_result and thinking blocks"
            ))
        }
    }
    Ok(())
}

/// Client tools (`name`, `input_schema`; `defer_loading` ones too, counted
/// whole though the provider may load them later) only: tools Anthropic runs
/// or defines are billed per use or add a provider-side prompt no bound covers.
fn read_tools(tools: Option<&Value>, tally: &mut PromptTally) -> Result<(), RequestError> {
    let tools = match tools {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Array(tools)) => tools,
        Some(_) => return Err(invalid("`tools` must be an array")),
    };
    for (i, tool) in tools.iter().enumerate() {
        match tool.get("type").and_then(Value::as_str) {
            None | Some("custom") if tool.is_object() => {}
            None | Some("custom") => return Err(invalid(format!("tools[{i}] must be an object"))),
            Some(other) => {
                return Err(invalid(format!(
                    "tools[{i}]: `{other}` tools are not supported: tools Anthropic runs or defines (web search, web fetch, code execution, \
                     bash, text editor, computer use) are billed per use or add a provider-side prompt, which cannot be priced before the call; \
                     define the tool yourself with `name` and `input_schema`"
                )))
            }
        }
    }
    tally.tools(tools);
    Ok(())
}
