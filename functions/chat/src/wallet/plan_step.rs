//! One move of the included bucket (`/plan`, docs/ARCHITECTURE.md "Plans"):
//! a grant, a period end's expiry, a take-back. Synchronous: the caller runs
//! every step of a request in one turn. The amounts come from the bucket as
//! it is in that turn (`dexto_shared::plans::buckets`).

use super::ledger::Change;
use super::WalletDO;
use dexto_shared::money::Micros;
use dexto_shared::plans::{buckets, period};
use dexto_shared::wallet::{PlanRequest, PlanStep};
use worker::Result;

/// Applies `step` unless its reference was applied: the amount it moved
/// (None: a replay, or limits, which move no money and are simply set). A step that moves nothing is still recorded (its
/// reference is spent), so a later, larger bucket is not expired twice.
/// One transaction (store/atomic.rs): a replay stops at the spent reference,
/// so the bookkeeping after the money (the period's notes, the take-back's
/// running total) must never commit without it, nor it without them.
pub fn apply(w: &WalletDO, req: &PlanRequest, step: &PlanStep) -> Result<Option<Micros>> {
    w.store.atomically(|| apply_rows(w, req, step))
}

fn apply_rows(w: &WalletDO, req: &PlanRequest, step: &PlanStep) -> Result<Option<Micros>> {
    let taken_back;
    let (reference, kind, reason, amount) = match step {
        PlanStep::Limits(limits) => {
            w.store.set_plan_limits(*limits)?;
            return Ok(None);
        }
        PlanStep::FreeLimits => {
            w.store.forget_plan_limits()?;
            return Ok(None);
        }
        PlanStep::Grant { reference, amount, reason, .. } => (reference, "plan_grant", reason.clone(), (*amount).max(Micros::ZERO)),
        PlanStep::StopIfRenewedAfter { .. } => return Ok(None), // the caller's (wallet/mod.rs)
        PlanStep::Expire { reference, keep } => {
            let included = Micros(w.store.wallet()?.map_or(0, |r| r.included));
            let held = w.store.held_total()?;
            let gone = buckets::expiry(included, *keep, held);
            (reference, "plan_expiry", format!("Included credit expired at period end (kept {})", keep.usd_trimmed()), Micros(-gone.0))
        }
        PlanStep::TakeBack { group, target } => {
            taken_back = format!("{group}:{}", target.0);
            if w.store.applied(&taken_back)?.is_some() {
                return Ok(None);
            }
            let included = Micros(w.store.wallet()?.map_or(0, |r| r.included));
            let done = Micros(-w.store.adjusted(group)?.0);
            // Once the invoice's period has ended, what is left in the bucket
            // is other invoices' credit: nothing of it goes back.
            // (The invoice granted a period, or an upgrade within one.)
            let period_over = match period::invoice_of_take_back(group) {
                Some(invoice) => match w.store.grant_period_over(&period::grant_reference(invoice))? {
                    Some(over) => over,
                    None => w.store.grant_period_over(&period::upgrade_reference(invoice))?.unwrap_or(false),
                },
                None => false,
            };
            let back = buckets::take_back(included, target.saturating_sub(done), period_over);
            w.store.set_adjusted(group, Micros(-(done.0 + back.0)))?;
            (&taken_back, "plan_take_back", "Included credit of a refunded or disputed plan invoice".to_string(), Micros(-back.0))
        }
    };
    if w.store.applied(reference)?.is_some() {
        return Ok(None);
    }
    let reason = Some(reason);
    let c = Change { user_id: &req.user_id, kind, reason: &reason, now_ms: req.now_ms, payment: &None, included: amount };
    w.ledger.apply_money(&c, reference, amount)?;
    match step {
        PlanStep::Expire { reference, .. } => {
            w.store.count_period_end()?;
            // Leaving the plan with credit held: no period end will come for it.
            let left = w.store.wallet()?.map_or(0, |r| r.included);
            if reference.starts_with(period::LEAVING_PREFIX) && left > 0 {
                w.store.set_held_rest(Some(reference))?;
            }
        }
        PlanStep::Grant { reference, period_end, .. } => {
            if let Some(end) = period_end {
                w.store.note_granted_until(*end)?;
            }
            if w.store.held_rest()?.is_some() {
                w.store.set_held_rest(None)?;
            }
            if reference.starts_with(&period::grant_reference("")) || reference.starts_with(&period::upgrade_reference("")) {
                w.store.note_grant_period(reference)?;
            }
        }
        _ => {}
    }
    Ok(Some(amount))
}
