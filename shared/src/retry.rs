//! Retry spacing for background work that can fail for a long time (an
//! upstream management API refusing, D1 unavailable): exponential, capped, so
//! a permanent failure costs one attempt an hour instead of one every few
//! seconds forever.

/// First retry after this long.
pub const FIRST_RETRY_MS: i64 = 5_000;
/// Never wait longer than this between attempts.
pub const MAX_RETRY_MS: i64 = 3_600_000;

/// Delay before the next attempt after `failures` consecutive failures (≥ 1).
pub fn backoff_ms(failures: u32) -> i64 {
    let doublings = failures.saturating_sub(1).min(20);
    FIRST_RETRY_MS.saturating_mul(1 << doublings).min(MAX_RETRY_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_five_seconds_to_an_hour() {
        let delays: Vec<i64> = (1..=12).map(backoff_ms).collect();
        assert_eq!(&delays[..5], &[5_000, 10_000, 20_000, 40_000, 80_000]);
        assert_eq!(backoff_ms(10), 2_560_000);
        assert_eq!(backoff_ms(11), MAX_RETRY_MS);
        assert_eq!(backoff_ms(u32::MAX), MAX_RETRY_MS);
        assert_eq!(backoff_ms(0), FIRST_RETRY_MS);
    }
}
