//! `GET /generation?id=`: the after-the-fact audit record a gateway uses to
//! learn the final cost when it never saw a usage frame (cancelled or broken
//! streams). Records are written when a chat request finishes.

use crate::money::Usd;
use crate::util::{bearer, error_response, json_response, unauthorized};
use crate::App;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug, Serialize)]
pub struct Generation {
    pub id: String,
    pub model: String,
    pub created_at: String,
    pub provider_name: &'static str,
    pub origin: String,
    pub streamed: bool,
    /// The caller went away (or the connection broke) before the end.
    pub cancelled: bool,
    pub finish_reason: String,
    pub native_finish_reason: String,
    pub tokens_prompt: u64,
    pub tokens_completion: u64,
    pub native_tokens_prompt: u64,
    pub native_tokens_completion: u64,
    pub native_tokens_reasoning: u64,
    /// What OpenRouter charged (for BYOK: only the fee).
    pub total_cost: Usd,
    pub usage: Usd,
    pub upstream_inference_cost: Usd,
    pub is_byok: bool,
    pub cache_discount: Option<Usd>,
    pub latency: u64,
    pub generation_time: u64,
}

#[derive(Default)]
pub struct Generations {
    by_id: Mutex<HashMap<String, Generation>>,
}

impl Generations {
    pub fn insert(&self, g: Generation) {
        self.by_id.lock().unwrap().insert(g.id.clone(), g);
    }

    pub fn get(&self, id: &str) -> Option<Generation> {
        self.by_id.lock().unwrap().get(id).cloned()
    }
}

#[derive(Serialize)]
struct Data {
    data: Generation,
}

/// `GET /generation?id=gen-...`
pub async fn get(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if bearer(&headers).is_none() {
        return unauthorized();
    }
    let Some(id) = q.get("id") else {
        return error_response(400, "id is required", None);
    };
    if let Some(fault) = crate::runtime::generation_fault(&app) {
        return fault;
    }
    match app.generations.get(id) {
        Some(g) => json_response(StatusCode::OK, &Data { data: g }),
        None => error_response(404, &format!("Generation {id} not found"), None),
    }
}
