use crate::dialects::{DialectMeter, Dialect};
use crate::sse::{EventKind, SseSplitter};
use serde_json::{json, Value};

fn sse(event: &str, data: Value) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}

/// Meters `stream` as the wallet would (split as it arrives, in chunks of
/// `chunk` bytes); the kinds of the events seen.
fn meter(dialect: Dialect, stream: &str, chunk: usize) -> (DialectMeter, Vec<EventKind>) {
    let mut splitter = SseSplitter::default();
    let mut meter = DialectMeter::new(dialect);
    let kinds = stream.as_bytes().chunks(chunk).flat_map(|c| splitter.push(c)).map(|e| meter.observe(e).0).collect();
    (meter, kinds)
}

/// A Messages stream as OpenRouter's (and the mock's) `/messages` sends it.
fn messages_stream(cut_after_start: bool) -> String {
    let mut s = sse("message_start", json!({"type": "message_start", "message": {"id": "msg_gen-17-ab", "type": "message", "role": "assistant",
        "content": [], "usage": {"input_tokens": 12, "output_tokens": 1, "cache_read_input_tokens": 30, "cache_creation_input_tokens": 0}}}));
    s += &sse("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}));
    s += &sse("ping", json!({"type": "ping"}));
    s += &sse("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hm"}}));
    s += &sse("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "tok0 "}}));
    s += &sse("content_block_delta", json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"a\":"}}));
    if cut_after_start {
        return s;
    }
    s += &sse("content_block_stop", json!({"type": "content_block_stop", "index": 0}));
    s += &sse("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": "max_tokens", "stop_sequence": null},
        "usage": {"output_tokens": 3, "cost": 0.0000123, "is_byok": false}}));
    s + &sse("message_stop", json!({"type": "message_stop"}))
}

#[test]
fn a_messages_stream_yields_its_usage_id_and_output_however_it_is_chunked() {
    for chunk in [1, 7, 64, 100_000] {
        let (m, kinds) = meter(Dialect::Messages, &messages_stream(false), chunk);
        assert_eq!(kinds.len(), 9);
        assert_eq!(kinds.last(), Some(&EventKind::Done), "message_stop is held back for the bill");
        let usage = m.seen.usage.clone().expect("usage from message_delta");
        assert_eq!((usage.prompt_tokens, usage.cached_tokens, usage.completion_tokens), (42, 30, 3), "input from message_start, output from message_delta");
        assert!(usage.cost.is_some());
        assert_eq!(m.seen.generation_id.as_deref(), Some("gen-17-ab"));
        assert_eq!((m.seen.output_bytes, m.seen.finish_reason.as_deref(), m.seen.saw_done), (2 + 5 + 5, Some("max_tokens"), true));
    }
}

#[test]
fn a_messages_stream_cut_before_its_final_usage_reports_none() {
    let (m, kinds) = meter(Dialect::Messages, &messages_stream(true), 50);
    assert!(kinds.iter().all(|k| *k == EventKind::Chunk));
    assert_eq!(m.seen.usage, None, "message_start's counts know nothing of the output");
    assert_eq!((m.seen.generation_id.as_deref(), m.seen.output_bytes), (Some("gen-17-ab"), 12), "the sweep and the estimate have what they need");
}

#[test]
fn a_messages_error_event_is_noted_after_the_usage_it_follows() {
    let stream = sse("message_start", json!({"type": "message_start", "message": {"id": "msg_gen-1", "usage": {"input_tokens": 5}}}))
        + &sse("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": null}, "usage": {"output_tokens": 2}}))
        + &sse("error", json!({"type": "error", "error": {"type": "api_error", "message": "Upstream provider error"}}));
    let (m, _) = meter(Dialect::Messages, &stream, 1000);
    assert_eq!(m.seen.usage.map(|u| (u.prompt_tokens, u.completion_tokens)), Some((5, 2)));
    assert_eq!(m.seen.error.as_deref(), Some("upstream stream error \"api_error\""));
    assert!(!m.seen.saw_done);
}

fn response(status: &str, usage: Option<Value>) -> Value {
    json!({"id": "resp_gen-9-cd", "object": "response", "status": status, "usage": usage,
        "incomplete_details": if status == "incomplete" { json!({"reason": "max_output_tokens"}) } else { Value::Null },
        "error": if status == "failed" { json!({"code": "server_error", "message": "Upstream provider error"}) } else { Value::Null }})
}

/// A Responses stream as OpenRouter's (and the mock's) `/responses` sends it.
fn responses_stream(last: &str, usage: Option<Value>) -> String {
    let status = last.trim_start_matches("response.");
    sse("response.created", json!({"type": "response.created", "sequence_number": 0, "response": response("in_progress", None)}))
        + &sse("response.in_progress", json!({"type": "response.in_progress", "sequence_number": 1, "response": response("in_progress", None)}))
        + &sse("response.output_item.added", json!({"type": "response.output_item.added", "sequence_number": 2, "output_index": 0, "item": {"id": "msg_gen-9-cd"}}))
        + &sse("response.reasoning_summary_text.delta", json!({"type": "response.reasoning_summary_text.delta", "sequence_number": 3, "delta": "why"}))
        + &sse("response.output_text.delta", json!({"type": "response.output_text.delta", "sequence_number": 4, "delta": "tok0 "}))
        + &sse("response.function_call_arguments.delta", json!({"type": "response.function_call_arguments.delta", "sequence_number": 5, "delta": "{}"}))
        + &sse("response.output_text.done", json!({"type": "response.output_text.done", "sequence_number": 6, "text": "tok0 "}))
        + &sse(last, json!({"type": last, "sequence_number": 7, "response": response(status, usage)}))
}

#[test]
fn a_responses_stream_ends_in_completed_incomplete_or_failed_each_with_usage() {
    let usage = json!({"input_tokens": 40, "input_tokens_details": {"cached_tokens": 8}, "output_tokens": 6, "output_tokens_details": {"reasoning_tokens": 2}, "cost": 0.00002});
    for (last, finish) in [("response.completed", "completed"), ("response.incomplete", "max_output_tokens"), ("response.failed", "failed")] {
        let (m, kinds) = meter(Dialect::Responses, &responses_stream(last, Some(usage.clone())), 33);
        assert_eq!(kinds.last(), Some(&EventKind::Done), "{last}");
        let u = m.seen.usage.clone().expect(last);
        assert_eq!((u.prompt_tokens, u.cached_tokens, u.completion_tokens, u.reasoning_tokens), (40, 8, 6, 2));
        assert_eq!((m.seen.generation_id.as_deref(), m.seen.output_bytes), (Some("gen-9-cd"), 3 + 5 + 2));
        assert_eq!(m.seen.finish_reason.as_deref(), Some(finish));
        assert_eq!(m.seen.error.is_some(), last == "response.failed");
        assert_eq!(m.next_event(), (8, Some("resp_gen-9-cd")), "an added event continues the sequence");
    }
    let (m, _) = meter(Dialect::Responses, &responses_stream("response.failed", None), 33);
    assert_eq!(m.seen.usage, None, "a failure without usage reports none");
}

#[test]
fn a_responses_error_event_is_noted() {
    let stream = sse("error", json!({"type": "error", "code": "rate_limit_exceeded", "message": "slow down", "sequence_number": 3}));
    let (m, kinds) = meter(Dialect::Responses, &stream, 10);
    assert_eq!((kinds, m.seen.error.as_deref()), (vec![EventKind::Chunk], Some("upstream stream error \"rate_limit_exceeded\"")));
    assert_eq!(m.next_event(), (4, None));
    assert_eq!(DialectMeter::new(Dialect::Responses).next_event(), (0, None));
}

#[test]
fn malformed_events_are_passed_on_and_record_nothing() {
    for dialect in [Dialect::Messages, Dialect::Responses] {
        let stream = ": OPENROUTER PROCESSING\n\ndata: not json\n\ndata: [1,2]\n\nevent: message_stop\ndata: {\"kind\":\"message_stop\"}\n\n\
            data: {\"type\":\"message_delta\",\"usage\":\"lots\"}\n\ndata: {\"type\":\"response.completed\",\"response\":\"done\"}\n\n\
            data: {\"type\":\"message_start\",\"message\":{\"id\":7}}\n\n";
        let (m, kinds) = meter(dialect, stream, 5);
        assert_eq!(kinds[0], EventKind::Comment);
        let done = usize::from(dialect == Dialect::Responses); // a completed event is the end, whatever it carries
        assert_eq!(kinds.iter().filter(|k| **k == EventKind::Done).count(), done, "{dialect:?}");
        assert_eq!((m.seen.usage, m.seen.generation_id, m.seen.output_bytes, m.seen.error), (None, None, 0, None), "{dialect:?}");
    }
}

#[test]
fn a_chat_stream_is_metered_by_chats_meter() {
    let stream = "data: {\"id\":\"gen-5\",\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n\
        data: {\"id\":\"gen-5\",\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n";
    let (m, kinds) = meter(Dialect::Chat, stream, 16);
    assert_eq!(kinds, [EventKind::Chunk, EventKind::Chunk, EventKind::Done]);
    assert_eq!((m.seen.generation_id.as_deref(), m.seen.output_bytes, m.seen.usage.map(|u| u.prompt_tokens)), (Some("gen-5"), 2, Some(3)));
}

/// Chat's events, metered as the pump meters them (one event at a time).
fn chat(frames: &[&str]) -> DialectMeter {
    let mut m = DialectMeter::new(Dialect::Chat);
    for f in frames {
        m.observe(f.as_bytes().to_vec());
    }
    m
}

#[test]
fn chat_reads_openrouter_usage_frame_with_one_choice() {
    let m = chat(&[
        ": OPENROUTER PROCESSING\n\n",
        "data: {\"id\":\"gen-1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"tok0 \"}}]}\n\n",
        "data: {\"id\":\"gen-1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"cost\":0.00001}}\n\n",
        "data: [DONE]\n\n",
    ]).seen;
    assert_eq!(m.usage.as_ref().unwrap().completion_tokens, 1);
    assert_eq!(m.output_bytes, 5);
    assert_eq!(m.generation_id.as_deref(), Some("gen-1"));
    assert_eq!(m.finish_reason.as_deref(), Some("stop"));
    assert!(m.saw_done && m.error.is_none());
}

#[test]
fn chat_reads_openai_usage_frame_with_no_choices() {
    let m = chat(&["data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\n"]).seen;
    assert_eq!(m.usage.unwrap().completion_tokens, 2);
}

#[test]
fn chat_notes_mid_stream_errors_but_not_a_null_one() {
    let m = chat(&["data: {\"error\":{\"code\":502,\"message\":\"x\"},\"choices\":[{\"delta\":{},\"finish_reason\":\"error\"}]}\n\n"]).seen;
    assert!(m.error.is_some() && m.usage.is_none() && !m.saw_done);
    // Some servers send `"error": null` on every chunk: not an error, passed on as sent.
    let fine = b"data: {\"id\":\"gen-1\",\"error\":null,\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n".to_vec();
    let mut m = DialectMeter::new(Dialect::Chat);
    assert_eq!(m.observe(fine.clone()), (EventKind::Chunk, fine));
    assert!(m.seen.error.is_none());
}

#[test]
fn chat_classifies_events() {
    let mut m = DialectMeter::new(Dialect::Chat);
    assert_eq!(m.observe(b": ping\n\n".to_vec()).0, EventKind::Comment);
    assert_eq!(m.observe(b"data: [DONE]\n\n".to_vec()).0, EventKind::Done);
    assert_eq!(m.observe(b"data: {}\n\n".to_vec()).0, EventKind::Chunk);
}
