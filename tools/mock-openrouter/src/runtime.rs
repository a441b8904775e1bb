//! Faults switched on at runtime for routes a test cannot steer per request:
//! the gateway fetches `/models` on its own (cron, cache refresh), so neither an
//! `X-Mock-Fault` header nor a prompt marker can reach it.
//!
//! `POST /__mock/faults {"models_status":503}` (or `{"models_empty":true}`,
//! `{"keys_status":500}`, `{"generation_status":404}`, `{"enforce_key_limits":true}`)
//! merges into the current switches, `GET` shows them, `DELETE` clears them.

use crate::util::{error_response, json_response};
use crate::{catalogue, faults, App};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Switches {
    /// `/models` answers with this status and an error envelope.
    #[serde(default)]
    pub models_status: Option<u16>,
    /// `/models` answers 200 with an empty `data` list.
    #[serde(default)]
    pub models_empty: bool,
    /// `GET`/`PATCH /keys/{hash}` (a key's usage and limit) answer with this status.
    #[serde(default)]
    pub keys_status: Option<u16>,
    /// `GET /generation` answers with this status (404: the record is not
    /// there, as while OpenRouter has not written it yet).
    #[serde(default)]
    pub generation_status: Option<u16>,
    /// Chat with a key this mock issued is refused 402 once the key's
    /// `limit` is spent (OpenRouter enforces key limits; off by default so
    /// that tests not about limits do not race the gateway's limit sync).
    #[serde(default)]
    pub enforce_key_limits: bool,
}

#[derive(Default)]
pub struct RuntimeFaults(Mutex<Switches>);

impl RuntimeFaults {
    pub fn get(&self) -> Switches {
        self.0.lock().unwrap().clone()
    }
}

/// `GET /models`, subject to the switches.
pub async fn models(State(app): State<Arc<App>>) -> Response {
    let switches = app.runtime.get();
    if let Some(status) = switches.models_status.filter(|s| (400..=599).contains(s)) {
        return error_response(status, faults::status_message(status), None);
    }
    if switches.models_empty {
        return json_response(StatusCode::OK, &json!({"data": [], "total_count": 0, "links": {"next": null}}));
    }
    json_response(StatusCode::OK, &catalogue::models_json())
}

/// The error `/keys/{hash}` answers with while `keys_status` is set.
pub fn keys_fault(app: &App) -> Option<Response> {
    let status = app.runtime.get().keys_status.filter(|s| (400..=599).contains(s))?;
    Some(error_response(status, faults::status_message(status), None))
}

/// The error `/generation` answers with while `generation_status` is set.
pub fn generation_fault(app: &App) -> Option<Response> {
    let status = app.runtime.get().generation_status.filter(|s| (400..=599).contains(s))?;
    let message = if status == 404 { "Generation not found" } else { faults::status_message(status) };
    Some(error_response(status, message, None))
}

/// `GET /__mock/faults`
pub async fn show(State(app): State<Arc<App>>) -> Response {
    json_response(StatusCode::OK, &app.runtime.get())
}

/// `POST /__mock/faults`: fields present in the body replace the current ones.
pub async fn set(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let patch: serde_json::Map<String, serde_json::Value> = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return error_response(400, &format!("body must be a JSON object: {e}"), None),
    };
    let mut guard = app.runtime.0.lock().unwrap();
    let mut merged = serde_json::to_value(&*guard).expect("switches serialise");
    for (k, v) in patch {
        merged[k] = v;
    }
    match serde_json::from_value::<Switches>(merged) {
        Ok(next) => {
            *guard = next.clone();
            json_response(StatusCode::OK, &next)
        }
        Err(e) => error_response(400, &format!("bad switch: {e}"), None),
    }
}

/// `DELETE /__mock/faults`
pub async fn clear(State(app): State<Arc<App>>) -> Response {
    *app.runtime.0.lock().unwrap() = Switches::default();
    json_response(StatusCode::OK, &Switches::default())
}
