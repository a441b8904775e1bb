//! A small blocking HTTP client over ureq, tuned for assertions: never treats
//! a status as an error, exposes headers, and can read SSE event by event.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::time::{Duration, Instant};

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .new_agent()
}

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// The first header called `name` (any case).
pub(crate) fn header_in<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

fn headers_of(resp: &ureq::http::Response<ureq::Body>) -> Vec<(String, String)> {
    resp.headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string())).collect()
}

/// Sends a request with a raw body; `None` body means GET.
pub fn send(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> HttpResponse {
    let mut resp = start(method, url, headers, body);
    let status = resp.status().as_u16();
    let headers = headers_of(&resp);
    let body = resp.body_mut().with_config().limit(64 * 1024 * 1024).read_to_string().unwrap_or_default();
    HttpResponse { status, headers, body }
}

fn start(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> ureq::http::Response<ureq::Body> {
    let agent = agent();
    let result = match (method, body) {
        ("GET" | "DELETE" | "OPTIONS", _) => {
            let mut req = match method {
                "GET" => agent.get(url),
                "DELETE" => agent.delete(url),
                _ => agent.options(url),
            };
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            req.call()
        }
        (_, body) => {
            let mut req = match method {
                "POST" => agent.post(url),
                "PATCH" => agent.patch(url),
                "PUT" => agent.put(url),
                other => panic!("unsupported method {other}"),
            };
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            req.send(body.unwrap_or(b""))
        }
    };
    result.unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

/// Reads an SSE response event by event, with the time each one arrived.
pub struct SseReader {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    reader: BufReader<Box<dyn Read + Send>>,
    started: Instant,
}

impl SseReader {
    pub fn open(url: &str, headers: &[(&str, &str)], body: &[u8]) -> SseReader {
        SseReader::request("POST", url, headers, Some(body))
    }

    /// A stream fetched with GET (reattaching to a stream).
    pub fn get(url: &str, headers: &[(&str, &str)]) -> SseReader {
        SseReader::request("GET", url, headers, None)
    }

    fn request(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> SseReader {
        let started = Instant::now();
        let resp = start(method, url, headers, body);
        let status = resp.status().as_u16();
        let headers = headers_of(&resp);
        let reader: Box<dyn Read + Send> = Box::new(resp.into_body().into_reader());
        SseReader { status, headers, reader: BufReader::new(reader), started }
    }

    /// The next event (lines up to a blank line) and when it arrived; None at EOF.
    pub fn next_event(&mut self) -> Option<(String, Duration)> {
        let mut event = String::new();
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return (!event.is_empty()).then(|| (event, self.started.elapsed())),
                Ok(_) => {}
            }
            if line.trim_end_matches(['\r', '\n']).is_empty() {
                if !event.is_empty() {
                    return Some((event, self.started.elapsed()));
                }
            } else {
                event.push_str(&line);
            }
        }
    }

    pub fn collect(mut self) -> Vec<(String, Duration)> {
        let mut all = Vec::new();
        while let Some(e) = self.next_event() {
            all.push(e);
        }
        all
    }
}

/// The `data:` field of an SSE event (as `SseReader` returns it), if any.
pub fn sse_data(event: &str) -> Option<&str> {
    event.lines().find_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
}

/// The `id:` field of an SSE event, if any.
pub fn sse_id(event: &str) -> Option<u64> {
    event.lines().find_map(|l| l.strip_prefix("id: ")).and_then(|v| v.trim().parse().ok())
}
