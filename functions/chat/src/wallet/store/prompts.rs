//! Prompts the upstream counted (shared/src/prompt_prefix.rs): fingerprint →
//! reported prompt tokens, per key and model. A small table in the object's
//! SQLite, not memory: an agent's next turn often comes after the object was
//! evicted (a person reading, a long tool run), and a lost entry would only
//! send that turn back to the byte bound. Bounded: the most recently used
//! `PER_KEY_MODEL` fingerprints of each key and model, `TOTAL` in all.

use super::{int, Store};
use dexto_shared::prompt_prefix::Counted;
use serde::Deserialize;
use worker::Result;

/// Three fingerprints per counted prompt (whole, first message, context):
/// the last eight prompts of a key and model — an agent and its sub-agents.
const PER_KEY_MODEL: i64 = 24;
const TOTAL: i64 = 96;
/// Keys and models whose fingerprints the object keeps in memory.
const MEMORY_SLOTS: usize = 32;

impl Store {
    /// The fingerprints remembered for a key and model, most recent first.
    /// Mirrored in memory per key and model (admission asks on every turn of
    /// an agent loop): read once, then kept as `remember_prompt` writes.
    pub fn counted_prompts(&self, key_id: &str, model: &str) -> Result<Vec<Counted>> {
        let slot = (key_id.to_string(), model.to_string());
        if let Some(known) = self.mem.borrow().counted.get(&slot) {
            return Ok(known.clone());
        }
        let read = self.read_counted_prompts(key_id, model)?;
        let mut mem = self.mem.borrow_mut();
        if mem.counted.len() >= MEMORY_SLOTS {
            mem.counted.clear(); // bounded: the busiest keys and models come back with one read
        }
        mem.counted.insert(slot, read.clone());
        Ok(read)
    }

    fn read_counted_prompts(&self, key_id: &str, model: &str) -> Result<Vec<Counted>> {
        #[derive(Deserialize)]
        struct Row {
            print: String,
            prompt_tokens: i64,
        }
        let rows: Vec<Row> = self
            .sql
            .exec(
                "SELECT print, prompt_tokens FROM counted_prompts WHERE key_id = ? AND model = ? ORDER BY used_at DESC LIMIT ?",
                vec![key_id.into(), model.into(), int(PER_KEY_MODEL)],
            )?
            .to_array()?;
        Ok(rows.into_iter().map(|r| Counted { print: r.print, prompt_tokens: r.prompt_tokens.max(0) as u64 }).collect())
    }

    /// Remembers that the upstream counted `prompt_tokens` for a prompt with
    /// these fingerprints. A count bounds every prefix of its prompt, so a
    /// fingerprint seen again keeps the smaller count.
    pub fn remember_prompt(&self, key_id: &str, model: &str, prints: &[String], prompt_tokens: u64, now_ms: i64) -> Result<()> {
        if prints.is_empty() {
            return Ok(());
        }
        let mut values = Vec::new();
        for print in prints {
            values.extend([key_id.into(), model.into(), print.as_str().into(), int(prompt_tokens as i64), int(now_ms)]);
        }
        let rows = vec!["(?, ?, ?, ?, ?)"; prints.len()].join(", ");
        self.sql.exec(
            &format!(
                "INSERT INTO counted_prompts (key_id, model, print, prompt_tokens, used_at) VALUES {rows}
                 ON CONFLICT (key_id, model, print) DO UPDATE SET
                   prompt_tokens = MIN(prompt_tokens, excluded.prompt_tokens), used_at = excluded.used_at"
            ),
            values,
        )?;
        if let Some(known) = self.mem.borrow_mut().counted.get_mut(&(key_id.to_string(), model.to_string())) {
            // As the upsert did: the smaller count, now the most recent.
            for print in prints.iter().rev() {
                let count = match known.iter().position(|c| &c.print == print) {
                    Some(i) => known.remove(i).prompt_tokens.min(prompt_tokens),
                    None => prompt_tokens,
                };
                known.insert(0, Counted { print: print.clone(), prompt_tokens: count });
            }
            known.truncate(PER_KEY_MODEL as usize);
        }
        // The bounds are kept by pruning at most once a minute per incarnation:
        // between prunings a busy object holds a few rows more, never fewer.
        if now_ms - self.mem.borrow().prompts_pruned_at < 60_000 {
            return Ok(());
        }
        self.mem.borrow_mut().prompts_pruned_at = now_ms;
        self.sql.exec(
            "DELETE FROM counted_prompts WHERE rowid IN (SELECT rowid FROM (SELECT rowid, ROW_NUMBER() OVER
               (PARTITION BY key_id, model ORDER BY used_at DESC) AS n FROM counted_prompts) WHERE n > ?)",
            vec![int(PER_KEY_MODEL)],
        )?;
        self.sql.exec(
            "DELETE FROM counted_prompts WHERE rowid NOT IN (SELECT rowid FROM counted_prompts ORDER BY used_at DESC LIMIT ?)",
            vec![int(TOTAL)],
        )?;
        Ok(())
    }
}
