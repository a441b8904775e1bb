//! `GET /admin/audit?user=&action=&cursor=&limit=`: the audit log, newest
//! first, in keyset pages (`next_cursor`). `action` is exact or a prefix
//! ending in `*` (`key.*`).

use crate::AdminResult;
use dexto_shared::audit::{list as read, Query};
use dexto_shared::error::GatewayError;
use dexto_shared::http::ok_json;
use worker::{Env, Request};

pub async fn list(req: &Request, env: &Env) -> AdminResult {
    let pairs = dexto_shared::url_query::pairs(&req.inner().url());
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
    let cursor = match get("cursor") {
        Some(c) => Some(c.parse::<i64>().map_err(|_| GatewayError::BadRequest("`cursor` is not a cursor from this API.".into()))?),
        None => None,
    };
    let limit = match get("limit") {
        Some(l) => l.parse::<i64>().ok().filter(|l| (1..=200).contains(l)).ok_or_else(|| GatewayError::BadRequest("`limit` must be 1 to 200.".into()))?,
        None => 50,
    };
    let page = read(env, &Query { user_id: get("user"), action: get("action"), cursor, limit }).await?;
    ok_json(200, &page)
}
