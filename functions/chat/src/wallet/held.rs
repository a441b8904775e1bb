//! A held exchange: an admitted request whose hold is placed, on its way
//! through the upstream call to its settlement. What the reply (non-stream,
//! `exchange.rs`, or stream, `pipe.rs`) and the settlement need, and the
//! hold's life cycle (generation id, heartbeat, release, hand-off to the
//! sweep, settling exactly once through the ledger).

use super::ledger::Ledger;
use crate::metering::{self, Outcome};
use dexto_shared::billing::Charge;
use dexto_shared::http::{clock_ms, now_ms, REQUEST_ID_HEADER};
use dexto_shared::money::Micros;
use dexto_shared::phases::Phases;
use dexto_shared::wallet::ExchangeTerms;
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use worker::{Headers, Result};

/// Response header: the output ceiling forwarded upstream (`max_tokens`).
pub const MAX_TOKENS_HEADER: &str = "X-Dexto-Max-Tokens";
/// Response header, present when that ceiling was lowered to what the wallet affords.
pub const CLAMPED_HEADER: &str = "X-Dexto-Output-Clamped";

/// A held exchange: what its settlement and its reply need.
pub struct Exchange {
    pub ledger: Ledger,
    pub terms: ExchangeTerms,
    pub max_tokens: u64,
    pub clamped: bool,
    pub balance_at_hold: Micros,
    pub rate_limit_remaining: Option<u32>,
    pub hold_ms: i64,
    pub ttl_ms: i64,
    pub die_after_events: Option<u64>,
    /// Where this request's time went (chat Worker's phases, then ours).
    pub phases: RefCell<Phases>,
    /// Whether the generation id is recorded (it is written once).
    pub generation_noted: Rc<Cell<bool>>,
    /// How a remembered prompt count lowered the hold's prompt bound, if it did.
    pub prompt_bound: Option<Value>,
}

impl Exchange {
    /// Headers every reply carries: request id, the applied output ceiling,
    /// rate limit, timing.
    pub fn headers(&self) -> Result<Headers> {
        let h = Headers::new();
        h.set(REQUEST_ID_HEADER, &self.terms.request_id)?;
        h.set(MAX_TOKENS_HEADER, &self.max_tokens.to_string())?;
        if self.clamped {
            h.set(CLAMPED_HEADER, "balance")?;
        }
        if let Some(remaining) = self.rate_limit_remaining {
            h.set("X-Dexto-RateLimit-Remaining", &remaining.to_string())?;
        }
        let phases = self.phases.borrow().server_timing();
        h.set("Server-Timing", &format!("{phases}, hold;dur={}, total;dur={}", self.hold_ms, now_ms() - self.terms.started_ms))?;
        Ok(h)
    }

    /// Ends the phase running since the last lap (Server-Timing, log line).
    pub fn lap(&self, name: &str) {
        self.phases.borrow_mut().lap(name, clock_ms());
    }

    /// Records the upstream generation id with the hold, so the sweep can
    /// settle from the upstream's record if this object dies.
    pub fn note_generation(&self, id: &str) {
        self.generation_noter(id)();
    }

    /// `note_generation` as an action to run later (a deadline's).
    pub fn generation_noter(&self, id: &str) -> impl FnOnce() + 'static {
        let (noted, ids, request_id, id) = (self.generation_noted.clone(), self.ledger.generation_ids.clone(), self.terms.request_id.clone(), id.to_string());
        move || {
            if noted.get() {
                return;
            }
            match ids.put(&request_id, &id) {
                Ok(()) => noted.set(true),
                Err(e) => dexto_shared::log::event("hold.generation_unrecorded", serde_json::json!({"request_id": request_id, "error": e.to_string()})),
            }
        }
    }

    /// Moves the hold's deadline on while the exchange runs.
    pub fn heartbeat(&self) {
        let _ = self.ledger.store().extend_hold(&self.terms.request_id, now_ms() + self.ttl_ms);
    }

    /// Hands the hold to the sweep now (the exchange cannot settle it itself):
    /// it leaves the live set and falls due at once.
    pub async fn leave_to_sweep(&self) {
        let now = now_ms();
        self.ledger.live_remove(&self.terms.request_id);
        let due = self.ledger.store().extend_hold(&self.terms.request_id, now);
        if let Err(e) = due.and(self.ledger.arm(now).await) {
            // The hold stays; the alarm set at admission still sweeps it.
            dexto_shared::log::event("hold.handoff_failed", serde_json::json!({"request_id": self.terms.request_id, "error": e.to_string()}));
        }
    }

    pub fn release(&self) {
        if let Err(e) = self.ledger.release(&self.terms.request_id) {
            // The sweep settles it later (provisionally, for review): never silently.
            dexto_shared::log::event("hold.release_failed", serde_json::json!({"request_id": self.terms.request_id, "error": e.to_string()}));
        }
    }

    /// Prices and settles the outcome here and now; the balance after it
    /// (None if storage failed: the hold then stays for the sweep).
    pub fn settle(&self, outcome: &Outcome, mut extra: Value) -> (Charge, Option<Micros>) {
        let charge = metering::price(&self.terms, outcome);
        let record = metering::record(&self.terms, outcome, &charge);
        let balance = match self.ledger.settle(&record) {
            Ok(s) => Some(s.balance),
            Err(e) => {
                dexto_shared::log::event("settle.failed", serde_json::json!({"request_id": self.terms.request_id, "error": e.to_string()}));
                None
            }
        };
        self.lap("settle");
        super::prompt_memory::remember(&self.ledger, &self.terms, outcome.usage.as_ref());
        self.lap("remember");
        extra["phases"] = self.phases.borrow().to_json();
        if let Some(proof) = &self.prompt_bound {
            extra["prompt_bound"] = proof.clone();
        }
        metering::log("owner", &record, &charge, self.terms.hold, balance, extra);
        crate::metrics::settled(&self.ledger.env, &record, "owner");
        (charge, balance)
    }
}
