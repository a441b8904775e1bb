//! A tiny local HTTP server that records every request and answers with a
//! canned reply in the dialect of the path (`replies.rs`), to see exactly what
//! a real client sends and prove the agent harness without the gateway.
//! Plain std: one thread per connection, one request per connection
//! (`Connection: close`), so a reply is recorded before the client can exit.

use super::replies;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// One request as the recorder received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// Path with its query string, e.g. `/v1/messages?beta=true`.
    pub path: String,
    /// Header names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON (`Null` when empty or not JSON).
    pub body: Value,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::client::header_in(&self.headers, name)
    }
}

/// What the recorder answers.
#[derive(Clone)]
enum Answer {
    /// A successful reply carrying this text, shaped for the path's dialect.
    Text(String),
    /// This status with the dialect's error body, to every request.
    Status(u16),
}

pub struct Recorder {
    base: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Recorder {
    /// Serves `answer` as the assistant's text to every request.
    pub fn answering(answer: &str) -> Recorder {
        Self::start(Answer::Text(answer.to_string()))
    }

    /// Fails every request with `status` (in the path's error dialect).
    pub fn failing(status: u16) -> Recorder {
        Self::start(Answer::Status(status))
    }

    fn start(answer: Answer) -> Recorder {
        // Bound before this returns: a client can connect at once (no readiness wait).
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind recorder");
        let base = format!("http://{}", listener.local_addr().expect("recorder address"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (log, answer) = (log.clone(), answer.clone());
                std::thread::spawn(move || serve(stream, &log, &answer));
            }
        });
        Recorder { base, requests }
    }

    /// `http://127.0.0.1:<port>`, the origin to give a client.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn serve(stream: TcpStream, log: &Mutex<Vec<Recorded>>, answer: &Answer) {
    let Ok(request) = read_request(&stream) else { return };
    let (status, content_type, body) = match answer {
        Answer::Text(text) => replies::success(&request, text),
        Answer::Status(status) => replies::failure(&request, *status),
    };
    log.lock().unwrap_or_else(|p| p.into_inner()).push(request);
    let head = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        reason(status),
        body.len()
    );
    let mut stream = stream;
    let _ = stream.write_all(head.as_bytes()).and_then(|_| stream.write_all(body.as_bytes())).and_then(|_| stream.flush());
}

fn read_request(stream: &TcpStream) -> std::io::Result<Recorded> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
            break;
        }
        if let Some((name, value)) = line.trim_end().split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let header = |name: &str| crate::client::header_in(&headers, name);
    let mut raw = Vec::new();
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim(), 16).map_err(std::io::Error::other)?;
            let mut chunk = vec![0; size + 2]; // the chunk and its CRLF
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            raw.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        raw.resize(len, 0);
        reader.read_exact(&mut raw)?;
    }
    let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    Ok(Recorded { method, path, headers, body })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        529 => "Overloaded",
        _ => "Status",
    }
}
