//! `/dashboard/keys`: the account's API keys (device-login keys told apart),
//! create (the secret shown once, with a copy button), rotate and revoke.

use super::query;
use crate::backend::Backend;
use crate::layout::{self, csrf_field};
use crate::respond::{Page, PageResult};
use crate::session::{check_csrf, Session};
use dexto_shared::web::html::{esc, when};
use serde_json::{json, Value};
use worker::{Env, Method, Request};

/// The one-time display of a new secret.
pub struct NewKey {
    pub name: String,
    pub secret: String,
}

pub async fn page(req: &Request, env: &Env, session: &Session, fresh: Option<NewKey>) -> PageResult {
    let api = Backend::new(env, req, session);
    let keys = api.get("IDENTITY", "/api/keys").await?;
    let notice = match (&fresh, query(req).get("done").map(String::as_str)) {
        (Some(k), _) => format!(
            r#"<div class="notice" role="status"><h2>New key “{}”</h2><p>Copy it now: this is the only time it is shown.</p>
<p><code id="new-key">{}</code> <button type="button" data-copy="new-key">Copy</button> <span class="copied" aria-live="polite"></span></p></div>"#,
            esc(&k.name),
            esc(&k.secret)
        ),
        (None, Some("revoked")) => r#"<p class="notice" role="status">Key revoked. It stops working at once.</p>"#.into(),
        _ => String::new(),
    };
    let rows: String = keys["data"].as_array().into_iter().flatten().map(|k| row(k, session)).collect();
    let headers = ["Name", "Key", "Created", "Last used", "Scopes", "Status", r#"<span class="sr">Actions</span>"#];
    let table = layout::table("keys", &headers, &rows, "No API keys yet. Create one below, or sign in with the Dexto CLI.");
    let body = format!(
        r#"<h1>API keys</h1>{notice}{table}
<form method="post" action="/dashboard/keys" class="stack" aria-labelledby="create-h"><h2 id="create-h">Create a key</h2>{csrf}
<label for="key-name">Name</label><input id="key-name" name="name" maxlength="100" required placeholder="e.g. laptop">
<button type="submit">Create key</button></form>"#,
        csrf = csrf_field(session)
    );
    let status = if fresh.is_some() { 201 } else { 200 };
    let mut page = Page::html(layout::page("API keys", session, "/dashboard/keys", &body));
    page.status = status;
    Ok(page)
}

fn row(k: &Value, session: &Session) -> String {
    let id = k["id"].as_str().unwrap_or("");
    let active = k["status"] == "active";
    let source = if k["source"] == "device_login" { r#" <span class="tag">Device login</span>"# } else { "" };
    let scopes: Vec<&str> = k["scopes"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let actions = if active {
        format!(
            r#"<form method="post" action="/dashboard/keys/{id}/rotate" class="inline" data-confirm="Rotate this key? The old secret stops working.">{csrf}<button type="submit">Rotate</button></form>
<form method="post" action="/dashboard/keys/{id}/revoke" class="inline" data-confirm="Revoke this key? It stops working at once.">{csrf}<button type="submit" class="danger">Revoke</button></form>"#,
            id = esc(&dexto_shared::url_query::encode(id)),
            csrf = csrf_field(session)
        )
    } else {
        String::new()
    };
    format!(
        r#"<tr data-key-id="{}"><td class="name">{}{source}</td><td><code>{}</code></td><td>{}</td><td class="last-used">{}</td><td>{}</td><td class="status">{}</td><td>{actions}</td></tr>"#,
        esc(id),
        esc(k["name"].as_str().unwrap_or("")),
        esc(k["keyDisplay"].as_str().unwrap_or("")),
        esc(&when(k["createdAt"].as_i64())),
        esc(&k["lastUsedAt"].as_i64().map_or_else(|| "never".to_string(), |t| when(Some(t)))),
        esc(&scopes.join(", ")),
        esc(k["status"].as_str().unwrap_or("")),
    )
}

pub async fn create(req: &mut Request, env: &Env, session: &Session) -> PageResult {
    let form = crate::form::read(req).await?;
    check_csrf(req, session, form.get("csrf").map(String::as_str))?;
    let name = form.get("name").map(|n| n.trim().to_string()).unwrap_or_default();
    let created = Backend::new(env, req, session).send("IDENTITY", Method::Post, "/api/keys", json!({"name": name})).await?;
    let secret = created["data"]["fullKey"].as_str().unwrap_or("").to_string();
    page(req, env, session, Some(NewKey { name: created["data"]["name"].as_str().unwrap_or(&name).to_string(), secret })).await
}

pub async fn rotate(req: &mut Request, env: &Env, session: &Session, id: &str) -> PageResult {
    let form = crate::form::read(req).await?;
    check_csrf(req, session, form.get("csrf").map(String::as_str))?;
    let path = format!("/api/keys/{}/rotate", dexto_shared::url_query::encode(id));
    let rotated = Backend::new(env, req, session).send("IDENTITY", Method::Post, &path, json!({})).await?;
    let fresh = NewKey { name: rotated["data"]["name"].as_str().unwrap_or("").into(), secret: rotated["data"]["fullKey"].as_str().unwrap_or("").into() };
    page(req, env, session, Some(fresh)).await
}

pub async fn revoke(req: &mut Request, env: &Env, session: &Session, id: &str) -> PageResult {
    let form = crate::form::read(req).await?;
    check_csrf(req, session, form.get("csrf").map(String::as_str))?;
    let path = format!("/api/keys/{}", dexto_shared::url_query::encode(id));
    Backend::new(env, req, session).send("IDENTITY", Method::Delete, &path, json!({})).await?;
    Ok(Page::redirect("/dashboard/keys?done=revoked"))
}
