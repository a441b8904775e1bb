//! Included credit a fall-back to the free plan could not expire because
//! open holds might spend it (docs/ARCHITECTURE.md, "Plans"): on the free
//! plan no later period end comes to expire it, so the object remembers the
//! fall-back's reference and expires what is left once the last hold has
//! settled (`Ledger::expire_held_rest`). A new grant (the user subscribed
//! again) forgets it: that plan's period ends expire it as usual.

use super::Store;
use serde::Deserialize;
use worker::Result;

impl Store {
    /// The fall-back whose held remainder is still to expire, if any.
    pub fn held_rest(&self) -> Result<Option<String>> {
        if let Some(r) = &self.mem.borrow().held_rest {
            return Ok(r.clone());
        }
        #[derive(Deserialize)]
        struct Row {
            reference: String,
        }
        let rows: Vec<Row> = self.sql.exec("SELECT reference FROM held_rest WHERE id = 1", None)?.to_array()?;
        let r = rows.into_iter().next().map(|r| r.reference);
        self.mem.borrow_mut().held_rest = Some(r.clone());
        Ok(r)
    }

    /// Remembers (Some) or forgets (None) the fall-back to finish.
    pub fn set_held_rest(&self, reference: Option<&str>) -> Result<()> {
        match reference {
            Some(r) => self.sql.exec("INSERT OR REPLACE INTO held_rest (id, reference) VALUES (1, ?)", vec![r.into()])?,
            None => self.sql.exec("DELETE FROM held_rest", None)?,
        };
        self.mem.borrow_mut().held_rest = Some(reference.map(str::to_string));
        Ok(())
    }
}
