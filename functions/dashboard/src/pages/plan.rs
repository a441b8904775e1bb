//! The plan section of `/dashboard/settings/billing` (docs/ARCHITECTURE.md,
//! "Plans"): the plan, its period, included credit left and when it resets,
//! purchased credit, a failed renewal's grace, and a plan change with a
//! preview of what each change does before it is made. Changes go through
//! the billing API (`/api/billing/subscription`, `/api/billing/portal`).

use super::show_usd;
use crate::backend::Backend;
use crate::layout::csrf_field;
use crate::respond::{Page, PageResult};
use crate::session::{check_csrf, own_origin, Session};
use dexto_shared::error::GatewayError;
use dexto_shared::web::html::{esc, when};
use serde_json::{json, Value};
use worker::{Env, Method, Request};

/// What choosing `plan` would do, in words (from the API's preview).
fn preview_text(plan: &Value) -> String {
    let p = &plan["preview"];
    match p["change"].as_str() {
        Some("current") => "Your plan.".into(),
        Some("subscribe") => format!("Subscribe: {} of included credit each month, from the first payment.", show_usd(&plan["included_usd"])),
        Some("upgrade") => format!("Upgrade now: {} of included credit added for the rest of this period; the price difference is charged now.", show_usd(&p["included_now_usd"])),
        Some("downgrade") => format!("From {}: this period keeps your current plan and its credit.", esc(&when(p["at"].as_i64()))),
        _ => String::new(),
    }
}

/// What the page says after a plan action (`?plan=`), if anything.
pub fn notice(action: Option<&str>) -> &'static str {
    match action {
        Some("subscribed") => r#"<p class="notice" role="status" id="plan-notice">Thank you: your plan starts as soon as Stripe confirms the payment (a moment, usually). Refresh to see it.</p>"#,
        Some("changing") => r#"<p class="notice" role="status" id="plan-notice">Your plan change was sent to Stripe; it shows here as soon as Stripe confirms it.</p>"#,
        Some("canceling") => r#"<p class="notice" role="status" id="plan-notice">Your plan will end at the end of the period; until then nothing changes.</p>"#,
        _ => "",
    }
}

/// The section; `balance` is `/api/billing/balance`'s answer (with the split and the plan).
pub async fn section(api: &Backend<'_>, session: &Session, balance: &Value) -> Result<String, crate::respond::PageError> {
    let plans = api.get("BILLING", "/api/billing/plans").await?;
    let current = &balance["plan"];
    let subscribed = current["period_end"].as_i64().is_some();
    let status = current["status"].as_str().unwrap_or("active");
    let period = if subscribed {
        format!("<p>Period: {} – {}</p>", esc(&when(current["period_start"].as_i64())), esc(&when(current["period_end"].as_i64())))
    } else {
        String::new()
    };
    let resets = match current["included_resets_at"].as_i64() {
        Some(at) if current["rollover"] == true => format!(", resets {} (up to {} rolls over)", esc(&when(Some(at))), show_usd(&current["rollover_cap_usd"])),
        Some(at) => format!(", resets {}", esc(&when(Some(at)))),
        None => String::new(),
    };
    let notice = match status {
        "past_due" => format!(
            r#"<p class="error" role="alert" id="plan-past-due">Your last payment failed. Update your card in the billing portal before {}, or the account falls back to the free plan.</p>"#,
            esc(&when(current["grace_until"].as_i64()))
        ),
        "canceling" => format!(r#"<p class="notice" role="status">Your plan ends on {}; then the free plan applies.</p>"#, esc(&when(current["period_end"].as_i64()))),
        _ => String::new(),
    };
    let choices: String = plans["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["preview"]["change"] != "current" || subscribed)
        .map(|p| {
            let id = p["id"].as_str().unwrap_or("");
            let is_current = p["preview"]["change"] == "current";
            format!(
                r#"<label class="plan"><input type="radio" name="plan_id" value="{id}"{disabled}> <strong>{name}</strong> — {included} included per month <span class="preview" data-plan="{id}">{preview}</span></label>"#,
                id = esc(id),
                disabled = if is_current { " disabled" } else { "" },
                name = esc(p["name"].as_str().unwrap_or(id)),
                included = show_usd(&p["included_usd"]),
                preview = preview_text(p),
            )
        })
        .collect();
    let manage = if subscribed {
        format!(
            r#"<form method="post" action="/dashboard/settings/billing/plan/cancel">{csrf}<button type="submit">Cancel at the end of the period</button></form>
<form method="post" action="/dashboard/settings/billing/portal">{csrf}<button type="submit">Cards and invoices</button></form>"#,
            csrf = csrf_field(session)
        )
    } else {
        String::new()
    };
    Ok(format!(
        r#"<section aria-labelledby="plan-h"><h2 id="plan-h">Plan</h2>{notice}
<p>Plan: <strong id="plan-name">{name}</strong> ({status})</p>{period}
<p>Included credit left: <strong id="included-credit">{included}</strong>{resets}</p>
<p>Purchased credit: <strong id="purchased-credit">{purchased}</strong> (never expires; spent after included credit)</p>
<form method="post" action="/dashboard/settings/billing/plan" class="stack">{csrf}<fieldset><legend>Change plan</legend>{choices}</fieldset>
<button type="submit">Change plan</button></form>{manage}</section>"#,
        name = esc(current["name"].as_str().unwrap_or("Free")),
        status = esc(status),
        included = show_usd(&balance["included_credits_usd"]),
        purchased = show_usd(&balance["purchased_credits_usd"]),
        csrf = csrf_field(session),
    ))
}

/// `POST …/plan` (CSRF): subscribe through Checkout, or change the plan.
pub async fn change(req: &mut Request, env: &Env, session: &Session) -> PageResult {
    let form = crate::form::read(req).await?;
    check_csrf(req, session, form.get("csrf").map(String::as_str))?;
    let plan = form.get("plan_id").cloned().ok_or_else(|| GatewayError::BadRequest("Choose a plan.".into()))?;
    let origin = own_origin(req);
    let done = Backend::new(env, req, session)
        .send(
            "BILLING",
            Method::Post,
            "/api/billing/subscription",
            json!({"plan_id": plan,
                   "return_url": format!("{origin}/dashboard/settings/billing?plan=subscribed"),
                   "cancel_url": format!("{origin}/dashboard/settings/billing?cancelled=1")}),
        )
        .await?;
    Ok(Page::redirect(done["checkout_url"].as_str().unwrap_or("/dashboard/settings/billing?plan=changing")))
}

/// `POST …/plan/cancel` (CSRF): cancel at the end of the period.
pub async fn cancel(req: &mut Request, env: &Env, session: &Session) -> PageResult {
    let form = crate::form::read(req).await?;
    check_csrf(req, session, form.get("csrf").map(String::as_str))?;
    Backend::new(env, req, session).send("BILLING", Method::Delete, "/api/billing/subscription", json!({})).await?;
    Ok(Page::redirect("/dashboard/settings/billing?plan=canceling"))
}

/// `POST …/portal` (CSRF): off to Stripe's billing portal.
pub async fn portal(req: &mut Request, env: &Env, session: &Session) -> PageResult {
    let form = crate::form::read(req).await?;
    check_csrf(req, session, form.get("csrf").map(String::as_str))?;
    let back = format!("{}/dashboard/settings/billing", own_origin(req));
    let portal = Backend::new(env, req, session).send("BILLING", Method::Post, "/api/billing/portal", json!({"return_url": back})).await?;
    let url = portal["url"].as_str().ok_or(GatewayError::UpstreamUnavailable)?;
    Ok(Page::redirect(url))
}
