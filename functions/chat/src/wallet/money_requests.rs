//! Credits and debits that are not usage (the admin API, Stripe, crypto
//! top-ups, x402): by reference, a guarded one refused rather than taken
//! from money held or owed; and cumulative adjustments (refunds, disputes)
//! that apply only what is new.

use super::ledger::Change;
use super::{reply, WalletDO};
use dexto_shared::money::Micros;
use dexto_shared::wallet::{AdjustRequest, CreditOutcome, CreditReply, GuardedCredit};
use worker::{Response, Result};

impl WalletDO {
    /// From the replay check to `apply_money`, one synchronous turn (no
    /// `.await`): a guarded debit's check and the debit itself cannot be
    /// interleaved by a hold, a settlement or another debit.
    pub(super) async fn credit(&self, req: GuardedCredit) -> Result<Response> {
        let GuardedCredit { credit: req, only_from_available } = req;
        self.ensure_wallet(&req.user_id).await?;
        let answer = |balance, replay, refused| reply(&CreditReply { outcome: CreditOutcome { balance, replay }, refused });
        if let Some(balance) = self.store.applied(&req.reference)? {
            return answer(balance, true, None);
        }
        if only_from_available {
            if let Some((refusal, replay)) = self.store.guard_debit(&req.reference, req.amount)? {
                return answer(Micros(self.store.wallet()?.map_or(0, |w| w.balance)), replay, Some(refusal));
            }
        }
        let c = Change { user_id: &req.user_id, kind: &req.kind, reason: &req.reason, now_ms: req.now_ms, payment: &req.payment, included: Micros::ZERO };
        let balance = self.apply_money(&c, &req.reference, req.amount)?;
        answer(balance, false, None)
    }

    /// Applies the difference between `cumulative` and what `group` has applied
    /// so far, as one ledger entry. Totals only grow in magnitude (Stripe's
    /// `amount_refunded` is cumulative), so an older, smaller total arriving
    /// late is a no-op — it never gives money back.
    pub(super) async fn adjust(&self, req: AdjustRequest) -> Result<Response> {
        self.ensure_wallet(&req.user_id).await?;
        let done = self.store.adjusted(&req.group)?;
        let grows = req.cumulative.0.signum() * done.0.signum() >= 0 && req.cumulative.0.abs() > done.0.abs();
        let delta = Micros(req.cumulative.0 - done.0);
        let reference = format!("{}:{}", req.group, req.cumulative.0);
        if !grows || self.store.applied(&reference)?.is_some() {
            let balance = Micros(self.store.wallet()?.map_or(0, |w| w.balance));
            return reply(&CreditOutcome { balance, replay: true });
        }
        let c = Change { user_id: &req.user_id, kind: &req.kind, reason: &req.reason, now_ms: req.now_ms, payment: &req.payment, included: Micros::ZERO };
        // With its running total, or a redelivery (a replay) leaves the
        // total behind and the next refund takes this one again.
        let balance = self.store.atomically(|| {
            let balance = self.apply_money(&c, &reference, delta)?;
            self.store.set_adjusted(&req.group, req.cumulative)?;
            Ok(balance)
        })?;
        reply(&CreditOutcome { balance, replay: false })
    }
}
