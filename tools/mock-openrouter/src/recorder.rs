//! Request log for tests: every non-`/__mock` request is kept (raw body
//! included) so a test can assert what the gateway actually sent upstream,
//! and on which path: a generation request names its dialect (`chat`,
//! `messages`, `responses`), and the headers a dialect's upstream reads
//! (`x-api-key`, `anthropic-version`, `anthropic-beta`) are kept beside
//! `Authorization`. `GET /__mock/requests?contains=…&dialect=…` filters.

use crate::generate::Dialect;
use crate::util::{json_response, now_ms};
use crate::App;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;
use serde_json::json;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Bounded so a long-running dev instance doesn't grow without limit.
const MAX_KEPT: usize = 10_000;
/// Request headers kept besides `Authorization`: what the Anthropic dialect's
/// clients send and a gateway passes on.
const KEPT_HEADERS: &[&str] = &["x-api-key", "anthropic-version", "anthropic-beta"];

#[derive(Clone, Serialize)]
pub struct RecordedRequest {
    pub method: String,
    /// Path including any query string, as received (e.g. `/api/v1/models`).
    pub path: String,
    pub authorization: Option<String>,
    /// `chat`, `messages` or `responses` for a generation request, else null.
    pub dialect: Option<&'static str>,
    /// The `KEPT_HEADERS` present, by lower-case name.
    pub headers: BTreeMap<&'static str, String>,
    pub body: String,
    pub received_at_ms: u64,
}

#[derive(Default)]
pub struct Recorder {
    requests: Mutex<VecDeque<RecordedRequest>>,
}

impl Recorder {
    pub fn record(&self, method: &str, path: &str, dialect: Option<Dialect>, headers: &HeaderMap, body: &[u8]) {
        let text = |name| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let entry = RecordedRequest {
            method: method.to_string(),
            path: path.to_string(),
            authorization: text(header::AUTHORIZATION.as_str()),
            dialect: dialect.map(Dialect::name),
            headers: KEPT_HEADERS.iter().filter_map(|h| Some((*h, text(h)?))).collect(),
            body: String::from_utf8_lossy(body).into_owned(),
            received_at_ms: now_ms(),
        };
        let mut q = self.requests.lock().unwrap();
        if q.len() == MAX_KEPT {
            q.pop_front();
        }
        q.push_back(entry);
    }

    pub fn matching(&self, needle: Option<&str>, dialect: Option<&str>) -> Vec<RecordedRequest> {
        let q = self.requests.lock().unwrap();
        q.iter()
            .filter(|r| needle.is_none_or(|n| r.body.contains(n) || r.path.contains(n)))
            .filter(|r| dialect.is_none_or(|d| r.dialect == Some(d)))
            .cloned()
            .collect()
    }

    pub fn clear(&self) -> usize {
        let mut q = self.requests.lock().unwrap();
        let n = q.len();
        q.clear();
        n
    }
}

/// `GET /__mock/requests?contains=<substring>&dialect=<chat|messages|responses>`
pub async fn list(
    State(app): State<Arc<App>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let requests = app.recorder.matching(q.get("contains").map(String::as_str), q.get("dialect").map(String::as_str));
    json_response(
        StatusCode::OK,
        &json!({ "count": requests.len(), "requests": requests }),
    )
}

/// `DELETE /__mock/requests`
pub async fn clear(State(app): State<Arc<App>>) -> Response {
    let n = app.recorder.clear();
    json_response(StatusCode::OK, &json!({ "cleared": n }))
}
