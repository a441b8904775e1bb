//! `/dashboard/settings/billing` — where `dexto billing --buy` and the CLI's
//! top-up overlay send people (`?credits_usd=N` preselects an amount): packs
//! or a custom amount, Stripe Checkout through the billing API, the return
//! page that waits for the webhook (`?session_id=`), paying with USDC
//! (`crypto.rs`), payment history and the subscription state, and the plan
//! (`plan.rs`).

use super::{query, show_usd};
use crate::backend::Backend;
use crate::layout::{self, csrf_field};
use crate::respond::{Page, PageBody, PageError, PageResult};
use crate::session::{check_csrf, own_origin, Session};
use dexto_shared::error::GatewayError;
use dexto_shared::money::Micros;
use dexto_shared::stripe::PACKS_USD;
use dexto_shared::url_query::encode;
use dexto_shared::web::html::{esc, usd, when};
use serde_json::{json, Value};
use worker::{Env, Method, Request};

/// A plausible amount from the URL (the billing API decides what is allowed).
fn preselected(req: &Request) -> Option<String> {
    query(req).get("credits_usd").filter(|v| !v.is_empty() && v.len() <= 10 && v.chars().all(|c| c.is_ascii_digit() || c == '.')).cloned()
}

pub async fn page(req: &Request, env: &Env, session: &Session) -> PageResult {
    render(req, env, session, None).await
}

/// The page; `usdc_outcome` is what a USDC confirmation just made said.
pub async fn render(req: &Request, env: &Env, session: &Session, usdc_outcome: Option<&str>) -> PageResult {
    let api = Backend::new(env, req, session);
    let (balance, history, usdc) = futures::try_join!(
        api.get("BILLING", "/api/billing/balance"),
        api.get("BILLING", "/api/billing/history"),
        super::crypto::section(&api, session, usdc_outcome)
    )?;
    let plan = super::plan::section(&api, session, &balance).await?;
    let q = query(req);
    let returned = match q.get("session_id") {
        Some(id) => checkout_state(&api, &history, id).await?,
        None if q.contains_key("cancelled") => r#"<p class="notice" role="status">Checkout was cancelled; nothing was charged.</p>"#.into(),
        None => super::plan::notice(q.get("plan").map(String::as_str)).into(),
    };
    let chosen = preselected(req);
    let packs: String = PACKS_USD
        .iter()
        .map(|p| {
            let checked = if chosen.as_deref() == Some(&p.to_string()) { " checked" } else { "" };
            format!(r#"<label class="pack"><input type="radio" name="pack" value="{p}"{checked}> ${p}</label>"#)
        })
        .collect();
    let custom = chosen.filter(|c| !PACKS_USD.iter().any(|p| p.to_string() == *c)).unwrap_or_default();
    // A plan's subscription is shown in the plan section; this line is the
    // older single-price subscription's.
    let subscription = match history["subscription"].as_object() {
        Some(s) => format!("<p>Subscription: <strong>{}</strong> (since {})</p>", esc(s["status"].as_str().unwrap_or("")), esc(&when(s["updated_at"].as_i64()))),
        None if balance["plan"]["period_end"].is_i64() => String::new(),
        None => "<p>No subscription: you pay as you go.</p>".into(),
    };
    let body = format!(
        r#"<h1>Billing</h1>{returned}
<p>Balance: <strong id="balance">{balance}</strong></p>
{plan}
<form method="post" action="/dashboard/settings/billing/checkout" class="stack" aria-labelledby="buy-h"><h2 id="buy-h">Add credit</h2>{csrf}
<fieldset><legend>Choose an amount</legend><div class="packs">{packs}</div>
<label for="custom">Or another amount in USD</label><input id="custom" name="custom" inputmode="decimal" value="{custom}" placeholder="e.g. 15"></fieldset>
<button type="submit">Continue to payment</button></form>
{usdc}
<section aria-labelledby="pay-h"><h2 id="pay-h">Payments</h2>{subscription}{payments}</section>"#,
        balance = show_usd(&balance["credits_usd"]),
        csrf = csrf_field(session),
        custom = esc(&custom),
        payments = payments_table(&history["payments"]),
    );
    Ok(Page::html(layout::page("Billing", session, "/dashboard/settings/billing", &body)))
}

/// The return from Checkout: credited already, or a progress state that the
/// page script polls (`status`) until the webhook has landed. The session is
/// among the latest payments the page already has; asked for by id only if not.
async fn checkout_state(api: &Backend<'_>, history: &Value, session_id: &str) -> Result<String, PageError> {
    let latest = history["payments"].as_array().and_then(|p| p.iter().find(|p| p["id"] == session_id)).cloned();
    let payment = match latest {
        Some(p) => Some(p),
        None => api.get("BILLING", &format!("/api/billing/history?checkout_session_id={}", encode(session_id))).await?["payments"][0].as_object().map(|o| Value::Object(o.clone())),
    };
    let Some(payment) = payment else {
        return Ok(r#"<p class="error" role="alert">We could not find that payment on your account.</p>"#.into());
    };
    Ok(match payment["status"].as_str() {
        Some("paid") => format!(r#"<p class="notice" role="status" id="topup-done">Payment received: {} added to your balance.</p>"#, usd(Micros(payment["credit_micros"].as_i64().unwrap_or(0)))),
        Some("pending") => format!(
            r#"<div class="notice" role="status" aria-live="polite" id="topup-pending" data-session="{}"><p>Waiting for the payment to be confirmed…</p><progress aria-label="Waiting for confirmation"></progress><p><a href="">Refresh</a></p></div>"#,
            esc(session_id)
        ),
        Some(other) => format!(r#"<p class="error" role="alert">This payment is {}.</p>"#, esc(other)),
        None => String::new(),
    })
}

fn payments_table(payments: &Value) -> String {
    let rows: String = payments
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            format!(
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                esc(&when(p["created_at"].as_i64())),
                esc(p["kind"].as_str().unwrap_or("")),
                usd(Micros(p["credit_micros"].as_i64().unwrap_or(0))),
                esc(p["status"].as_str().unwrap_or("")),
            )
        })
        .collect();
    crate::layout::table("payments", &["When", "Kind", "Credit", "Status"], &rows, "No payments yet.")
}

/// `POST …/checkout` (CSRF): a Checkout Session for the chosen amount, then
/// off to Stripe. Stripe brings the browser back with the session id.
pub async fn checkout(req: &mut Request, env: &Env, session: &Session) -> PageResult {
    let form = crate::form::read(req).await?;
    check_csrf(req, session, form.get("csrf").map(String::as_str))?;
    let amount = form.get("custom").map(|c| c.trim().trim_start_matches('$').to_string()).filter(|c| !c.is_empty()).or_else(|| form.get("pack").cloned());
    let amount = amount.ok_or_else(|| GatewayError::BadRequest("Choose an amount.".into()))?;
    let credits: Value = serde_json::from_str(&amount).map_err(|_| GatewayError::BadRequest("The amount must be a number of dollars, like 25 or 12.50.".into()))?;
    let origin = own_origin(req);
    let created = Backend::new(env, req, session)
        .send(
            "BILLING",
            Method::Post,
            "/api/billing/checkout-session",
            json!({"credits_usd": credits,
                   "return_url": format!("{origin}/dashboard/settings/billing?session_id={{CHECKOUT_SESSION_ID}}"),
                   "cancel_url": format!("{origin}/dashboard/settings/billing?cancelled=1")}),
        )
        .await?;
    let url = created["checkout_url"].as_str().ok_or(GatewayError::UpstreamUnavailable)?;
    Ok(Page::redirect(url))
}

/// `GET …/status?session_id=` (JSON, polled by the return page).
pub async fn status(req: &Request, env: &Env, session: &Session) -> PageResult {
    let id = query(req).get("session_id").cloned().unwrap_or_default();
    let api = Backend::new(env, req, session);
    let found = api.get("BILLING", &format!("/api/billing/history?checkout_session_id={}", encode(&id))).await?;
    let status = found["payments"][0]["status"].as_str().unwrap_or("unknown").to_string();
    Ok(Page { status: 200, body: PageBody::Json(json!({"status": status})), cookies: Vec::new() })
}

/// `POST /dashboard/settings/billing/crypto`: confirms a USDC transfer
/// (`crypto.rs`) and shows the billing page with the outcome at the top.
pub async fn confirm_usdc(req: &mut Request, env: &Env, session: &Session) -> PageResult {
    let (status, outcome) = super::crypto::confirm(req, env, session).await?;
    let mut page = render(req, env, session, Some(&outcome)).await?;
    page.status = status;
    Ok(page)
}
