//! Per-user token bucket for abuse throttling, on by default (600 a minute,
//! bursts of 120: far above an agent's pace, far below a runaway loop's), kept
//! in the wallet object's memory: approximate by design (reset if the object
//! is evicted), never used for money. Off when `RATE_LIMIT_PER_MINUTE` is 0.
//! Beside it, a cap on requests in flight per user (`MAX_CONCURRENT_REQUESTS`,
//! default 32; 0 = off), counted exactly from the open holds.

use worker::Env;

const DEFAULT_PER_MINUTE: f64 = 600.0;
const DEFAULT_BURST: f64 = 120.0;
/// Requests in flight per user (open holds) unless MAX_CONCURRENT_REQUESTS says otherwise.
pub const DEFAULT_MAX_CONCURRENT: u64 = 32;

pub fn max_concurrent(env: &Env) -> u64 {
    env.var("MAX_CONCURRENT_REQUESTS").ok().and_then(|v| v.to_string().trim().parse().ok()).unwrap_or(DEFAULT_MAX_CONCURRENT)
}

pub struct RateLimiter {
    per_minute: f64,
    burst: f64,
    tokens: f64,
    last_ms: i64,
}

impl RateLimiter {
    pub fn from_env(env: &Env) -> RateLimiter {
        let read = |name: &str, default: f64| {
            env.var(name).ok().and_then(|v| v.to_string().parse::<f64>().ok()).unwrap_or(default)
        };
        let per_minute = read("RATE_LIMIT_PER_MINUTE", DEFAULT_PER_MINUTE).max(0.0);
        let burst = read("RATE_LIMIT_BURST", DEFAULT_BURST).max(1.0);
        RateLimiter { per_minute, burst, tokens: burst, last_ms: 0 }
    }

    /// A key's own bucket: `per_minute`, bursts of up to a minute's worth.
    pub fn per_key(per_minute: u32) -> RateLimiter {
        let per_minute = per_minute.max(1) as f64;
        RateLimiter { per_minute, burst: per_minute, tokens: per_minute, last_ms: 0 }
    }

    /// Whether this bucket has the given rate (a key's limit may change).
    pub fn has_rate(&self, per_minute: u32) -> bool {
        self.per_minute == per_minute as f64
    }

    fn enabled(&self) -> bool {
        self.per_minute > 0.0
    }

    /// Takes one token, or says how many seconds until one is available.
    pub fn take(&mut self, now_ms: i64) -> Result<(), u32> {
        if !self.enabled() {
            return Ok(());
        }
        let elapsed_min = (now_ms - self.last_ms).max(0) as f64 / 60_000.0;
        self.tokens = (self.tokens + elapsed_min * self.per_minute).min(self.burst);
        self.last_ms = now_ms;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait_min = (1.0 - self.tokens) / self.per_minute;
            Err((wait_min * 60.0).ceil().max(1.0) as u32)
        }
    }

    pub fn remaining(&self) -> Option<u32> {
        self.enabled().then(|| self.tokens.floor() as u32)
    }
}
