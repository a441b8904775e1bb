//! `/device`: where the CLI's device login sends people. Signed in (the same
//! sign-in as the dashboard), a user approves or denies the code with one
//! click; nobody pastes a token. The decision is the identity API's.

use super::query;
use crate::backend::Backend;
use crate::layout::{self, csrf_field};
use crate::respond::{Page, PageResult};
use crate::session::{check_csrf, Session};
use dexto_shared::error::GatewayError;
use dexto_shared::web::html::esc;
use serde_json::json;
use worker::{Env, Method, Request};

pub fn page(req: &Request, session: &Session) -> PageResult {
    let code = query(req).get("user_code").cloned().unwrap_or_default();
    let body = format!(
        r#"<h1>Sign in the Dexto CLI</h1>
<p>Check that this code matches the one in your terminal, then approve. The CLI gets its own API key on <strong>{email}</strong>’s account.</p>
<form method="post" action="/device" class="stack">{csrf}
<label for="user-code">Code</label><input id="user-code" name="user_code" value="{code}" autocomplete="off" autocapitalize="characters" required>
<div class="row"><button type="submit" name="decision" value="approve" id="approve">Approve</button>
<button type="submit" name="decision" value="deny" class="danger" id="deny">Deny</button></div></form>"#,
        email = esc(&session.email),
        csrf = csrf_field(session),
        code = esc(&code),
    );
    Ok(Page::html(layout::page("Device login", session, "", &body)))
}

pub async fn decide(req: &mut Request, env: &Env, session: &Session) -> PageResult {
    let form = crate::form::read(req).await?;
    check_csrf(req, session, form.get("csrf").map(String::as_str))?;
    let code = form.get("user_code").cloned().unwrap_or_default();
    let (path, done) = match form.get("decision").map(String::as_str) {
        Some("approve") => ("/api/auth/device/approve", "Approved. You can go back to your terminal."),
        Some("deny") => ("/api/auth/device/deny", "Denied. The CLI will not be signed in."),
        _ => return Err(GatewayError::BadRequest("Choose Approve or Deny.".into()).into()),
    };
    let answer = Backend::new(env, req, session).send("IDENTITY", Method::Post, path, json!({"userCode": code})).await?;
    let client = answer["client"].as_str().map(|c| format!("<p>Client: {}</p>", esc(c))).unwrap_or_default();
    let body = format!(r#"<h1>Device login</h1><p class="notice" role="status" id="device-result">{done}</p>{client}<p><a href="/dashboard/keys">See your keys</a></p>"#);
    Ok(Page::html(layout::page("Device login", session, "", &body)))
}
