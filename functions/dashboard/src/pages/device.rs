//! `/device`: where the CLI's device login sends people. Signed in (the same
//! sign-in as the dashboard), a user sees who is asking — client and
//! version, the address it came from (and country), how long ago the code
//! was issued — with a plain warning, before Approve or Deny. A code older
//! than `device::CONFIRM_AFTER_SECS` takes a second confirmation. Nobody
//! pastes a token; the look-up and the decision are the identity API's.

use super::query;
use crate::backend::Backend;
use crate::layout::{self, csrf_field};
use crate::respond::{Page, PageError, PageResult};
use crate::session::{check_csrf, Session};
use dexto_shared::device::describe_age;
use dexto_shared::error::GatewayError;
use dexto_shared::url_query::encode;
use dexto_shared::web::html::esc;
use serde_json::{json, Value};
use worker::{Env, Method, Request};

const TITLE: &str = "Device login";

pub async fn page(req: &Request, env: &Env, session: &Session) -> PageResult {
    let typed = query(req).get("user_code").cloned().unwrap_or_default();
    if typed.trim().is_empty() {
        return Ok(entry(session, "", None));
    }
    match lookup(env, req, session, &typed).await {
        Ok(found) => Ok(details(session, &found, false)),
        Err(PageError::Api { status: 400 | 404 | 409, message }) => Ok(entry(session, &typed, Some(&message))),
        Err(other) => Err(other),
    }
}

pub async fn decide(req: &mut Request, env: &Env, session: &Session) -> PageResult {
    let form = crate::form::read(req).await?;
    check_csrf(req, session, form.get("csrf").map(String::as_str))?;
    let code = form.get("user_code").cloned().unwrap_or_default();
    let confirmed = form.get("confirm").is_some_and(|c| c == "yes");
    let (path, done) = match form.get("decision").map(String::as_str) {
        Some("approve") => ("/api/auth/device/approve", "Approved. You can go back to your terminal."),
        Some("deny") => ("/api/auth/device/deny", "Denied. The CLI will not be signed in."),
        _ => return Err(GatewayError::BadRequest("Choose Approve or Deny.".into()).into()),
    };
    if path.ends_with("approve") && !confirmed {
        let found = lookup(env, req, session, &code).await?;
        if found["needsConfirmation"] == true {
            return Ok(details(session, &found, true));
        }
    }
    let body = json!({"userCode": code, "confirm": confirmed});
    let answer = Backend::new(env, req, session).send("IDENTITY", Method::Post, path, body).await?;
    let client = answer["client"].as_str().map(|c| format!("<p>Client: {}</p>", esc(c))).unwrap_or_default();
    let body = format!(r#"<h1>Device login</h1><p class="notice" role="status" id="device-result">{done}</p>{client}<p><a href="/dashboard/keys">See your keys</a></p>"#);
    Ok(Page::html(layout::page(TITLE, session, "", &body)))
}

/// Who is asking for this code (`GET /api/auth/device/pending`).
async fn lookup(env: &Env, req: &Request, session: &Session, code: &str) -> Result<Value, PageError> {
    Backend::new(env, req, session).get("IDENTITY", &format!("/api/auth/device/pending?user_code={}", encode(code))).await
}

/// No code yet, or one that is not pending: type the one in the terminal.
fn entry(session: &Session, typed: &str, problem: Option<&str>) -> Page {
    let problem = problem.map(|m| format!(r#"<p class="error" role="alert" id="device-problem">{}</p>"#, esc(m))).unwrap_or_default();
    let body = format!(
        r#"<h1>Sign in the Dexto CLI</h1>{problem}
<form method="get" action="/device" class="stack"><label for="user-code">Code shown in your terminal</label>
<input id="user-code" name="user_code" value="{typed}" autocomplete="off" autocapitalize="characters" required>
<div class="row"><button type="submit" id="continue">Continue</button></div></form>"#,
        typed = esc(typed),
    );
    Page::html(layout::page(TITLE, session, "", &body))
}

/// The request, the warning, and Approve/Deny; `second` is the second
/// confirmation an old code needs.
fn details(session: &Session, found: &Value, second: bool) -> Page {
    let text = |k: &str| found[k].as_str().unwrap_or("");
    let version = found["clientVersion"].as_str().map_or_else(|| "version not reported".to_string(), |v| format!("version {}", esc(v)));
    let from = match (found["ip"].as_str(), found["country"].as_str()) {
        (Some(ip), Some(country)) => format!("{} ({})", esc(ip), esc(country)),
        (Some(ip), None) => esc(ip),
        _ => "address not known".to_string(),
    };
    let age = describe_age(found["ageSeconds"].as_i64().unwrap_or(0));
    let (confirm, approve) = if second {
        (
            format!(
                r#"<p class="error" role="alert" id="device-confirm">This code was issued {age}. A login you start yourself is approved within a minute or two: approve only if you started this one and your terminal is still waiting.</p><input type="hidden" name="confirm" value="yes">"#
            ),
            "Yes, I started it: approve",
        )
    } else {
        (String::new(), "Approve")
    };
    let body = format!(
        r#"<h1>Sign in the Dexto CLI?</h1>
<p class="warning" role="alert" id="device-warning">Approve only if you started this login yourself just now. If someone sent you this link or code, deny it: approving gives them an API key on your account.</p>
<dl class="facts" id="device-request"><dt>Code</dt><dd id="device-code">{code}</dd>
<dt>Client</dt><dd id="device-client">{client}, {version}</dd>
<dt>From</dt><dd id="device-ip">{from}</dd>
<dt>Requested</dt><dd id="device-age">{age}</dd></dl>
<p>The CLI gets its own API key on <strong>{name}</strong>’s account.</p>
<form method="post" action="/device" class="stack">{csrf}<input type="hidden" name="user_code" value="{code}">{confirm}
<div class="row"><button type="submit" name="decision" value="approve" id="approve">{approve}</button>
<button type="submit" name="decision" value="deny" class="danger" id="deny">Deny</button></div></form>"#,
        code = esc(text("userCode")),
        client = esc(text("client")),
        name = esc(&session.name),
        csrf = csrf_field(session),
    );
    Page::html(layout::page(TITLE, session, "", &body))
}
