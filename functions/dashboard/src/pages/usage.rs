//! `/dashboard/usage`: the usage history with filters (model, key, dates,
//! status) and cursor pages, and CSV / JSON export of the same filter.

use super::{query, show_usd};
use crate::backend::Backend;
use crate::layout;
use crate::respond::{Page, PageBody, PageResult};
use crate::session::Session;
use dexto_shared::url_query::encode;
use dexto_shared::web::html::esc;
use worker::{Env, Method, Request};

const FILTERS: &[&str] = &["model", "key", "from", "to", "status"];
const PAGE_SIZE: u32 = 50;

/// The filters present in the request, as a query string (no leading `&`).
fn filter_query(req: &Request) -> String {
    let q = query(req);
    FILTERS.iter().filter_map(|f| q.get(*f).filter(|v| !v.is_empty()).map(|v| format!("{f}={}", encode(v)))).collect::<Vec<_>>().join("&")
}

pub async fn page(req: &Request, env: &Env, session: &Session) -> PageResult {
    let q = query(req);
    let filters = filter_query(req);
    let cursor = q.get("cursor").map(|c| format!("&cursor={}", encode(c))).unwrap_or_default();
    let api = Backend::new(env, req, session);
    // Keys by id, to show names (revoked keys too: old usage names them).
    let history_path = format!("/me/usage/history?limit={PAGE_SIZE}&{filters}{cursor}");
    let (history, keys, direct) =
        futures::try_join!(api.get("USAGE", &history_path), api.get("IDENTITY", "/api/keys"), api.get("IDENTITY", "/api/openrouter-provision"))?;
    let keys: Vec<(String, String)> = keys["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|k| (k["id"].as_str().unwrap_or("").to_string(), format!("{} ({})", k["name"].as_str().unwrap_or(""), k["keyDisplay"].as_str().unwrap_or(""))))
        .collect();
    let key_name = |id: &str| keys.iter().find(|(k, _)| k == id).map_or_else(|| id.to_string(), |(_, n)| n.clone());
    let rows: String = history["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
                esc(r["timestamp"].as_str().unwrap_or("")),
                esc(r["model"].as_str().unwrap_or("")),
                esc(&key_name(r["key_id"].as_str().unwrap_or(""))),
                r["input_tokens"].as_i64().unwrap_or(0),
                r["output_tokens"].as_i64().unwrap_or(0),
                show_usd(&r["user_price_usd"]),
                esc(r["billing_status"].as_str().unwrap_or("")),
                esc(r["api"].as_str().unwrap_or("chat")),
            )
        })
        .collect();
    // API: which interface the client spoke (chat, messages, responses).
    let headers = ["Time (UTC)", "Model", "Key", "Input tokens", "Output tokens", "Cost", "Status", "API"];
    let table = layout::table("usage", &headers, &rows, "No usage yet for these filters.");
    let next = match history["next_cursor"].as_str() {
        Some(c) => format!(r#"<p><a id="next-page" href="/dashboard/usage?{}cursor={}">Older entries</a></p>"#, esc(&amp_join(&filters)), esc(&encode(c))),
        None => String::new(),
    };
    let field = |name: &str, label: &str, kind: &str| {
        format!(
            r#"<div><label for="f-{name}">{label}</label><input id="f-{name}" name="{name}" type="{kind}" value="{}"></div>"#,
            esc(q.get(name).map_or("", String::as_str))
        )
    };
    let chosen_key = q.get("key").map(String::as_str).unwrap_or("");
    let key_opts: String = std::iter::once(("".to_string(), "any".to_string()))
        .chain(keys.iter().cloned())
        .map(|(id, name)| format!(r#"<option value="{}"{}>{}</option>"#, esc(&id), if id == chosen_key { " selected" } else { "" }, esc(&name)))
        .collect();
    let status_opts: String = ["", "billed", "needs_review", "refunded"]
        .iter()
        .map(|s| {
            let selected = if q.get("status").map(String::as_str) == Some(*s) { " selected" } else { "" };
            format!(r#"<option value="{s}"{selected}>{}</option>"#, if s.is_empty() { "any" } else { s })
        })
        .collect();
    let body = format!(
        r#"<h1>Usage</h1>
<form method="get" action="/dashboard/usage" class="filters" aria-label="Filter usage">{}
<div><label for="f-key">Key</label><select id="f-key" name="key">{key_opts}</select></div>{}{}
<div><label for="f-status">Status</label><select id="f-status" name="status">{status_opts}</select></div>
<button type="submit">Filter</button></form>
<p class="exports">Export these rows: <a href="/dashboard/usage/export?format=csv{amp}{fq}">CSV</a> · <a href="/dashboard/usage/export?format=json{amp}{fq}">JSON</a></p>
{table}{next}{direct}"#,
        field("model", "Model", "text"),
        field("from", "From (YYYY-MM-DD)", "date"),
        field("to", "To (YYYY-MM-DD)", "date"),
        direct = direct_key_line(&direct),
        amp = if filters.is_empty() { "" } else { "&amp;" },
        fq = esc(&filters),
    );
    Ok(Page::html(layout::page("Usage", session, "/dashboard/usage", &body)))
}

/// The direct OpenRouter key's spending, from OpenRouter's counters: its
/// calls never pass through the gateway, so it has no rows above.
fn direct_key_line(key: &serde_json::Value) -> String {
    if key["exists"] != true {
        return String::new();
    }
    format!(
        r#"<p id="direct-key-usage">Direct key (<a href="/dashboard/direct-key">{}</a>): {} spent of {} funded, by OpenRouter's count; its calls are not listed above.</p>"#,
        esc(key["label"].as_str().unwrap_or("")),
        show_usd(&key["spent_usd"]),
        show_usd(&key["funded_usd"])
    )
}

fn amp_join(filters: &str) -> String {
    if filters.is_empty() {
        String::new()
    } else {
        format!("{filters}&")
    }
}

/// `GET /dashboard/usage/export?format=csv|json&…`: the usage API's streamed
/// export, passed through as a download.
pub async fn export(req: &Request, env: &Env, session: &Session) -> PageResult {
    let format = if query(req).get("format").map(String::as_str) == Some("json") { "json" } else { "csv" };
    let path = format!("/me/usage/export?format={format}&{}", filter_query(req));
    let mut upstream = Backend::new(env, req, session).raw("USAGE", Method::Get, &path, None).await?;
    let status = upstream.status_code();
    let content_type = upstream.headers().get("Content-Type")?.unwrap_or_else(|| "application/octet-stream".into());
    // A fetched response's headers are immutable: stream its body into a new one.
    let mut resp = worker::Response::from_stream(upstream.stream()?)?;
    resp.headers_mut().set("Content-Type", &content_type)?;
    if (200..300).contains(&status) {
        resp.headers_mut().set("Content-Disposition", &format!("attachment; filename=\"dexto-usage.{format}\""))?;
    }
    Ok(Page { status, body: PageBody::Passthrough(resp), cookies: Vec::new() })
}
