//! Remembers, for a while, lookups that found nothing (unknown API key
//! hashes), so a flood of well-formed but unknown keys costs one database read
//! per key per TTL instead of one per request. Bounded: when full it starts
//! over, so distinct keys cannot grow an isolate's memory without limit.

use std::collections::HashMap;

pub struct NegativeCache {
    ttl_ms: i64,
    capacity: usize,
    until: HashMap<String, i64>,
}

impl NegativeCache {
    pub fn new(ttl_ms: i64, capacity: usize) -> NegativeCache {
        NegativeCache { ttl_ms, capacity, until: HashMap::new() }
    }

    /// `key` was looked up and not found at `now_ms`.
    pub fn remember(&mut self, key: &str, now_ms: i64) {
        if self.until.len() >= self.capacity {
            self.until.retain(|_, until| *until > now_ms);
            if self.until.len() >= self.capacity {
                self.until.clear();
            }
        }
        self.until.insert(key.to_string(), now_ms + self.ttl_ms);
    }

    /// Whether `key` is known to be absent at `now_ms`.
    pub fn known_absent(&self, key: &str, now_ms: i64) -> bool {
        self.until.get(key).is_some_and(|until| *until > now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_for_the_ttl_and_stays_bounded() {
        let mut c = NegativeCache::new(1_000, 3);
        c.remember("a", 0);
        assert!(c.known_absent("a", 999) && !c.known_absent("a", 1_000) && !c.known_absent("b", 0));
        for (i, k) in ["b", "c", "d", "e"].iter().enumerate() {
            c.remember(k, 10 + i as i64);
        }
        assert!(c.until.len() <= 3);
        assert!(c.known_absent("e", 20));
    }
}
