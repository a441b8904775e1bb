//! `/dashboard/direct-key`: the direct OpenRouter key (BYOK) — create it (the
//! key shown once), see its funding and spending (the upstream's counters),
//! move credit to it and back, revoke it. Each form carries a fresh
//! Idempotency-Key, so a double submit moves money once.

use super::show_usd;
use crate::backend::Backend;
use crate::layout::{self, csrf_field};
use crate::respond::{Page, PageResult};
use crate::session::{check_csrf, Session};
use dexto_shared::web::html::{esc, when};
use serde_json::{json, Value};
use worker::{Env, Method, Request};

const PATH: &str = "/dashboard/direct-key";

pub async fn page(req: &Request, env: &Env, session: &Session, notice: Option<String>) -> PageResult {
    let key = Backend::new(env, req, session).get("IDENTITY", "/api/openrouter-provision").await?;
    let notice = notice.unwrap_or_default();
    let csrf = csrf_field(session);
    let idem = format!(r#"<input type="hidden" name="idem" value="{}">"#, esc(&dexto_shared::ids::new_id("dash_")));
    let body = if key["exists"] != true {
        format!(
            r#"<h1>Direct OpenRouter key</h1>{notice}
<p>A key of your own to call OpenRouter directly, funded from your Dexto credit. Its calls do not pass through Dexto: their spending is read from OpenRouter's counters.</p>
<form method="post" action="{PATH}" class="stack">{csrf}<button type="submit">Create a direct key</button></form>"#
        )
    } else {
        format!(
            r#"<h1>Direct OpenRouter key</h1>{notice}
<dl class="facts" id="direct-key"><dt>Key</dt><dd><code>{label}</code></dd><dt>Created</dt><dd>{created}</dd>
<dt>Funded</dt><dd id="dk-funded">{funded}</dd><dt>Spent (direct key)</dt><dd id="dk-spent">{spent}</dd>
<dt>Unspent</dt><dd id="dk-unspent">{unspent}</dd><dt>OpenRouter limit</dt><dd>{limit}</dd></dl>
<form method="post" action="{PATH}/fund" class="stack" aria-labelledby="fund-h"><h2 id="fund-h">Move credit to the key</h2>{csrf}{idem}
<label for="fund-amount">Amount (USD)</label><input id="fund-amount" name="amount_usd" inputmode="decimal" required placeholder="e.g. 5">
<button type="submit">Fund</button></form>
<form method="post" action="{PATH}/reclaim" class="stack" aria-labelledby="reclaim-h"><h2 id="reclaim-h">Take unspent credit back</h2>{csrf}{idem}
<label for="reclaim-amount">Amount (USD; empty: all that is unspent)</label><input id="reclaim-amount" name="amount_usd" inputmode="decimal">
<button type="submit">Reclaim</button></form>
<form method="post" action="{PATH}/revoke" class="stack" data-confirm="Revoke the direct key? It stops working and its unspent credit comes back.">{csrf}
<button type="submit" class="danger">Revoke</button></form>"#,
            label = esc(key["label"].as_str().unwrap_or("")),
            created = esc(&when(key["created_at"].as_i64())),
            funded = show_usd(&key["funded_usd"]),
            spent = show_usd(&key["spent_usd"]),
            unspent = show_usd(&key["unspent_usd"]),
            limit = show_usd(&key["limit_usd"]),
        )
    };
    Ok(Page::html(layout::page("Direct key", session, PATH, &body)))
}

pub async fn create(req: &mut Request, env: &Env, session: &Session) -> PageResult {
    let form = crate::form::read(req).await?;
    check_csrf(req, session, form.get("csrf").map(String::as_str))?;
    let created = Backend::new(env, req, session).send("IDENTITY", Method::Post, "/api/openrouter-provision", json!({})).await?;
    let notice = match created["key"].as_str() {
        Some(secret) => format!(
            r#"<div class="notice" role="status"><h2>Your direct key</h2><p>Copy it now: this is the only time it is shown.</p>
<p><code id="new-key">{}</code> <button type="button" data-copy="new-key">Copy</button> <span class="copied" aria-live="polite"></span></p></div>"#,
            esc(secret)
        ),
        None => r#"<p class="notice" role="status">You already have a direct key.</p>"#.into(),
    };
    page(req, env, session, Some(notice)).await
}

/// `fund` or `reclaim`: the amount as typed (the API checks it), under the form's Idempotency-Key.
pub async fn shift(req: &mut Request, env: &Env, session: &Session, action: &str) -> PageResult {
    let form = crate::form::read(req).await?;
    check_csrf(req, session, form.get("csrf").map(String::as_str))?;
    let amount = form.get("amount_usd").map(|a| a.trim().trim_start_matches('$').to_string()).filter(|a| !a.is_empty());
    let body = amount.map_or_else(|| json!({}), |a| json!({"amount_usd": a}));
    let api = Backend::new(env, req, session).with_idempotency_key(form.get("idem").cloned());
    let moved = api.send("IDENTITY", Method::Post, &format!("/api/openrouter-provision/{action}"), body).await?;
    let notice = moved_notice(&moved["move"]);
    page(req, env, session, Some(notice)).await
}

pub async fn revoke(req: &mut Request, env: &Env, session: &Session) -> PageResult {
    let form = crate::form::read(req).await?;
    check_csrf(req, session, form.get("csrf").map(String::as_str))?;
    let revoked = Backend::new(env, req, session).send("IDENTITY", Method::Delete, "/api/openrouter-provision", json!({})).await?;
    let notice = format!(r#"<p class="notice" role="status">Direct key revoked; {} of unspent credit returned to your balance.</p>"#, show_usd(&revoked["move"]["amount_usd"]));
    page(req, env, session, Some(notice)).await
}

fn moved_notice(m: &Value) -> String {
    let what = if m["kind"] == "fund" { "moved to your direct key" } else { "returned to your balance" };
    format!(r#"<p class="notice" role="status">{} {what}.</p>"#, show_usd(&m["amount_usd"]))
}
