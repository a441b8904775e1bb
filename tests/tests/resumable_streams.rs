//! Resumable streams: every data event carries an SSE `id:`; a client that
//! lost its connection reattaches with `GET /v1/chat/completions/{id}/stream`
//! and `Last-Event-ID` and gets the rest, live or (for a while) after the end,
//! from the one exchange: one hold, one settlement, whatever the readers.

use integration_tests::client::{send, sse_data, sse_id};
use integration_tests::{marker, start, SseReader, Stack, TestUser};
use serde_json::{json, Value};
use std::sync::OnceLock;

/// Streams keep their last 4 KiB here (default 1 MiB), so the limit is reachable.
fn stack() -> &'static Stack {
    static S: OnceLock<Stack> = OnceLock::new();
    S.get_or_init(|| start(&[("STREAM_REPLAY_BYTES", "4096")]))
}

fn slow_stream(s: &Stack, u: &TestUser, m: &str, tokens: u32) -> SseReader {
    let body = json!({"model": "openai/gpt-4o", "stream": true, "max_tokens": tokens,
        "messages": [{"role": "user", "content": format!("{m} [[mock:chunk_delay_ms=100,tokens={tokens}]]")}]});
    let r = s.stream(&u.key, &body);
    assert_eq!(r.status, 200);
    r
}

fn request_id(r: &SseReader) -> String {
    r.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("X-Dexto-Request-ID")).expect("request id").1.clone()
}

fn reattach(s: &Stack, key: &str, request_id: &str, last_event_id: Option<u64>) -> SseReader {
    let auth = format!("Bearer {key}");
    let last = last_event_id.map(|n| n.to_string());
    let mut headers = vec![("Authorization", auth.as_str())];
    if let Some(l) = &last {
        headers.push(("Last-Event-ID", l.as_str()));
    }
    SseReader::get(&format!("{}/v1/chat/completions/{request_id}/stream", s.base), &headers)
}

/// The data events (id, data) of a collected stream, and whether its bill and `[DONE]` came.
fn data_events(events: &[(String, std::time::Duration)]) -> Vec<(u64, String)> {
    events.iter().filter_map(|(e, _)| Some((sse_id(e)?, sse_data(e)?.to_string()))).collect()
}

fn ended_with_bill(events: &[(String, std::time::Duration)]) -> bool {
    let n = events.len();
    n >= 2 && events[n - 2].0.starts_with(": dexto-cost usd=") && sse_data(&events[n - 1].0) == Some("[DONE]")
}

fn settled_once(s: &Stack, u: &TestUser, m: &str) -> Value {
    let user = s.eventually_user(&u.id, "the stream's one settlement", |v| v["usage_totals"]["requests"] == 1 && v["open_holds"] == json!([]));
    assert_eq!(s.upstream_calls(m), 1, "one upstream call");
    assert_eq!(user["recent_usage"].as_array().map(Vec::len), Some(1), "one usage row");
    user
}

#[test]
fn a_client_that_lost_its_connection_gets_the_rest_from_where_it_was() {
    let s = stack();
    let u = s.new_user("1");
    let m = marker("resume");
    let mut first = slow_stream(s, &u, &m, 8);
    let id = request_id(&first);
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let (event, _) = first.next_event().expect("an event");
        if let (Some(n), Some(_)) = (sse_id(&event), sse_data(&event)) {
            seen.push(n);
        }
    }
    assert_eq!(seen, [1, 2], "data events are numbered from 1");
    drop(first); // the connection is lost

    let rest = reattach(s, &u.key, &id, Some(2));
    assert_eq!(rest.status, 200);
    assert_eq!(request_id(&rest), id);
    let events = rest.collect();
    let ids: Vec<u64> = data_events(&events).iter().map(|(n, _)| *n).collect();
    assert_eq!(ids.first(), Some(&3), "the rest starts after the last event seen: {ids:?}");
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "no event missing or repeated: {ids:?}");
    let text: String = data_events(&events).iter().filter_map(|(_, d)| serde_json::from_str::<Value>(d).ok()?.pointer("/choices/0/delta/content")?.as_str().map(String::from)).collect();
    assert!(text.contains("tok7") && !text.contains("tok0"), "{text}");
    assert!(ended_with_bill(&events), "{events:?}");
    let user = settled_once(s, &u, &m);
    assert_eq!(user["recent_usage"][0]["completion_tokens"], 8);
}

#[test]
fn an_ended_stream_can_be_read_again_and_parallel_readers_see_the_same_events() {
    let s = stack();
    let u = s.new_user("1");
    let m = marker("again");
    let original = slow_stream(s, &u, &m, 4);
    let id = request_id(&original);
    // Two more readers from the start while it runs, each on its own connection.
    let readers: Vec<_> = (0..2).map(|_| std::thread::spawn({
        let (key, id) = (u.key.clone(), id.clone());
        move || reattach(stack(), &key, &id, None).collect()
    })).collect();
    let mine = data_events(&original.collect());
    for r in readers {
        let theirs = r.join().expect("reader");
        assert_eq!(data_events(&theirs), mine, "a parallel reader sees the same events");
        assert!(ended_with_bill(&theirs));
    }
    // After the end: the whole stream again, or only what follows an id.
    let again = reattach(s, &u.key, &id, None).collect();
    assert_eq!(data_events(&again), mine);
    let last = mine.last().expect("events").0;
    let tail = reattach(s, &u.key, &id, Some(last)).collect();
    assert!(data_events(&tail).is_empty(), "nothing after the last event: {tail:?}");
    settled_once(s, &u, &m);
}

#[test]
fn only_the_user_who_started_a_stream_can_reattach() {
    let s = stack();
    let owner = s.new_user("1");
    let other = s.new_user("1");
    let m = marker("mine");
    let id = {
        let r = slow_stream(s, &owner, &m, 2);
        let id = request_id(&r);
        r.collect();
        id
    };
    let url = format!("{}/v1/chat/completions/{id}/stream", s.base);
    let theirs = send("GET", &url, &[("Authorization", &format!("Bearer {}", other.key))], None);
    assert_eq!(theirs.status, 404, "{}", theirs.body);
    assert_eq!(theirs.json()["error"]["code"], "not_found");
    let nobody = send("GET", &url, &[], None);
    assert_eq!(nobody.status, 401);
    let unknown = send("GET", &format!("{}/v1/chat/completions/req_000000000000000000000000/stream", s.base), &[("Authorization", &format!("Bearer {}", owner.key))], None);
    assert_eq!(unknown.status, 404);
    let bad = send("GET", &url, &[("Authorization", &format!("Bearer {}", owner.key)), ("Last-Event-ID", "yesterday")], None);
    assert_eq!(bad.status, 400, "{}", bad.body);
    settled_once(s, &owner, &m);
}

#[test]
fn events_past_the_replay_limit_are_refused_and_the_rest_still_served() {
    let s = stack();
    let u = s.new_user("1");
    let m = marker("limit");
    // 40 events of about 200 bytes: more than the 4 KiB kept.
    let body = json!({"model": "openai/gpt-4o", "stream": true, "max_tokens": 40,
        "messages": [{"role": "user", "content": format!("{m} [[mock:tokens=40]]")}]});
    let r = s.stream(&u.key, &body);
    let id = request_id(&r);
    let all = data_events(&r.collect());
    let from_start = send("GET", &format!("{}/v1/chat/completions/{id}/stream", s.base), &[("Authorization", &format!("Bearer {}", u.key))], None);
    assert_eq!(from_start.status, 409, "{}", from_start.body);
    let message = from_start.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("no longer kept") && message.contains("send the request again"), "{message}");
    // The last few events are still kept.
    let near_end = all[all.len() - 3].0;
    let tail = reattach(s, &u.key, &id, Some(near_end)).collect();
    assert_eq!(data_events(&tail), all[all.len() - 2..].to_vec());
    assert!(ended_with_bill(&tail));
    settled_once(s, &u, &m);
}

#[test]
fn messages_and_responses_streams_resume_in_their_own_dialect() {
    let s = stack();
    let u = s.new_user("1");
    let auth = format!("Bearer {}", u.key);
    let open = |path: &str, body: Value| {
        let r = SseReader::open(&format!("{}{path}", s.base), &[("Authorization", &auth), ("Content-Type", "application/json")], body.to_string().as_bytes());
        assert_eq!(r.status, 200, "{path}");
        r
    };
    let haiku = "anthropic/claude-haiku-4.5";
    // Messages: by our request id, after an event id.
    let r = open("/v1/messages", json!({"model": haiku, "max_tokens": 4, "stream": true, "messages": [{"role": "user", "content": "[[mock:chunk_delay_ms=50]]"}]}));
    let id = request_id(&r);
    let all = data_events(&r.collect());
    let rest = SseReader::get(&format!("{}/v1/messages/{id}/stream", s.base), &[("Authorization", &auth), ("Last-Event-ID", &all[1].0.to_string())]).collect();
    assert_eq!(data_events(&rest), all[2..].to_vec());
    let last: Value = serde_json::from_str(sse_data(&rest.last().unwrap().0).unwrap()).unwrap();
    assert_eq!(last["type"], "message_stop");

    // Responses: OpenAI's contract, by the response id and a sequence number.
    let r = open("/v1/responses", json!({"model": haiku, "max_output_tokens": 4, "stream": true, "input": "[[mock:chunk_delay_ms=50]]"}));
    let all = data_events(&r.collect());
    let created: Value = serde_json::from_str(&all[0].1).unwrap();
    let response_id = created["response"]["id"].as_str().expect("response id").to_string();
    let seq = |d: &str| serde_json::from_str::<Value>(d).unwrap()["sequence_number"].as_u64().unwrap();
    let after = seq(&all[2].1);
    let rest = SseReader::get(&format!("{}/v1/responses/{response_id}?stream=true&starting_after={after}", s.base), &[("Authorization", &auth)]).collect();
    let resumed: Vec<u64> = data_events(&rest).iter().map(|(_, d)| seq(d)).collect();
    assert_eq!(resumed.first(), Some(&(after + 1)), "{resumed:?}");
    assert_eq!(data_events(&rest), all[3..].to_vec());
    // A reattach refused in Anthropic's envelope.
    let gone = send("GET", &format!("{}/v1/messages/req_000000000000000000000000/stream", s.base), &[("x-api-key", &u.key)], None);
    assert_eq!((gone.status, gone.json()["error"]["type"].as_str()), (404, Some("not_found_error")), "{}", gone.body);
}
