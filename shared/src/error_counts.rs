//! Refused requests counted per (UTC day, status, error code) in memory and
//! written to D1 (`error_counts`) in batches, so that a flood of refusals
//! costs a few D1 writes, not one per request (glue:
//! `functions/chat/src/error_counts.rs`). At most one flush is in flight; what
//! arrives meanwhile is written by the follow-up flush the running one does.

use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ErrorKey {
    pub day: String,
    pub status: u16,
    pub code: String,
}

/// A flush older than this is presumed dead: its `wait_until` was cut off
/// (the platform ends it 30 s after the response) before it could say so.
pub const FLUSH_PRESUMED_DEAD_MS: i64 = 25_000;

#[derive(Debug, Default)]
pub struct ErrorCounts {
    pending: BTreeMap<ErrorKey, u64>,
    /// When the flush in flight started (None: no flush).
    flushing_since: Option<i64>,
}

impl ErrorCounts {
    /// Counts one refusal at `now_ms`. Returns true when the caller must
    /// start a flush (none is in flight, or the one that is was cut off);
    /// otherwise the running flush picks it up.
    pub fn add(&mut self, key: ErrorKey, now_ms: i64) -> bool {
        *self.pending.entry(key).or_insert(0) += 1;
        match self.flushing_since {
            Some(since) if now_ms - since < FLUSH_PRESUMED_DEAD_MS => false,
            _ => {
                self.flushing_since = Some(now_ms);
                true
            }
        }
    }

    /// The counts to write now, leaving nothing pending. Empty: the flush is
    /// over (and the next `add` starts a new one).
    pub fn take(&mut self) -> Vec<(ErrorKey, u64)> {
        let batch: Vec<_> = std::mem::take(&mut self.pending).into_iter().collect();
        if batch.is_empty() {
            self.flushing_since = None;
        }
        batch
    }

    /// A batch that could not be written goes back (merged with what arrived
    /// since) and the flush ends: the next refusal starts a new one.
    pub fn give_back(&mut self, batch: Vec<(ErrorKey, u64)>) {
        for (key, n) in batch {
            *self.pending.entry(key).or_insert(0) += n;
        }
        self.flushing_since = None;
    }

    /// Ends a flush that stops early (its pass budget spent) with counts still
    /// pending: they wait for the next refusal's flush.
    pub fn stop(&mut self) {
        self.flushing_since = None;
    }

    pub fn pending(&self) -> u64 {
        self.pending.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(status: u16, code: &str) -> ErrorKey {
        ErrorKey { day: "2026-11-30".into(), status, code: code.into() }
    }

    #[test]
    fn a_flood_starts_one_flush_and_coalesces() {
        let mut c = ErrorCounts::default();
        assert!(c.add(key(401, "invalid_api_key"), 0), "the first refusal starts a flush");
        for _ in 0..999 {
            assert!(!c.add(key(401, "invalid_api_key"), 0), "one flush in flight");
        }
        assert!(!c.add(key(402, "INSUFFICIENT_CREDITS"), 0));
        assert_eq!(c.take(), vec![(key(401, "invalid_api_key"), 1000), (key(402, "INSUFFICIENT_CREDITS"), 1)]);
        // Arrivals during the write: the same flush writes them next.
        assert!(!c.add(key(401, "invalid_api_key"), 0));
        assert_eq!(c.take(), vec![(key(401, "invalid_api_key"), 1)]);
        assert_eq!(c.take(), vec![], "nothing left: the flush ends");
        assert!(c.add(key(429, "rate_limited"), 0), "and the next refusal starts a new one");
    }

    #[test]
    fn a_failed_write_keeps_its_counts() {
        let mut c = ErrorCounts::default();
        c.add(key(401, "missing_api_key"), 0);
        let batch = c.take();
        c.add(key(401, "missing_api_key"), 0);
        c.give_back(batch);
        assert_eq!(c.pending(), 2);
        assert!(c.add(key(401, "missing_api_key"), 0), "a new flush after the failed one");
        assert_eq!(c.take(), vec![(key(401, "missing_api_key"), 3)]);
    }

    #[test]
    fn a_flush_cut_off_by_the_platform_does_not_stop_counting_for_good() {
        let mut c = ErrorCounts::default();
        assert!(c.add(key(401, "invalid_api_key"), 0));
        assert!(!c.add(key(401, "invalid_api_key"), FLUSH_PRESUMED_DEAD_MS - 1), "still in flight");
        assert!(c.add(key(401, "invalid_api_key"), FLUSH_PRESUMED_DEAD_MS), "presumed dead: a new flush");
        assert_eq!(c.take().iter().map(|(_, n)| n).sum::<u64>(), 3, "nothing counted was lost");
    }
}
