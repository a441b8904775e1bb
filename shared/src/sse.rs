//! Server-sent events from the upstream: split the byte stream into events as
//! they arrive (forwarded immediately, never re-buffered), and meter them: the
//! final usage frame (OpenRouter's has a one-element `choices`, OpenAI's an empty
//! one), mid-stream error frames, delivered output and `[DONE]`.

use crate::usage::UpstreamUsage;
use serde_json::Value;

/// The largest single SSE event passed to a client (image-output models send
/// a whole base64 image in one event). A longer event is not buffered: it is
/// skipped and counted (`SseSplitter::oversized`), and the client is cut off.
pub const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// Splits bytes into complete events (each including its blank-line
/// terminator). Holds at most one partial event, of at most `MAX_EVENT_BYTES`
/// (terminator included).
pub struct SseSplitter {
    buf: Vec<u8>,
    /// Where the search for the end of the partial event resumes (bytes before
    /// it were searched already), so a large event costs linear time.
    scanned: usize,
    /// Inside an event longer than the maximum: its bytes are dropped.
    skipping: bool,
    oversized: u64,
    max_event: usize,
}

impl Default for SseSplitter {
    fn default() -> SseSplitter {
        SseSplitter::with_max_event(MAX_EVENT_BYTES)
    }
}

impl SseSplitter {
    pub fn with_max_event(max_event: usize) -> SseSplitter {
        SseSplitter { buf: Vec::new(), scanned: 0, skipping: false, oversized: 0, max_event }
    }

    pub fn push(&mut self, chunk: &[u8]) -> Vec<Vec<u8>> {
        self.buf.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(end) = find_event_end(&self.buf, self.scanned) {
            let event: Vec<u8> = self.buf.drain(..end).collect();
            self.scanned = 0;
            if std::mem::take(&mut self.skipping) {
                continue; // the end of an event already counted
            }
            if event.len() > self.max_event {
                self.oversized += 1;
            } else {
                events.push(event);
            }
        }
        // A terminator (≤ 4 bytes) may straddle this chunk and the next.
        let keep = self.buf.len().min(3);
        if self.buf.len() > self.max_event || (self.skipping && self.buf.len() > keep) {
            self.oversized += u64::from(!self.skipping);
            self.skipping = true;
            self.buf.drain(..self.buf.len() - keep);
        }
        self.scanned = self.buf.len() - keep;
        events
    }

    /// Events longer than the maximum seen so far (skipped, not returned).
    pub fn oversized(&self) -> u64 {
        self.oversized
    }

    /// Bytes of an unterminated final event, if the stream ended mid-event.
    pub fn finish(self) -> Option<Vec<u8>> {
        (!self.buf.is_empty() && !self.skipping).then_some(self.buf)
    }
}

/// Whether an event of `len` bytes may join a client's queue where `waiting`
/// bytes wait and the largest waiting event has `largest` bytes. The backlog
/// is bounded, not the event: events up to `limit` may back up to `limit` in
/// all (a client that stops reading is cut off there), and one event larger
/// than `limit` (up to `MAX_EVENT_BYTES`) waits on top of that. So a reading
/// client gets any event up to the maximum, and the queue never holds more
/// than `limit + MAX_EVENT_BYTES`.
pub fn queue_admits(waiting: usize, largest: usize, len: usize, limit: usize) -> bool {
    let large = largest.max(len);
    let allowance = if large > limit { large } else { 0 };
    len <= MAX_EVENT_BYTES && waiting + len <= limit + allowance
}

/// Index just past the first blank line (`\n\n`, `\r\n\r\n` or `\r\r`) that
/// starts at or after `from`.
fn find_event_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 1 < buf.len() {
        match (buf[i], buf[i + 1]) {
            (b'\n', b'\n') | (b'\r', b'\r') => return Some(i + 2),
            (b'\r', b'\n') if buf.get(i + 2..i + 4) == Some(b"\r\n") => return Some(i + 4),
            _ => i += 1,
        }
    }
    None
}

/// The event with an SSE `id:` field first (resumable streams: a client
/// that reconnects sends the last one it saw as `Last-Event-ID`).
pub fn with_event_id(event: &[u8], id: u64) -> Vec<u8> {
    let mut out = format!("id: {id}\n").into_bytes();
    out.extend_from_slice(event);
    out
}

/// The event id a reconnecting client sends (`Last-Event-ID`): a number our
/// streams gave, else none.
pub fn parse_event_id(value: &str) -> Option<u64> {
    value.trim().parse().ok()
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

/// Whether an event's data is chat's end of stream, `[DONE]`.
pub fn is_done(data: &str) -> bool {
    data.trim() == "[DONE]"
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
    /// Meters one parsed chunk; whether it carries an upstream error (the
    /// stream's dialect meter passes that one on in our words).
    pub fn observe_chunk(&mut self, chunk: &Value) -> bool {
        if self.generation_id.is_none() {
            self.generation_id = chunk.get("id").and_then(Value::as_str).map(str::to_string);
        }
        if let Some(u) = chunk.get("usage").and_then(UpstreamUsage::from_json) {
            self.usage = Some(u);
        }
        let error = chunk.get("error").filter(|e| !e.is_null());
        if let Some(err) = error {
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
        error.is_some()
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
    fn event_ids_go_first_and_parse_back() {
        let event = b"data: {\"a\":1}\n\n";
        let with_id = with_event_id(event, 7);
        assert_eq!(with_id, b"id: 7\ndata: {\"a\":1}\n\n".to_vec());
        assert_eq!(event_data(&with_id).as_deref(), Some("{\"a\":1}"));
        assert_eq!(parse_event_id(" 7 "), Some(7));
        assert_eq!(parse_event_id("abc"), None);
    }

    #[test]
    fn keeps_an_unterminated_tail() {
        let mut s = SseSplitter::default();
        assert!(s.push(b"data: {\"x\":").is_empty());
        assert_eq!(s.finish(), Some(b"data: {\"x\":".to_vec()));
    }

    #[test]
    fn a_large_event_in_small_chunks_passes_whole() {
        let event = format!("data: {{\"b64\":\"{}\"}}\n\n", "A".repeat(3 * 1024 * 1024));
        let stream = format!("{event}data: [DONE]\n\n");
        let mut s = SseSplitter::default();
        // 3 MiB in 1 KiB chunks: rescanning the whole buffer for every chunk would be quadratic.
        let events: Vec<Vec<u8>> = stream.as_bytes().chunks(1024).flat_map(|c| s.push(c)).collect();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0], event.as_bytes());
        assert_eq!(s.oversized(), 0);
    }

    #[test]
    fn an_event_beyond_the_maximum_is_skipped_and_counted_once() {
        let big = format!("data: {}\r\n\r\n", "x".repeat(100));
        let stream = format!(": ping\n\n{big}data: {{\"a\":1}}\n\n");
        for chunk in [1, 7, 50, stream.len()] {
            let mut s = SseSplitter::with_max_event(64);
            let events: Vec<Vec<u8>> = stream.as_bytes().chunks(chunk).flat_map(|c| s.push(c)).collect();
            assert_eq!(events, vec![b": ping\n\n".to_vec(), b"data: {\"a\":1}\n\n".to_vec()], "chunks of {chunk}");
            assert_eq!(s.oversized(), 1);
        }
        let mut s = SseSplitter::with_max_event(64);
        assert!(s.push(&big.as_bytes()[..90]).is_empty());
        assert_eq!(s.finish(), None, "a skipped tail is not an event");
    }

    #[test]
    fn the_queue_bounds_the_backlog_not_the_event() {
        const LIMIT: usize = 1024;
        // Ordinary events back up to the limit, then the client is cut off.
        assert!(queue_admits(1000, 10, 24, LIMIT));
        assert!(!queue_admits(1000, 10, 25, LIMIT));
        // One event beyond the limit passes, with a backlog behind it...
        assert!(queue_admits(0, 0, 3 * LIMIT, LIMIT));
        assert!(queue_admits(500, 100, 3 * LIMIT, LIMIT));
        assert!(queue_admits(3 * LIMIT + 1000, 3 * LIMIT, 24, LIMIT));
        assert!(!queue_admits(3 * LIMIT + 1000, 3 * LIMIT, 25, LIMIT));
        // ...but not a second one, nor one beyond the maximum.
        assert!(!queue_admits(3 * LIMIT, 3 * LIMIT, 2 * LIMIT, LIMIT));
        assert!(!queue_admits(0, 0, MAX_EVENT_BYTES + 1, LIMIT));
        assert!(queue_admits(0, 0, MAX_EVENT_BYTES, LIMIT));
    }
}
