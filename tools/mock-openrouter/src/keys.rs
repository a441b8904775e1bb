//! The provisioning ("management") API: per-user keys (kept by
//! `key_store.rs`), plus `GET /key` and `GET /credits`. Usage charged by chat
//! requests made with a mock-issued key is added to that key so limit
//! bookkeeping can be tested.

use crate::key_store::KeyRecord;
use crate::money::Usd;
use crate::util::{bearer, error_response, iso8601, json_response, now_ms, unauthorized};
use crate::App;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

const PAGE: usize = 100;

/// The Key object exactly as OpenRouter returns it. The mock never rolls
/// usage windows, so daily/weekly/monthly equal the all-time totals.
#[derive(Serialize)]
struct KeyView<'a> {
    hash: &'a str,
    name: &'a str,
    label: &'a str,
    disabled: bool,
    limit: Option<Usd>,
    limit_remaining: Option<Usd>,
    limit_reset: Option<&'a str>,
    include_byok_in_limit: bool,
    usage: Usd,
    usage_daily: Usd,
    usage_weekly: Usd,
    usage_monthly: Usd,
    byok_usage: Usd,
    byok_usage_daily: Usd,
    byok_usage_weekly: Usd,
    byok_usage_monthly: Usd,
    created_at: &'a str,
    updated_at: Option<&'a str>,
    /// Only in `GET /key` answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    is_free_tier: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_management_key: Option<bool>,
}

/// Typed wrappers rather than `json!`: building a `Value` would turn exact
/// `Usd` amounts back into floats.
#[derive(Serialize)]
struct Data<T> {
    data: T,
}

#[derive(Serialize)]
struct Created<'a> {
    data: KeyView<'a>,
    key: &'a str,
}

impl KeyRecord {
    /// Whether the key has a `limit` and nothing of it remains.
    pub(crate) fn spent_out(&self) -> bool {
        self.view().limit_remaining.is_some_and(|r| r <= Usd::ZERO)
    }

    fn view(&self) -> KeyView<'_> {
        let spent = if self.include_byok_in_limit {
            self.usage + self.byok_usage
        } else {
            self.usage
        };
        KeyView {
            hash: &self.hash,
            name: &self.name,
            label: &self.label,
            disabled: self.disabled,
            limit: self.limit,
            limit_remaining: self.limit.map(|l| (l - spent).max(Usd::ZERO)),
            limit_reset: self.limit_reset.as_deref(),
            include_byok_in_limit: self.include_byok_in_limit,
            usage: self.usage,
            usage_daily: self.usage,
            usage_weekly: self.usage,
            usage_monthly: self.usage,
            byok_usage: self.byok_usage,
            byok_usage_daily: self.byok_usage,
            byok_usage_weekly: self.byok_usage,
            byok_usage_monthly: self.byok_usage,
            created_at: &self.created_at,
            updated_at: self.updated_at.as_deref(),
            is_free_tier: None,
            is_management_key: None,
        }
    }
}

fn not_found() -> Response {
    error_response(404, "Key not found", None)
}

/// Management endpoints need the management key: 401 without any bearer,
/// 403 with a regular one.
fn require_management(app: &App, headers: &HeaderMap) -> Result<(), Response> {
    match bearer(headers) {
        None => Err(unauthorized()),
        Some(t) if t == app.management_key => Ok(()),
        Some(_) => Err(error_response(
            403,
            "Only management keys can perform this operation",
            None,
        )),
    }
}

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(error_response(
            400,
            "Invalid JSON body: expected an object",
            None,
        )),
    }
}

/// Fields shared by create and update; each is applied only when present.
fn apply_fields(k: &mut KeyRecord, body: &Map<String, Value>) -> Result<(), Response> {
    let bad = |field: &str| error_response(400, &format!("Invalid value for {field}"), None);
    if let Some(v) = body.get("name") {
        k.name = v
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad("name"))?
            .to_string();
    }
    if let Some(v) = body.get("disabled") {
        k.disabled = v.as_bool().ok_or_else(|| bad("disabled"))?;
    }
    if let Some(v) = body.get("limit") {
        k.limit = match v {
            Value::Null => None,
            v => Some(
                v.as_f64()
                    .filter(|l| *l >= 0.0)
                    .map(Usd::from_f64)
                    .ok_or_else(|| bad("limit"))?,
            ),
        };
    }
    if let Some(v) = body.get("limit_reset") {
        k.limit_reset = match v {
            Value::Null => None,
            Value::String(s) if matches!(s.as_str(), "daily" | "weekly" | "monthly") => {
                Some(s.clone())
            }
            _ => return Err(bad("limit_reset")),
        };
    }
    if let Some(v) = body.get("include_byok_in_limit") {
        k.include_byok_in_limit = v.as_bool().ok_or_else(|| bad("include_byok_in_limit"))?;
    }
    Ok(())
}

/// `POST /keys`
pub async fn create(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = require_management(&app, &headers) {
        return r;
    }
    let body = match parse_object(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let has_name = matches!(body.get("name"), Some(Value::String(s)) if !s.is_empty());
    if !has_name {
        return error_response(400, "name is required", None);
    }
    let secret_hex = app.ids.random_hex(64);
    let mut k = KeyRecord {
        secret: format!("sk-or-v1-{secret_hex}"),
        hash: app.ids.random_hex(64),
        name: String::new(),
        label: format!("sk-or-v1-{}...{}", &secret_hex[..3], &secret_hex[61..]),
        disabled: false,
        limit: None,
        limit_reset: None,
        include_byok_in_limit: false,
        usage: Usd::ZERO,
        byok_usage: Usd::ZERO,
        created_at: iso8601(now_ms()),
        updated_at: None,
    };
    if let Err(r) = apply_fields(&mut k, &body) {
        return r;
    }
    let resp = json_response(
        StatusCode::CREATED,
        &Created {
            data: k.view(),
            key: &k.secret,
        },
    );
    app.keys.change().keys_mut().push(k);
    resp
}

/// `GET /keys?offset=N`
pub async fn list(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = require_management(&app, &headers) {
        return r;
    }
    let offset = q
        .get("offset")
        .and_then(|o| o.parse().ok())
        .unwrap_or(0usize);
    let saved = app.keys.keys();
    let data: Vec<KeyView> = saved
        .list()
        .iter()
        .skip(offset)
        .take(PAGE)
        .map(KeyRecord::view)
        .collect();
    json_response(StatusCode::OK, &Data { data })
}

/// `GET /keys/{hash}`
pub async fn get_one(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(hash): Path<String>,
) -> Response {
    if let Err(r) = require_management(&app, &headers) {
        return r;
    }
    if let Some(r) = crate::runtime::keys_fault(&app) {
        return r;
    }
    let saved = app.keys.keys();
    match saved.list().iter().find(|k| k.hash == hash) {
        Some(k) => json_response(StatusCode::OK, &Data { data: k.view() }),
        None => not_found(),
    }
}

/// `PATCH /keys/{hash}`
pub async fn update(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(hash): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = require_management(&app, &headers) {
        return r;
    }
    if let Some(r) = crate::runtime::keys_fault(&app) {
        return r;
    }
    let body = match parse_object(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut change = app.keys.change();
    let Some(k) = change.keys_mut().iter_mut().find(|k| k.hash == hash) else {
        return not_found();
    };
    // Validate on a scratch copy so a bad field leaves the key untouched.
    let mut draft = k.clone();
    if let Err(r) = apply_fields(&mut draft, &body) {
        return r;
    }
    draft.updated_at = Some(iso8601(now_ms()));
    *k = draft;
    json_response(StatusCode::OK, &Data { data: k.view() })
}

/// `DELETE /keys/{hash}`
pub async fn delete(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(hash): Path<String>,
) -> Response {
    if let Err(r) = require_management(&app, &headers) {
        return r;
    }
    let mut change = app.keys.change();
    match change.keys_mut().iter().position(|k| k.hash == hash) {
        Some(i) => {
            change.delete(i);
            json_response(StatusCode::OK, &json!({ "deleted": true }))
        }
        None => not_found(),
    }
}

/// `GET /key`: the calling key's own record. Keys the mock did not issue
/// (any bearer is accepted for chat) get an unlimited, unused record.
pub async fn current(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let Some(token) = bearer(&headers) else {
        return unauthorized();
    };
    let saved = app.keys.keys();
    let anon;
    let record = match saved.list().iter().find(|k| k.secret == token) {
        Some(k) => k,
        None => {
            let tail: String = token
                .chars()
                .rev()
                .take(3)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            anon = KeyRecord {
                secret: String::new(),
                hash: String::new(),
                name: String::new(),
                label: format!("sk-or-v1-...{tail}"),
                disabled: false,
                limit: None,
                limit_reset: None,
                include_byok_in_limit: false,
                usage: Usd::ZERO,
                byok_usage: Usd::ZERO,
                created_at: iso8601(0),
                updated_at: None,
            };
            &anon
        }
    };
    let mut view = record.view();
    view.is_free_tier = Some(false);
    view.is_management_key = Some(token == app.management_key);
    json_response(StatusCode::OK, &Data { data: view })
}

/// `GET /credits`
pub async fn credits(headers: HeaderMap) -> Response {
    if bearer(&headers).is_none() {
        return unauthorized();
    }
    json_response(
        StatusCode::OK,
        &json!({ "data": { "total_credits": 100.5, "total_usage": 25.75 } }),
    )
}
