//! Server-sent events from the upstream: split the byte stream into events as
//! they arrive (forwarded immediately, never re-buffered), and meter them: the
//! final usage frame (OpenRouter's has a one-element `choices`, OpenAI's an empty
//! one), mid-stream error frames, delivered output and `[DONE]`.

use crate::usage::UpstreamUsage;
use serde_json::Value;

/// Splits bytes into complete events (each including its blank-line terminator).
#[derive(Default)]
pub struct SseSplitter {
    buf: Vec<u8>,
}

impl SseSplitter {
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Vec<u8>> {
        self.buf.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(end) = find_event_end(&self.buf) {
            events.push(self.buf.drain(..end).collect());
        }
        events
    }

    /// Bytes of an unterminated final event, if the stream ended mid-event.
    pub fn finish(self) -> Option<Vec<u8>> {
        (!self.buf.is_empty()).then_some(self.buf)
    }
}

/// Index just past the first blank line (`\n\n`, `\r\n\r\n` or `\r\r`).
fn find_event_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i + 1 < buf.len() {
        match (buf[i], buf[i + 1]) {
            (b'\n', b'\n') | (b'\r', b'\r') => return Some(i + 2),
            (b'\r', b'\n') if buf.get(i + 2..i + 4) == Some(b"\r\n") => return Some(i + 4),
            _ => i += 1,
        }
    }
    None
}

/// The `data:` payload of an event (lines joined by `\n`), or None for comments.
pub fn event_data(event: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(event).ok()?;
    let mut data: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("data:") {
            let rest = rest.strip_prefix(' ').unwrap_or(rest);
            match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(rest);
                }
                None => data = Some(rest.to_string()),
            }
        }
    }
    data
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// Keep-alive comment or an event without data.
    Comment,
    Chunk,
    Done,
}

/// Accumulates what billing needs from a stream.
#[derive(Default, Debug)]
pub struct StreamMeter {
    pub usage: Option<UpstreamUsage>,
    pub output_bytes: usize,
    pub error: Option<String>,
    pub generation_id: Option<String>,
    pub finish_reason: Option<String>,
    pub saw_done: bool,
}

impl StreamMeter {
    pub fn observe(&mut self, event: &[u8]) -> EventKind {
        let Some(data) = event_data(event) else {
            return EventKind::Comment;
        };
        if data.trim() == "[DONE]" {
            self.saw_done = true;
            return EventKind::Done;
        }
        let Ok(chunk) = serde_json::from_str::<Value>(&data) else {
            return EventKind::Chunk;
        };
        if self.generation_id.is_none() {
            self.generation_id = chunk.get("id").and_then(Value::as_str).map(str::to_string);
        }
        if let Some(u) = chunk.get("usage").and_then(UpstreamUsage::from_json) {
            self.usage = Some(u);
        }
        if let Some(err) = chunk.get("error") {
            let code = err.get("code").map(Value::to_string).unwrap_or_default();
            self.error = Some(format!("upstream stream error {code}"));
        }
        for choice in chunk.get("choices").and_then(Value::as_array).into_iter().flatten() {
            let delta = choice.get("delta");
            for field in ["content", "reasoning"] {
                if let Some(s) = delta.and_then(|d| d.get(field)).and_then(Value::as_str) {
                    self.output_bytes += s.len();
                }
            }
            if let Some(calls) = delta.and_then(|d| d.get("tool_calls")) {
                self.output_bytes += calls.to_string().len();
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                self.finish_reason = Some(reason.to_string());
            }
        }
        EventKind::Chunk
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_across_arbitrary_chunk_boundaries() {
        let stream = b": OPENROUTER PROCESSING\n\ndata: {\"a\":1}\n\ndata: {\"b\":2}\r\n\r\ndata: [DONE]\n\n";
        for cut in 1..stream.len() {
            let mut s = SseSplitter::default();
            let mut events = s.push(&stream[..cut]);
            events.extend(s.push(&stream[cut..]));
            assert_eq!(events.len(), 4, "cut at {cut}");
            assert_eq!(events.concat(), stream.to_vec());
            assert!(s.finish().is_none());
        }
    }

    #[test]
    fn keeps_an_unterminated_tail() {
        let mut s = SseSplitter::default();
        assert!(s.push(b"data: {\"x\":").is_empty());
        assert_eq!(s.finish(), Some(b"data: {\"x\":".to_vec()));
    }

    fn meter(frames: &[&str]) -> StreamMeter {
        let mut m = StreamMeter::default();
        for f in frames {
            m.observe(f.as_bytes());
        }
        m
    }

    #[test]
    fn reads_openrouter_usage_frame_with_one_choice() {
        let m = meter(&[
            ": OPENROUTER PROCESSING\n\n",
            "data: {\"id\":\"gen-1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"tok0 \"}}]}\n\n",
            "data: {\"id\":\"gen-1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"cost\":0.00001}}\n\n",
            "data: [DONE]\n\n",
        ]);
        assert_eq!(m.usage.as_ref().unwrap().completion_tokens, 1);
        assert_eq!(m.output_bytes, 5);
        assert_eq!(m.generation_id.as_deref(), Some("gen-1"));
        assert_eq!(m.finish_reason.as_deref(), Some("stop"));
        assert!(m.saw_done && m.error.is_none());
    }

    #[test]
    fn reads_openai_usage_frame_with_no_choices() {
        let m = meter(&["data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\n"]);
        assert_eq!(m.usage.unwrap().completion_tokens, 2);
    }

    #[test]
    fn notes_mid_stream_errors() {
        let m = meter(&["data: {\"error\":{\"code\":502,\"message\":\"x\"},\"choices\":[{\"delta\":{},\"finish_reason\":\"error\"}]}\n\n"]);
        assert!(m.error.is_some() && m.usage.is_none() && !m.saw_done);
    }

    #[test]
    fn classifies_events() {
        let mut m = StreamMeter::default();
        assert_eq!(m.observe(b": ping\n\n"), EventKind::Comment);
        assert_eq!(m.observe(b"data: [DONE]\n\n"), EventKind::Done);
        assert_eq!(m.observe(b"data: {}\n\n"), EventKind::Chunk);
    }
}
