//! Projection of wallet changes into D1. The DO commits a change and its outbox
//! entry in one local transaction; this module later writes the entry's rows
//! (credit_ledger, usage_ledger, balances) to D1 in one `batch` — atomic there —
//! and only then deletes the entry. Every statement is idempotent (unique
//! reference / request id, version-guarded balance), so a retry after a crash or
//! a concurrent double flush changes nothing.

use super::store::Store;
use dexto_shared::wallet::{PaymentEffect, UsageRecord};
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, Result};

/// Entries per D1 batch (at most 3 statements each, fewer when batched:
/// `flush`; well under D1's per-invocation limits).
const FLUSH_BATCH: i64 = 25;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub id: String,
    pub user_id: String,
    pub seq: i64,
    pub kind: String,
    pub amount: i64,
    pub balance_after: i64,
    pub reference: String,
    pub reason: Option<String>,
    pub created_at: i64,
    pub usage: Option<UsageRecord>,
    #[serde(default)]
    pub payment: Option<PaymentEffect>,
    /// How much of `amount` moved the included bucket (plans), and that
    /// bucket after the change (None: an entry from before plans, when the
    /// bucket was 0 and stayed so).
    #[serde(default)]
    pub included: i64,
    #[serde(default)]
    pub included_after: Option<i64>,
}

fn js_i64(v: i64) -> JsValue {
    JsValue::from_f64(v as f64)
}

fn js_opt(v: &Option<String>) -> JsValue {
    v.as_deref().map_or(JsValue::NULL, JsValue::from_str)
}

const CREDIT_INSERT: &str = "INSERT INTO credit_ledger (id, user_id, seq, kind, amount_micros, balance_after_micros, reference, reason, created_at, included_micros)";
const CREDIT_COLUMNS: usize = 10;
const USAGE_INSERT: &str = "INSERT INTO usage_ledger (request_id, user_id, key_id, model, generation_id, prompt_tokens, completion_tokens,
   cached_tokens, reasoning_tokens, provider_cost_micros, user_price_micros, price_basis, billing_status,
   upstream_status, stream, cancelled, session_id, client_source, client_version, latency_ms, created_at, markup_bps, api)";
const USAGE_COLUMNS: usize = 23;

/// D1 binds at most 100 parameters to one statement.
const MAX_PARAMETERS: usize = 100;

/// The entry's `credit_ledger` row (none for a change of 0).
fn credit_row(e: &LedgerEntry) -> Option<Vec<JsValue>> {
    (e.amount != 0).then(|| {
        vec![
            e.id.as_str().into(),
            e.user_id.as_str().into(),
            js_i64(e.seq),
            e.kind.as_str().into(),
            js_i64(e.amount),
            js_i64(e.balance_after),
            e.reference.as_str().into(),
            js_opt(&e.reason),
            js_i64(e.created_at),
            js_i64(e.included),
        ]
    })
}

/// The entry's `usage_ledger` row (a settled request's).
fn usage_row(e: &LedgerEntry) -> Option<Vec<JsValue>> {
    let u = e.usage.as_ref()?;
    Some(vec![
        u.request_id.as_str().into(),
        u.user_id.as_str().into(),
        u.key_id.as_str().into(),
        u.model.as_str().into(),
        js_opt(&u.generation_id),
        js_i64(u.prompt_tokens as i64),
        js_i64(u.completion_tokens as i64),
        js_i64(u.cached_tokens as i64),
        js_i64(u.reasoning_tokens as i64),
        js_i64(u.provider_cost.0),
        js_i64(u.user_price.0),
        u.price_basis.as_str().into(),
        u.billing_status.as_str().into(),
        u.upstream_status.map_or(JsValue::NULL, |s| js_i64(s as i64)),
        js_i64(u.stream as i64),
        js_i64(u.cancelled as i64),
        js_opt(&u.session_id),
        js_opt(&u.client_source),
        js_opt(&u.client_version),
        js_i64(u.latency_ms),
        js_i64(u.created_at),
        u.markup_bps.map_or(JsValue::NULL, |m| js_i64(m as i64)),
        u.api.name().into(),
    ])
}

/// Rows of one table as few statements as D1 allows: `INSERT … VALUES (…),
/// (…) ON CONFLICT … DO NOTHING`, each with the entries (by index) of its rows.
fn inserts(db: &D1Database, insert: &str, columns: usize, conflict: &str, rows: &[(usize, Vec<JsValue>)]) -> Result<Vec<(D1PreparedStatement, Vec<usize>)>> {
    let one = format!("({})", vec!["?"; columns].join(", "));
    rows.chunks(MAX_PARAMETERS / columns)
        .map(|chunk| {
            let sql = format!("{insert} VALUES {} ON CONFLICT({conflict}) DO NOTHING", vec![one.as_str(); chunk.len()].join(", "));
            let parameters: Vec<JsValue> = chunk.iter().flat_map(|(_, row)| row.iter().cloned()).collect();
            Ok((db.prepare(&sql).bind(&parameters)?, chunk.iter().map(|(entry, _)| *entry).collect()))
        })
        .collect()
}

/// The user's balance as of `e` (guarded by its sequence number: an older
/// entry never overwrites a newer balance).
fn balance_statement(db: &D1Database, e: &LedgerEntry) -> Result<D1PreparedStatement> {
    db.prepare(
        "INSERT INTO balances (user_id, balance_micros, version, updated_at, included_micros) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(user_id) DO UPDATE SET balance_micros = excluded.balance_micros,
           version = excluded.version, updated_at = excluded.updated_at, included_micros = excluded.included_micros
         WHERE excluded.version > balances.version",
    )
    .bind(&[e.user_id.as_str().into(), js_i64(e.balance_after), js_i64(e.seq), js_i64(e.created_at), js_i64(e.included_after.unwrap_or(0))])
}

/// The webhook dedupe record and the transaction status, in the same batch as
/// the ledger row the payment caused. A status never goes back in time: an
/// entry projected again after a restart (a no-op for its ledger row) must not
/// undo a later change (`disputed`, written by the billing Worker directly).
fn payment_statements(db: &D1Database, e: &LedgerEntry, p: &PaymentEffect) -> Result<Vec<D1PreparedStatement>> {
    let (event_id, event_type) = match p {
        PaymentEffect::Fulfilled { event_id, event_type, .. } | PaymentEffect::StatusChanged { event_id, event_type, .. } => (event_id, event_type),
    };
    let mut out = vec![db
        .prepare("INSERT INTO processed_webhook_events (event_id, event_type, processed_at) VALUES (?1, ?2, ?3) ON CONFLICT(event_id) DO NOTHING")
        .bind(&[event_id.as_str().into(), event_type.as_str().into(), js_i64(e.created_at)])?];
    out.push(match p {
        PaymentEffect::Fulfilled { session_id, amount_minor, currency, payment_intent, .. } => db
            .prepare(
                "INSERT INTO stripe_transactions (id, user_id, kind, amount_minor, currency, credit_micros, status, payment_intent, created_at, updated_at)
                 VALUES (?1, ?2, 'checkout', ?3, ?4, ?5, 'paid', ?6, ?7, ?7)
                 ON CONFLICT(id) DO UPDATE SET
                   status = CASE WHEN excluded.updated_at >= stripe_transactions.updated_at THEN 'paid' ELSE stripe_transactions.status END,
                   amount_minor = excluded.amount_minor, currency = excluded.currency,
                   credit_micros = excluded.credit_micros, payment_intent = COALESCE(excluded.payment_intent, stripe_transactions.payment_intent),
                   updated_at = MAX(stripe_transactions.updated_at, excluded.updated_at)",
            )
            .bind(&[
                session_id.as_str().into(),
                e.user_id.as_str().into(),
                js_i64(*amount_minor),
                currency.as_str().into(),
                js_i64(e.amount),
                js_opt(payment_intent),
                js_i64(e.created_at),
            ])?,
        PaymentEffect::StatusChanged { transaction_id, status, .. } => db
            .prepare("UPDATE stripe_transactions SET status = ?2, updated_at = ?3 WHERE id = ?1 AND updated_at <= ?3")
            .bind(&[transaction_id.as_str().into(), status.as_str().into(), js_i64(e.created_at)])?,
    });
    Ok(out)
}

async fn ensure_replay(db: &D1Database, e: &LedgerEntry) -> Result<()> {
    #[derive(Deserialize)]
    struct Row {
        seq: Option<i64>,
        usage_user: Option<String>,
    }
    let request_id = e.usage.as_ref().map_or("", |u| u.request_id.as_str());
    let existing: Option<Row> = db
        .prepare(
            "SELECT (SELECT seq FROM credit_ledger WHERE user_id = ?1 AND reference = ?2) AS seq,
                    (SELECT user_id FROM usage_ledger WHERE request_id = ?3) AS usage_user",
        )
        .bind(&[e.user_id.as_str().into(), e.reference.as_str().into(), request_id.into()])?
        .first(None)
        .await?;
    let ours = |r: &Row| (e.amount == 0 || r.seq == Some(e.seq)) && (e.usage.is_none() || r.usage_user.as_deref() == Some(e.user_id.as_str()));
    match existing {
        Some(row) if ours(&row) => Ok(()),
        other => {
            let found = other.and_then(|r| r.seq);
            dexto_shared::log::event(
                "ledger.conflict",
                serde_json::json!({"user_id": e.user_id, "reference": e.reference, "seq": e.seq, "existing_seq": found}),
            );
            Err(format!("ledger row {} for {} conflicts with seq {found:?}", e.seq, e.reference).into())
        }
    }
}

/// Writes pending entries to D1 until the outbox is empty. Returns how many
/// entries were projected. On error the entries stay and the caller schedules
/// a retry (alarm).
///
/// A pass's entries (one user's: this object's) go in one batch of as few
/// statements as D1's parameter limit allows: their ledger rows and usage
/// rows in multi-row inserts, their payments' records, and the balance once,
/// as of the last entry. On a busy wallet a pass carries a hundred
/// milliseconds of settlements, and a statement each cost D1 (and, locally,
/// the wallet's own thread) work per settlement that one statement per
/// table does once.
pub async fn flush(store: &Store, db: &D1Database) -> Result<usize> {
    let mut flushed = 0;
    loop {
        let rows = store.outbox(FLUSH_BATCH)?;
        let Some(last) = rows.last().map(|r| r.seq) else {
            return Ok(flushed);
        };
        let entries = rows.iter().map(|row| serde_json::from_str::<LedgerEntry>(&row.payload)).collect::<std::result::Result<Vec<_>, _>>()?;
        let credit: Vec<_> = entries.iter().enumerate().filter_map(|(i, e)| Some((i, credit_row(e)?))).collect();
        let usage: Vec<_> = entries.iter().enumerate().filter_map(|(i, e)| Some((i, usage_row(e)?))).collect();
        let mut inserted = inserts(db, CREDIT_INSERT, CREDIT_COLUMNS, "user_id, reference", &credit)?;
        inserted.extend(inserts(db, USAGE_INSERT, USAGE_COLUMNS, "request_id", &usage)?);
        let (mut batch, covers): (Vec<_>, Vec<_>) = inserted.into_iter().unzip();
        for e in &entries {
            if let Some(p) = &e.payment {
                batch.extend(payment_statements(db, e, p)?);
            }
        }
        if let Some(newest) = entries.iter().max_by_key(|e| e.seq) {
            batch.push(balance_statement(db, newest)?);
        }
        let results = db.batch(batch).await?;
        dexto_shared::ops::d1(&results);
        if let Some(failed) = results.iter().find(|r| !r.success()) {
            return Err(failed.error().unwrap_or_else(|| "D1 batch failed".into()).into());
        }
        // A row that was not inserted must be this very entry's, already
        // projected (a replay); anything else would be a row silently lost.
        // An insert that wrote fewer rows than it carried has each of its
        // entries checked.
        let changes = |i: usize| results.get(i).and_then(dexto_shared::db::changes).unwrap_or(usize::MAX);
        // The inserts are the batch's first statements, in `covers`' order.
        for (i, entries_of) in covers.iter().enumerate() {
            if changes(i) < entries_of.len() {
                for &entry in entries_of {
                    ensure_replay(db, &entries[entry]).await?;
                }
            }
        }
        // Storage was awaited on D1 only: pending rows with seq ≤ last are exactly
        // the ones sent (new entries always get a larger seq).
        store.mark_projected(last, rows.len() as u64);
        flushed += rows.len();
        if rows.len() < FLUSH_BATCH as usize {
            // That was all of it; entries added while D1 was awaited are seen
            // by the caller's next pass (it asks for the outbox's length).
            return Ok(flushed);
        }
    }
}
