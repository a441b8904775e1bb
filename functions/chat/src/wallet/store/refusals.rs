//! Guarded debits (`GuardedCredit::only_from_available`): checked against
//! the available credit in the same synchronous turn as the debit, and a
//! refusal remembered under its reference, so that whoever sends that
//! reference again (a retry, reconciliation) is refused too — never a debit
//! after its sender was told, and dropped the move, that nothing moved.

use super::Store;
use dexto_shared::money::Micros;
use dexto_shared::wallet::{debit_refusal, DebitRefusal};
use serde::Deserialize;
use worker::Result;

impl Store {
    /// The refusal a guarded debit of `amount` under `reference` meets now
    /// (recorded), or met before (`true`: a replay); `None`: apply it.
    pub fn guard_debit(&self, reference: &str, amount: Micros) -> Result<Option<(DebitRefusal, bool)>> {
        #[derive(Deserialize)]
        struct Row {
            refusal: String,
        }
        let before: Vec<Row> = self.sql.exec("SELECT refusal FROM refused_debits WHERE reference = ?", vec![reference.into()])?.to_array()?;
        if let Some(row) = before.first() {
            return Ok(Some((serde_json::from_str(&row.refusal)?, true)));
        }
        let wallet = self.wallet()?.ok_or("wallet missing")?;
        let Some(refusal) = debit_refusal(amount, Micros(wallet.balance), self.held_total()?, wallet.frozen != 0, wallet.suspended != 0) else {
            return Ok(None);
        };
        self.sql.exec("INSERT INTO refused_debits (reference, refusal) VALUES (?, ?)", vec![reference.into(), serde_json::to_string(&refusal)?.into()])?;
        Ok(Some((refusal, false)))
    }
}
