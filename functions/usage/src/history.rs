//! `GET /me/usage/history` (keyset pages, newest first) and
//! `GET /me/usage/summary` (totals per day, model or key over a range).

use crate::db::{all, database};
use crate::{Params, UsageResult};
use dexto_shared::error::GatewayError;
use dexto_shared::http::{json_response, now_ms};
use dexto_shared::usage_query::{self, Cursor, Filters, GroupBy, TimeRange, MAX_MS};
use dexto_shared::usage_report::{self, GroupTotal, LedgerRow};
use serde_json::json;
use worker::Env;

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

fn bad(msg: String) -> GatewayError {
    GatewayError::BadRequest(msg)
}

fn ok(body: &serde_json::Value) -> UsageResult {
    json_response(200, body).map_err(|e| GatewayError::Internal(e.to_string()))
}

/// `limit` (1–500, default 50), `cursor` (from the previous page), `from`/`to`
/// (default: all time), `model`, `key`, `session`, `status`.
pub async fn page(env: &Env, user_id: &str, params: &Params) -> UsageResult {
    let limit = match params.get("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => v.parse::<u32>().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| bad(format!("`limit` must be 1–{MAX_LIMIT}.")))?,
    };
    let range = TimeRange::parse(params.get("from").as_deref(), params.get("to").as_deref(), 0, MAX_MS).map_err(bad)?;
    let filters = Filters::parse(|n| params.get(n)).map_err(bad)?;
    let cursor = params.get("cursor").map(|c| Cursor::decode(&c)).transpose().map_err(bad)?;
    let q = usage_query::history(user_id, range, &filters, cursor.as_ref(), limit + 1);
    let mut rows: Vec<LedgerRow> = all(&database(env)?, &q).await?;
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = match rows.last() {
        Some(last) if has_more => Some(Cursor { created_at: last.created_at, request_id: last.request_id.clone() }.encode()),
        _ => None,
    };
    let data: Vec<_> = rows.iter().map(LedgerRow::history_json).collect();
    ok(&json!({"object": "list", "data": data, "has_more": has_more, "next_cursor": next_cursor}))
}

/// `group_by` (default `day`), `from`/`to` (default: this calendar month, UTC).
pub async fn summary(env: &Env, user_id: &str, params: &Params) -> UsageResult {
    let group = GroupBy::parse(params.get("group_by").as_deref()).map_err(bad)?;
    let mtd = TimeRange::month_to_date(now_ms());
    let range = TimeRange::parse(params.get("from").as_deref(), params.get("to").as_deref(), mtd.from_ms, mtd.to_ms).map_err(bad)?;
    let groups: Vec<GroupTotal> = all(&database(env)?, &usage_query::summary(user_id, range, group)).await?;
    ok(&usage_report::summary(group, range, &groups))
}
