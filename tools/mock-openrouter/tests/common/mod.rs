//! A deliberately tiny HTTP/1.1 client over std TcpStream: it lets tests see
//! exactly what went over the wire, including bodies cut short by a drop.

#![allow(dead_code)]

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub const MGMT: &str = "Bearer sk-or-v1-mgmt-dev-0000";
pub const USER: &str = "Bearer sk-or-v1-test-user";

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body ended properly (Content-Length reached, or chunked
    /// terminator seen). False when the server broke the connection.
    pub complete: bool,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("bad json ({e}): {}", self.text()))
    }
    /// SSE events in order: `Comment(text)` or `Data(payload)`.
    pub fn events(&self) -> Vec<Event> {
        parse_events(&self.text())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Comment(String),
    Data(String),
}

impl Event {
    pub fn json(&self) -> Value {
        match self {
            Event::Data(d) => {
                serde_json::from_str(d).unwrap_or_else(|e| panic!("bad frame ({e}): {d}"))
            }
            Event::Comment(c) => panic!("comment, not data: {c}"),
        }
    }
}

pub fn parse_events(text: &str) -> Vec<Event> {
    text.split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|b| match b.strip_prefix("data: ") {
            Some(d) => Event::Data(d.to_string()),
            None => Event::Comment(b.trim_start_matches(':').trim().to_string()),
        })
        .collect()
}

pub fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).expect("write request");
    s
}

pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut s = send(addr, method, path, headers, body);
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            // A reset is how an aborted connection may surface.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("read: {e}"),
        }
    }
    parse_reply(&raw)
}

pub fn get(addr: SocketAddr, path: &str, auth: Option<&str>) -> Reply {
    let h: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
    request(addr, "GET", path, &h, "")
}

pub fn chat(addr: SocketAddr, body: &Value, fault: Option<&str>) -> Reply {
    let mut h = vec![
        ("Authorization", USER),
        ("Content-Type", "application/json"),
    ];
    if let Some(f) = fault {
        h.push(("X-Mock-Fault", f));
    }
    request(
        addr,
        "POST",
        "/api/v1/chat/completions",
        &h,
        &body.to_string(),
    )
}

fn parse_reply(raw: &[u8]) -> Reply {
    let Some(head_end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Reply {
            status: 0,
            headers: vec![],
            body: vec![],
            complete: false,
        };
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[head_end + 4..];
    let find = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let (body, complete) = if find("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        dechunk(rest)
    } else if let Some(len) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
        (rest[..len.min(rest.len())].to_vec(), rest.len() >= len)
    } else {
        (rest.to_vec(), true)
    };
    Reply {
        status,
        headers,
        body,
        complete,
    }
}

fn dechunk(mut rest: &[u8]) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    loop {
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
            return (body, false);
        };
        let size_text = String::from_utf8_lossy(&rest[..eol]);
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
        else {
            return (body, false);
        };
        rest = &rest[eol + 2..];
        if size == 0 {
            return (body, true);
        }
        if rest.len() < size + 2 {
            body.extend_from_slice(&rest[..size.min(rest.len())]);
            return (body, false);
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// Request bodies and frame extraction shared by the chat test files.
pub fn req(model: &str, content: &str) -> Value {
    json!({ "model": model, "messages": [{ "role": "user", "content": content }] })
}

pub fn stream_req(content: &str) -> Value {
    json!({ "model": "openai/gpt-4o", "stream": true, "messages": [{ "role": "user", "content": content }] })
}

pub fn data_frames(r: &Reply) -> Vec<Value> {
    r.events()
        .iter()
        .filter(|e| matches!(e, Event::Data(d) if d != "[DONE]"))
        .map(Event::json)
        .collect()
}


/// A generation request in any dialect, keyed with `USER` as a bearer.
pub fn post_dialect(addr: SocketAddr, path: &str, body: &Value, fault: Option<&str>) -> Reply {
    let mut h = vec![("Authorization", USER), ("Content-Type", "application/json")];
    if let Some(f) = fault {
        h.push(("X-Mock-Fault", f));
    }
    request(addr, "POST", path, &h, &body.to_string())
}

/// Named SSE events (`event: name` + `data: json`) in order; comments and
/// unnamed `data:` frames are left out.
pub fn named_events(r: &Reply) -> Vec<(String, Value)> {
    r.text()
        .split("\n\n")
        .filter_map(|block| {
            let (name, data) = block.strip_prefix("event: ")?.split_once("\ndata: ")?;
            let json = serde_json::from_str(data).unwrap_or_else(|e| panic!("bad event ({e}): {data}"));
            Some((name.to_string(), json))
        })
        .collect()
}

pub fn event_names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(n, _)| n.as_str()).collect()
}

/// The recorded requests the mock lists for `query` (`contains=…&dialect=…`).
pub fn recorded(addr: SocketAddr, query: &str) -> Vec<Value> {
    let v = get(addr, &format!("/__mock/requests?{query}"), None).json();
    v["requests"].as_array().unwrap().clone()
}

/// Checks a dialect's reply to the system prompt "ab" and the user text
/// "hello world!" on openai/gpt-4o: 14 bytes -> 4 input tokens and 8 output
/// tokens, costing 4 * 0.0000025 + 8 * 0.00001 = 0.00001 + 0.00008, written
/// exactly, and what the same conversation costs through chat.
pub fn assert_priced_like_chat(addr: SocketAddr, r: &Reply) {
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    assert!(text.contains(r#""cost":0.00009,"is_byok":false"#), "{text}");
    assert!(text.contains(r#""upstream_inference_input_cost":0.00001,"upstream_inference_output_cost":0.00008}"#), "{text}");
    let usage = &r.json()["usage"];
    assert_eq!((usage["input_tokens"].as_u64(), usage["output_tokens"].as_u64()), (Some(4), Some(8)));
    assert_eq!(usage["cost_details"]["upstream_inference_cost"], usage["cost"]);
    let chat_body = json!({ "model": "openai/gpt-4o", "messages": [
        { "role": "system", "content": "ab" }, { "role": "user", "content": "hello world!" }] });
    assert_eq!(chat(addr, &chat_body, None).json()["usage"]["cost"], usage["cost"], "priced like chat");
}
