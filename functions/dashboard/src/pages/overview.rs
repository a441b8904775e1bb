//! `GET /dashboard`: balance, month-to-date spend, daily spend by model over
//! the last 30 days (from the usage ledger), and the latest ledger entries.

use super::{show_usd, usd_of};
use crate::backend::Backend;
use crate::layout;
use crate::respond::{Page, PageResult};
use crate::session::Session;
use dexto_shared::money::Micros;
use dexto_shared::time::date;
use dexto_shared::web::chart::{self, DaySpend};
use dexto_shared::web::html::{esc, usd, when};
use serde_json::Value;
use worker::{Env, Request};

const DAY_MS: i64 = 86_400_000;
const CHART_DAYS: i64 = 30;

pub async fn page(req: &Request, env: &Env, session: &Session) -> PageResult {
    let api = Backend::new(env, req, session);
    let now = dexto_shared::http::now_ms();
    let days: Vec<String> = (0..CHART_DAYS).rev().map(|i| date(now - i * DAY_MS)).collect();
    let summary_path = format!("/me/usage/summary?group_by=day_model&from={}&to={}", days[0], days[days.len() - 1]);
    let (me, summary, history) = futures::try_join!(api.get("USAGE", "/me/usage"), api.get("USAGE", &summary_path), api.get("BILLING", "/api/billing/history"))?;
    let rows: Vec<DaySpend> = summary["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| DaySpend { day: g["day"].as_str().unwrap_or("").into(), model: g["model"].as_str().unwrap_or("").into(), cost: usd_of(&g["user_price_usd"]).unwrap_or(Micros::ZERO) })
        .collect();
    let chart = if rows.is_empty() {
        r#"<p class="empty">No usage yet. Calls made with your API keys show up here.</p>"#.to_string()
    } else {
        chart::render(&days, &rows)
    };
    let body = format!(
        r#"<h1>Overview</h1>
<section class="cards" aria-label="Account summary">
<div class="card"><h2>Balance</h2><p class="big" id="balance">{balance}</p><a href="/dashboard/settings/billing">Add credit</a></div>
<div class="card"><h2>Spent this month</h2><p class="big" id="mtd">{mtd}</p></div>
<div class="card"><h2>Requests this month</h2><p class="big">{requests}</p></div>
</section>
<section aria-labelledby="spend-h"><h2 id="spend-h">Daily spend by model, last 30 days</h2>{chart}</section>
<section aria-labelledby="ledger-h"><h2 id="ledger-h">Recent activity</h2>{ledger}</section>"#,
        balance = show_usd(&me["credits_usd"]),
        mtd = show_usd(&me["mtd_usage"]["total_cost_usd"]),
        requests = me["mtd_usage"]["total_requests"].as_i64().unwrap_or(0),
        ledger = ledger_table(&history["ledger"]),
    );
    Ok(Page::html(layout::page("Overview", session, "/dashboard", &body)))
}

fn kind_label(kind: &str) -> &str {
    match kind {
        "usage" => "Usage",
        "topup" => "Top-up",
        "refund" => "Refund",
        "dispute" => "Dispute",
        "admin_credit" => "Adjustment",
        "intro_credit" => "Welcome credit",
        "subscription" => "Subscription credit",
        "usage_correction" => "Usage correction",
        other => other,
    }
}

fn ledger_table(entries: &Value) -> String {
    let rows: String = entries
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            format!(
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                esc(&when(e["created_at"].as_i64())),
                esc(kind_label(e["kind"].as_str().unwrap_or(""))),
                usd(Micros(e["amount_micros"].as_i64().unwrap_or(0))),
                usd(Micros(e["balance_after_micros"].as_i64().unwrap_or(0))),
                esc(e["reason"].as_str().unwrap_or("")),
            )
        })
        .collect();
    layout::table("ledger", &["When", "What", "Amount", "Balance after", "Note"], &rows, "No activity yet.")
}
