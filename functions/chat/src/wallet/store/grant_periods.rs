//! Which period a plan grant belongs to, so a take-back reaches only its own
//! invoice's credit (docs/ARCHITECTURE.md, "Plans"): the wallet counts the
//! period ends it has applied, and records the count with each invoice's
//! grant. A later period end means that invoice's period is over: its
//! credit expired (or rolled over into the next period's, which other
//! invoices paid for), and a refund or dispute of it takes back nothing.
//! Kept in `adjustments` (a group per counter), in the step's transaction.

use super::Store;
use dexto_shared::money::Micros;
use worker::Result;

const PERIOD_ENDS: &str = "plan:period_ends";
/// The end (ms) of the latest period a grant paid for.
const GRANTED_UNTIL: &str = "plan:granted_until";

fn grant_key(grant_reference: &str) -> String {
    format!("{grant_reference}:period_ends_before")
}

impl Store {
    /// A period end (expiry or fall-back to free) was applied.
    pub fn count_period_end(&self) -> Result<()> {
        let n = self.adjusted(PERIOD_ENDS)?;
        self.set_adjusted(PERIOD_ENDS, Micros(n.0 + 1))
    }

    /// Records with an invoice's grant how many period ends came before it
    /// (stored + 1: a group that was never set reads 0, a grant from before
    /// this record existed).
    pub fn note_grant_period(&self, grant_reference: &str) -> Result<()> {
        let n = self.adjusted(PERIOD_ENDS)?;
        self.set_adjusted(&grant_key(grant_reference), Micros(n.0 + 1))
    }

    /// Whether a period end was applied after the grant `grant_reference`
    /// (None: the grant is unknown, or older than this record).
    pub fn grant_period_over(&self, grant_reference: &str) -> Result<Option<bool>> {
        let noted = self.adjusted(&grant_key(grant_reference))?.0;
        if noted == 0 {
            return Ok(None);
        }
        Ok(Some(self.adjusted(PERIOD_ENDS)?.0 > noted - 1))
    }

    /// A grant paid for a period ending at `end_ms`.
    pub fn note_granted_until(&self, end_ms: i64) -> Result<()> {
        if self.granted_until()?.is_none_or(|until| until < end_ms) {
            self.set_adjusted(GRANTED_UNTIL, Micros(end_ms))?;
        }
        Ok(())
    }

    /// The end of the latest period granted (None: no grant names one).
    pub fn granted_until(&self) -> Result<Option<i64>> {
        Ok(Some(self.adjusted(GRANTED_UNTIL)?.0).filter(|end| *end > 0))
    }
}
