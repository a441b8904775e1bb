//! `/dashboard/account`: the upstream (OpenRouter) key's status — never the
//! key — the account's spend caps (with a form to set the account-wide ones)
//! and its recent security events.

use super::show_usd;
use crate::backend::Backend;
use crate::layout::{self, csrf_field};
use crate::respond::{Page, PageResult};
use crate::session::{check_csrf, Session};
use dexto_shared::error::GatewayError;
use dexto_shared::web::html::{esc, when};
use serde_json::{json, Value};
use worker::{Env, Method, Request};

pub async fn page(req: &Request, env: &Env, session: &Session) -> PageResult {
    let api = Backend::new(env, req, session);
    let (upstream, caps, events) = futures::join!(api.get("IDENTITY", "/api/openrouter-key"), api.get("IDENTITY", "/api/caps"), api.get("IDENTITY", "/api/audit?limit=10"));
    let (caps, events) = (caps?, events?);
    // OpenRouter being unreachable costs this section, not the page.
    let upstream = match upstream {
        Err(crate::respond::PageError::Api { status, .. }) if status >= 500 => serde_json::json!({"unavailable": true}),
        other => other?,
    };
    let money = |v: &Value| if v.is_null() { "no limit".to_string() } else { show_usd(v) };
    let upstream_html = if upstream["unavailable"] == true {
        r#"<p id="upstream" class="error" role="alert">The upstream key's status cannot be read right now. Try again in a moment.</p>"#.to_string()
    } else if upstream["exists"] == true {
        format!(
            r#"<dl id="upstream"><dt>Status</dt><dd>{}</dd><dt>Limit</dt><dd>{}</dd><dt>Remaining</dt><dd>{}</dd><dt>Used this month</dt><dd>{}</dd><dt>Created</dt><dd>{}</dd></dl>"#,
            if upstream["disabled"] == true { "disabled" } else { "active" },
            money(&upstream["limit_usd"]),
            money(&upstream["limit_remaining_usd"]),
            money(&upstream["usage_monthly_usd"]),
            esc(&when(upstream["created_at"].as_i64())),
        )
    } else if upstream["per_user_keys"] == true {
        r#"<p id="upstream" class="empty">No upstream key yet: it is created with your first API key.</p>"#.into()
    } else {
        r#"<p id="upstream">This server calls OpenRouter with a shared key.</p>"#.into()
    };
    let cap_rows: String = caps["caps"]
        .as_array()
        .or(caps.as_array())
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
                esc(&format!("{}{}", c["scope"].as_str().unwrap_or(""), c["key_id"].as_str().map(|k| format!(" {k}")).unwrap_or_default())),
                esc(c["window"].as_str().unwrap_or("")),
                show_usd(&c["limit_usd"]),
                show_usd(&c["spent_usd"]),
                esc(c["resets_at"].as_str().unwrap_or("never")),
                // An operator's or a plan's cap is shown, never offered for
                // change: the form below sets only the user's own caps.
                match c["set_by"].as_str() {
                    Some("operator") => "Dexto (read-only)",
                    Some("plan") => "your plan (change plan to raise it)",
                    _ => "you",
                },
            )
        })
        .collect();
    let caps_html = layout::table("caps", &["Scope", "Window", "Cap", "Spent", "Resets", "Set by"], &cap_rows, "No spend caps set.");
    let event_rows: String = events["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| format!("<li>{} — {}</li>", esc(&when(e["created_at"].as_i64())), esc(e["action"].as_str().unwrap_or(""))))
        .collect();
    let body = format!(
        r#"<h1>Account</h1><p>Signed in as <strong>{name}</strong>.</p>
<section aria-labelledby="up-h"><h2 id="up-h">Upstream key (OpenRouter)</h2>{upstream_html}</section>
<section aria-labelledby="caps-h"><h2 id="caps-h">Spend caps</h2>{caps_html}
<form method="post" action="/dashboard/account/caps" class="filters">{csrf}
<div><label for="cap-window">Window</label><select id="cap-window" name="window"><option value="daily">daily</option><option value="monthly">monthly</option><option value="lifetime">lifetime</option></select></div>
<div><label for="cap-limit">Cap in USD (empty removes it)</label><input id="cap-limit" name="limit_usd" inputmode="decimal"></div>
<button type="submit">Set cap</button></form></section>
<section aria-labelledby="sec-h"><h2 id="sec-h">Recent security events</h2><ul>{events}</ul></section>"#,
        name = esc(&session.name),
        csrf = csrf_field(session),
        events = if event_rows.is_empty() { "<li>None yet.</li>".to_string() } else { event_rows },
    );
    Ok(Page::html(layout::page("Account", session, "/dashboard/account", &body)))
}

/// `POST /dashboard/account/caps` (CSRF): sets or removes an account-wide cap.
pub async fn set_cap(req: &mut Request, env: &Env, session: &Session) -> PageResult {
    let form = crate::form::read(req).await?;
    check_csrf(req, session, form.get("csrf").map(String::as_str))?;
    let window = form.get("window").cloned().unwrap_or_default();
    let limit = match form.get("limit_usd").map(|l| l.trim()).filter(|l| !l.is_empty()) {
        None => Value::Null,
        Some(l) => serde_json::from_str::<Value>(l).ok().filter(Value::is_number).ok_or_else(|| GatewayError::BadRequest("The cap must be a number of dollars.".into()))?,
    };
    Backend::new(env, req, session).send("IDENTITY", Method::Put, "/api/caps", json!({"scope": "user", "window": window, "limit_usd": limit})).await?;
    Ok(Page::redirect("/dashboard/account"))
}
