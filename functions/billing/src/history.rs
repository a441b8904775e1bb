//! `GET /api/billing/history` (session): what the dashboard shows of money
//! moving — the account's Stripe payments (top-ups with their status, so the
//! return page can tell when a Checkout Session has been credited), its
//! subscription, and the latest credit-ledger entries (usage, top-ups,
//! refunds, disputes, grants). `?checkout_session_id=` narrows the payments
//! to one session.

use crate::ApiResult;
use dexto_shared::db;
use dexto_shared::http::ok_json;
use dexto_shared::money::Micros;
use serde::Deserialize;
use serde_json::{json, Value};
use worker::{Env, Request};

const PAYMENTS: i64 = 50;
const LEDGER: i64 = 25;

#[derive(Deserialize)]
struct Payment {
    id: String,
    kind: String,
    amount_minor: i64,
    currency: String,
    credit_micros: i64,
    status: String,
    created_at: i64,
    updated_at: i64,
}

#[derive(Deserialize)]
struct Entry {
    id: String,
    kind: String,
    amount_micros: i64,
    balance_after_micros: i64,
    reason: Option<String>,
    created_at: i64,
}

#[derive(Deserialize)]
struct Subscription {
    id: String,
    status: String,
    updated_at: i64,
}

pub async fn history(req: &Request, env: &Env) -> ApiResult {
    let user = dexto_shared::session::authenticate(req.headers(), env).await?;
    let only = dexto_shared::url_query::pairs(&req.inner().url()).into_iter().find(|(k, _)| k == "checkout_session_id").map(|(_, v)| v);
    let database = db::database(env)?;
    let uid = user.id.as_str();
    let payments: Vec<Payment> = match &only {
        Some(session) => db::all(&database, "SELECT id, kind, amount_minor, currency, credit_micros, status, created_at, updated_at FROM stripe_transactions WHERE user_id = ?1 AND id = ?2", &[uid.into(), session.as_str().into()]).await?,
        None => db::all(&database, "SELECT id, kind, amount_minor, currency, credit_micros, status, created_at, updated_at FROM stripe_transactions WHERE user_id = ?1 ORDER BY created_at DESC LIMIT ?2", &[uid.into(), db::ms(PAYMENTS)]).await?,
    };
    let ledger: Vec<Entry> = db::all(
        &database,
        "SELECT id, kind, amount_micros, balance_after_micros, reason, created_at FROM credit_ledger WHERE user_id = ?1 ORDER BY seq DESC LIMIT ?2",
        &[uid.into(), db::ms(LEDGER)],
    )
    .await?;
    let subscription: Option<Subscription> = db::first(&database, "SELECT id, status, updated_at FROM subscriptions WHERE user_id = ?1 ORDER BY updated_at DESC LIMIT 1", &[uid.into()]).await?;
    let payments: Vec<Value> = payments
        .iter()
        .map(|p| {
            json!({"id": p.id, "kind": p.kind, "amount_minor": p.amount_minor, "currency": p.currency,
                "credit_usd": Micros(p.credit_micros).as_json_usd(), "credit_micros": p.credit_micros,
                "status": p.status, "created_at": p.created_at, "updated_at": p.updated_at})
        })
        .collect();
    let ledger: Vec<Value> = ledger
        .iter()
        .map(|e| {
            json!({"id": e.id, "kind": e.kind, "amount_micros": e.amount_micros, "balance_after_micros": e.balance_after_micros,
                "reason": e.reason, "created_at": e.created_at})
        })
        .collect();
    let subscription = subscription.map(|s| json!({"id": s.id, "status": s.status, "updated_at": s.updated_at}));
    ok_json(200, &json!({"payments": payments, "ledger": ledger, "subscription": subscription}))
}
