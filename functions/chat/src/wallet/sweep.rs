//! The backstop that makes every hold end in exactly one settlement, whatever
//! dies. An exchange is owned by this object; a deploy, a runtime update or an
//! eviction can still end the object mid-exchange, and with it the owner. Its
//! hold, terms and generation id are in storage, and so is the alarm. When a
//! hold's deadline passes and its exchange is not running in this incarnation,
//! the sweep settles it:
//! - with a generation id: from the upstream's `GET /generation?id=` (exact
//!   cost and tokens, `cancelled`), capped at the hold; retried with backoff
//!   while the upstream has no record yet;
//! - without one, or when the record never appears: a provisional charge of
//!   the hold, `needs_review`, for reconciliation.
//!
//! Settlement is idempotent on the request id, so a sweep racing another
//! sweep, or the owner, changes nothing twice.

use super::ledger::Ledger;
use crate::config::Config;
use crate::metering::{self, Outcome};
use crate::upstream;
use dexto_shared::billing::provisional;
use dexto_shared::http::now_ms;
use dexto_shared::wallet::{ExchangeTerms, OpenHold};
use serde::Serialize;

/// Lookups of a generation record before settling provisionally.
const MAX_ATTEMPTS: i64 = 6;
/// First retry delay; doubled per attempt (5 s … 160 s).
const RETRY_BASE_MS: i64 = 5_000;

#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Settled from the upstream's generation record.
    pub settled: u32,
    /// Settled provisionally at the hold (needs_review).
    pub provisional: u32,
    /// Waiting for the upstream's record (retried later).
    pub pending: u32,
    /// Still running here: deadline moved on.
    pub live: u32,
    /// Holds without terms (written before exchanges were recorded): released, logged.
    pub released: u32,
}

/// Settles every hold past its deadline whose exchange is not running here
/// (`force`: also those not yet due — the operator's and tests' lever).
pub async fn run(ledger: &Ledger, force: bool) -> Report {
    let mut report = Report::default();
    let store = ledger.store();
    let now = now_ms();
    let holds = if force { store.open_holds() } else { store.due_holds(now) };
    let holds = match holds {
        Ok(h) => h,
        Err(e) => {
            dexto_shared::log::event("sweep.failed", serde_json::json!({"error": e.to_string()}));
            return report;
        }
    };
    let config = Config::from_env(&ledger.env);
    for hold in holds {
        if ledger.is_live(&hold.request_id) {
            // Its owner is this very incarnation, still at work: a heartbeat.
            let _ = store.extend_hold(&hold.request_id, now + config.hold_ttl_ms);
            report.live += 1;
            continue;
        }
        if let Err(e) = settle_one(ledger, &config, &hold, &mut report).await {
            dexto_shared::log::event("sweep.failed", serde_json::json!({"request_id": hold.request_id, "error": e}));
        }
    }
    if report.settled + report.provisional + report.pending + report.released > 0 {
        dexto_shared::log::event("sweep.done", serde_json::to_value(&report).unwrap_or_default());
    }
    report
}

async fn settle_one(ledger: &Ledger, config: &Config, hold: &OpenHold, report: &mut Report) -> Result<(), String> {
    let store = ledger.store();
    let Some(row) = store.exchange(&hold.request_id).map_err(|e| e.to_string())? else {
        ledger.release(&hold.request_id).map_err(|e| e.to_string())?;
        dexto_shared::log::event("hold.released_without_terms", serde_json::json!({"request_id": hold.request_id, "amount_micros": hold.amount.0}));
        report.released += 1;
        return Ok(());
    };
    let terms: ExchangeTerms = serde_json::from_str(&row.terms).map_err(|e| e.to_string())?;
    // Recorded in the key-value storage (generation_ids.rs); objects before it
    // kept the id in the exchange's row.
    let generation_id = match row.generation_id {
        Some(id) => Some(id),
        None => ledger.generation_ids.get(&hold.request_id).await.map_err(|e| e.to_string())?,
    };
    let mut outcome = Outcome { generation_id: generation_id.clone(), cancelled: true, ..Outcome::default() };
    let charge = match &generation_id {
        Some(id) => match upstream::generation(&ledger.env, config, &terms.user_id, id).await {
            Ok(Some((usage, cancelled))) => {
                outcome.usage = Some(usage);
                outcome.cancelled = cancelled;
                outcome.upstream_status = 200;
                metering::price(&terms, &outcome)
            }
            failed if row.attempts + 1 < MAX_ATTEMPTS => {
                // Upstream records appear a little after the generation ends.
                store.count_attempt(&hold.request_id).map_err(|e| e.to_string())?;
                let retry = now_ms() + (RETRY_BASE_MS << row.attempts);
                store.extend_hold(&hold.request_id, retry).map_err(|e| e.to_string())?;
                dexto_shared::log::event("sweep.retry", serde_json::json!({"request_id": hold.request_id, "attempt": row.attempts + 1, "error": failed.err()}));
                report.pending += 1;
                return Ok(());
            }
            _ => provisional(terms.hold),
        },
        None => provisional(terms.hold),
    };
    let record = metering::record(&terms, &outcome, &charge);
    let settled = ledger.settle(&record).map_err(|e| e.to_string())?;
    if generation_id.is_some() {
        // Written by an earlier incarnation, which this one does not know of.
        ledger.generation_ids.remove(&hold.request_id).map_err(|e| e.to_string())?;
    }
    if settled.replay {
        return Ok(());
    }
    if outcome.usage.is_some() {
        report.settled += 1;
    } else {
        report.provisional += 1;
    }
    metering::log("sweep", &record, &charge, terms.hold, Some(settled.balance), serde_json::json!({}));
    crate::metrics::settled(&ledger.env, &record, "sweep");
    Ok(())
}
