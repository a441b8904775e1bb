//! x402 payments backing keyless holds (docs/ARCHITECTURE.md, "Keyless calls
//! paid with x402"). A row per authorization, keyed by its reference (payer
//! and nonce). Its state is `held` while its exchange runs; `due` from the
//! charge's settlement (same transaction) until the facilitator settles it;
//! `settled` after (the credit is booked in the same transaction); `failed`
//! while settling fails and the authorization can still be used; `unpaid`
//! once it cannot. Settled rows stay as the replay guard until the
//! authorization has expired.

use super::{int, Store};
use dexto_shared::money::Micros;
use dexto_shared::x402::{settle_amount, Authorized};
use serde::Deserialize;
use worker::Result;

#[derive(Clone, Debug, Deserialize)]
pub struct PaymentRow {
    pub reference: String,
    pub request_id: String,
    pub state: String,
    /// What to settle (set when it falls due).
    pub amount: Option<i64>,
    /// `Authorized` JSON.
    pub payment: String,
    pub attempts: i64,
    /// The settlement's transaction, once settled.
    pub tx: Option<String>,
}

impl PaymentRow {
    pub fn authorized(&self) -> Result<Authorized> {
        Ok(serde_json::from_str(&self.payment)?)
    }
}

const COLUMNS: &str = "reference, request_id, state, amount, payment, attempts, tx";

impl Store {
    /// Whether this authorization was ever presented (held, settled or owed).
    pub fn x402_seen(&self, reference: &str) -> Result<bool> {
        Ok(self.count("SELECT COUNT(*) AS n FROM x402_payments WHERE reference = ?", vec![reference.into()])? > 0)
    }

    /// What the payer owes: payments failing to settle, and what the
    /// balance is below zero by beyond the payments still on their way (a
    /// charge is debited before its payment's credit lands: that gap is no
    /// debt while the payment is due; it is once the payment can no longer
    /// settle).
    pub fn x402_owed(&self, balance: Micros) -> Result<Micros> {
        #[derive(Deserialize)]
        struct Sums {
            failing: Option<i64>,
            due: Option<i64>,
        }
        let sums: Sums = self
            .sql
            .exec(
                "SELECT SUM(CASE WHEN state = 'failed' THEN amount END) AS failing, SUM(CASE WHEN state = 'due' THEN amount END) AS due
                 FROM x402_payments WHERE state IN ('failed', 'due')",
                None,
            )?
            .one()?;
        let (failing, due) = (sums.failing.unwrap_or(0), sums.due.unwrap_or(0));
        let unexplained = (-(balance.0 + due + failing)).max(0);
        Ok(Micros(failing + unexplained))
    }

    /// Keyless charges debited whose payment's credit has not landed yet
    /// (due, or failing while it can still settle).
    pub fn x402_on_the_way(&self) -> Result<Micros> {
        #[derive(Deserialize)]
        struct Sum {
            n: Option<i64>,
        }
        let sum: Sum = self.sql.exec("SELECT SUM(amount) AS n FROM x402_payments WHERE state IN ('due', 'failed')", None)?.one()?;
        Ok(Micros(sum.n.unwrap_or(0)))
    }

    /// Records a verified payment as backing the hold of `request_id`.
    pub fn x402_hold(&self, payment: &Authorized, request_id: &str, now_ms: i64) -> Result<()> {
        self.sql.exec(
            "INSERT INTO x402_payments (reference, request_id, state, payment, valid_before, created_at) VALUES (?, ?, 'held', ?, ?, ?)",
            vec![payment.reference.as_str().into(), request_id.into(), serde_json::to_string(payment)?.into(), int(payment.valid_before), int(now_ms)],
        )?;
        Ok(())
    }

    /// The hold ended without a charge: the authorization was never used
    /// (and may be presented again).
    pub fn x402_release(&self, request_id: &str) -> Result<()> {
        self.sql.exec("DELETE FROM x402_payments WHERE request_id = ? AND state = 'held'", vec![request_id.into()])?;
        Ok(())
    }

    /// The charge `price` was settled: the payment falls due for what its
    /// scheme settles. Returns its reference (None: the hold had no payment).
    pub fn x402_fall_due(&self, request_id: &str, price: Micros) -> Result<Option<String>> {
        let rows: Vec<PaymentRow> =
            self.sql.exec(&format!("SELECT {COLUMNS} FROM x402_payments WHERE request_id = ? AND state = 'held'"), vec![request_id.into()])?.to_array()?;
        let Some(row) = rows.into_iter().next() else { return Ok(None) };
        let payment = row.authorized()?;
        let amount = settle_amount(payment.scheme, payment.authorized, price);
        self.sql.exec("UPDATE x402_payments SET state = 'due', amount = ? WHERE reference = ?", vec![int(amount.0), row.reference.as_str().into()])?;
        Ok(Some(row.reference))
    }

    pub fn x402_payment(&self, reference: &str) -> Result<Option<PaymentRow>> {
        let rows: Vec<PaymentRow> = self.sql.exec(&format!("SELECT {COLUMNS} FROM x402_payments WHERE reference = ?"), vec![reference.into()])?.to_array()?;
        Ok(rows.into_iter().next())
    }

    /// Payments waiting for the facilitator (due, or failing and retried).
    pub fn x402_unsettled(&self) -> Result<Vec<PaymentRow>> {
        self.sql.exec(&format!("SELECT {COLUMNS} FROM x402_payments WHERE state IN ('due', 'failed') ORDER BY created_at LIMIT 20"), None)?.to_array()
    }

    pub fn x402_mark_settled(&self, reference: &str, transaction: &str, now_ms: i64) -> Result<()> {
        self.sql.exec(
            "UPDATE x402_payments SET state = 'settled', tx = ?, error = NULL, settled_at = ? WHERE reference = ?",
            vec![transaction.into(), int(now_ms), reference.into()],
        )?;
        Ok(())
    }

    /// A settlement attempt failed; `final_` when the authorization can no
    /// longer be used (expired): the payment is then unpaid for good.
    pub fn x402_mark_failed(&self, reference: &str, error: &str, final_: bool) -> Result<()> {
        let state = if final_ { "unpaid" } else { "failed" };
        self.sql.exec(
            "UPDATE x402_payments SET state = ?, attempts = attempts + 1, error = ? WHERE reference = ? AND state IN ('due', 'failed')",
            vec![state.into(), error.into(), reference.into()],
        )?;
        Ok(())
    }

    /// Drops settled rows whose authorization has expired (it can no longer
    /// be presented, so it needs no replay guard).
    pub fn x402_prune(&self, now_secs: i64) -> Result<()> {
        self.sql.exec("DELETE FROM x402_payments WHERE state = 'settled' AND valid_before < ?", vec![int(now_secs)])?;
        Ok(())
    }
}
