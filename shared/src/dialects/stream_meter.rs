//! What billing needs from a stream in any dialect, in the fields chat's
//! `StreamMeter` fills (the wallet reads them alike): the final usage, the
//! output delivered, the generation id, a mid-stream error, how it finished,
//! and the dialect's last event (`EventKind::Done`: held back so the bill
//! goes out before it, as chat's `[DONE]` is).
//!
//! Messages: `message_start` names the message (`msg_gen-…`) and carries the
//! input usage; `message_delta` carries the final, cumulative
//! `usage.output_tokens` (and OpenRouter's `cost`). Usage is taken only once
//! a `message_delta` reports it: `message_start` alone (a stream cut early)
//! knows nothing of the output, and billing it would under-charge.
//! `message_stop` ends the stream; `error` is a mid-stream error.
//!
//! Responses: `response.created` names the response (`resp_gen-…`);
//! `response.completed`, `response.incomplete` (the output ceiling cut it)
//! and `response.failed` end it and may carry usage; `error` is a
//! mid-stream error. Every event has a `sequence_number`, which the meter
//! follows so a frame the gateway adds continues the count.

use super::upstream_errors::{redact_upstream_error, rebuilt};
use super::Dialect;
use crate::sse::{event_data, is_done, EventKind, StreamMeter};
use serde_json::{Map, Value};

pub struct DialectMeter {
    dialect: Dialect,
    /// What was seen, in chat's meter's fields.
    pub seen: StreamMeter,
    /// Messages: the usage so far (`message_start`'s, overlaid by each
    /// `message_delta`'s), not billed until a `message_delta` reports.
    usage_so_far: Map<String, Value>,
    /// Responses: the last `sequence_number` seen, and the response's id.
    last_sequence: Option<u64>,
    response_id: Option<String>,
}

impl DialectMeter {
    pub fn new(dialect: Dialect) -> DialectMeter {
        DialectMeter { dialect, seen: StreamMeter::default(), usage_so_far: Map::new(), last_sequence: None, response_id: None }
    }

    /// The `sequence_number` an event the gateway adds to a Responses stream
    /// takes (0 before any), and the response id it belongs to.
    pub fn next_event(&self) -> (u64, Option<&str>) {
        (self.last_sequence.map_or(0, |n| n + 1), self.response_id.as_deref())
    }

    /// Meters `event` and returns it as it is passed on: an upstream
    /// error's own words replaced by ours (upstream_errors.rs) — the event
    /// parsed once for both.
    pub fn observe(&mut self, event: Vec<u8>) -> (EventKind, Vec<u8>) {
        let Some(data) = event_data(&event) else { return (EventKind::Comment, event) };
        if self.dialect == Dialect::Chat && is_done(&data) {
            self.seen.saw_done = true;
            return (EventKind::Done, event);
        }
        let Ok(mut value) = serde_json::from_str::<Value>(&data) else { return (EventKind::Chunk, event) };
        let seen = match self.dialect {
            Dialect::Chat => Seen { last: false, failed: self.seen.observe_chunk(&value) },
            Dialect::Messages => self.observe_messages(&value),
            Dialect::Responses => self.observe_responses(&value),
        };
        if seen.last {
            self.seen.saw_done = true;
        }
        let kind = if seen.last { EventKind::Done } else { EventKind::Chunk };
        match seen.failed && redact_upstream_error(self.dialect, &mut value) {
            true => (kind, rebuilt(&event, &value)),
            false => (kind, event),
        }
    }

    fn observe_messages(&mut self, event: &Value) -> Seen {
        let mut seen = Seen::default();
        match event.get("type").and_then(Value::as_str).unwrap_or_default() {
            "message_start" => {
                let message = event.get("message");
                self.note_id(message.and_then(|m| m.get("id")));
                if let Some(Value::Object(usage)) = message.and_then(|m| m.get("usage")) {
                    self.usage_so_far = usage.clone();
                }
            }
            "content_block_start" | "content_block_delta" => {
                let part = event.get("delta").or_else(|| event.get("content_block"));
                self.seen.output_bytes += ["text", "thinking", "partial_json"].iter().filter_map(|f| part?.get(*f)?.as_str()).map(str::len).sum::<usize>();
            }
            "message_delta" => {
                if let Some(reason) = event.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.seen.finish_reason = Some(reason.to_string());
                }
                if let Some(Value::Object(usage)) = event.get("usage") {
                    self.usage_so_far.extend(usage.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), v.clone())));
                    self.seen.usage = super::from_messages_usage(&Value::Object(self.usage_so_far.clone()));
                }
            }
            "error" => seen.failed = self.failed(event.pointer("/error/type")),
            "message_stop" => seen.last = true,
            _ => {}
        }
        seen
    }

    fn observe_responses(&mut self, event: &Value) -> Seen {
        let mut seen = Seen::default();
        let kind = event.get("type").and_then(Value::as_str).unwrap_or_default();
        if let Some(n) = event.get("sequence_number").and_then(Value::as_u64) {
            self.last_sequence = Some(self.last_sequence.map_or(n, |last| last.max(n)));
        }
        let response = event.get("response");
        if self.response_id.is_none() {
            self.response_id = response.and_then(|r| r.get("id")).and_then(Value::as_str).map(str::to_string);
            self.note_id(response.and_then(|r| r.get("id")));
        }
        match kind {
            "response.completed" | "response.incomplete" | "response.failed" => {
                let response = response.unwrap_or(&Value::Null);
                if let Some(usage) = response.get("usage").and_then(super::from_responses_usage) {
                    self.seen.usage = Some(usage);
                }
                let reason = response.pointer("/incomplete_details/reason").or_else(|| response.get("status"));
                self.seen.finish_reason = reason.and_then(Value::as_str).map(str::to_string);
                if kind == "response.failed" {
                    seen.failed = self.failed(response.pointer("/error/code"));
                }
                seen.last = true;
            }
            "error" => seen.failed = self.failed(event.get("code")),
            _ if kind.ends_with(".delta") => self.seen.output_bytes += event.get("delta").and_then(Value::as_str).map_or(0, str::len),
            _ => {}
        }
        seen
    }

    fn note_id(&mut self, id: Option<&Value>) {
        if self.seen.generation_id.is_none() {
            self.seen.generation_id = id.and_then(Value::as_str).map(|id| self.dialect.generation_id(id));
        }
    }

    /// Notes an upstream error with `code`; true, for the event's `Seen`.
    fn failed(&mut self, code: Option<&Value>) -> bool {
        let code = code.map(Value::to_string).unwrap_or_default();
        self.seen.error = Some(format!("upstream stream error {code}"));
        true
    }
}

/// What one event was: the stream's last (`EventKind::Done`), and whether
/// it carries an upstream error.
#[derive(Default)]
struct Seen {
    last: bool,
    failed: bool,
}
