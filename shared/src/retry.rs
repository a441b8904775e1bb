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

/// Runs `attempt` until it succeeds, pausing `sleep(delay)` before each retry;
/// at most `1 + delays.len()` attempts. `on_retry` sees each failure that is
/// retried. The last error is returned.
pub async fn retrying<T, E, A, AF, S, SF>(delays: &[u64], mut attempt: A, mut sleep: S, mut on_retry: impl FnMut(&E)) -> Result<T, E>
where
    A: FnMut() -> AF,
    AF: std::future::Future<Output = Result<T, E>>,
    S: FnMut(u64) -> SF,
    SF: std::future::Future<Output = ()>,
{
    let mut delays = delays.iter();
    loop {
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(e) => match delays.next() {
                Some(ms) => {
                    on_retry(&e);
                    sleep(*ms).await;
                }
                None => return Err(e),
            },
        }
    }
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

    #[test]
    fn retries_a_bounded_number_of_times() {
        use std::cell::Cell;
        let calls = Cell::new(0);
        let slept = std::cell::RefCell::new(vec![]);
        let flaky = |fail_first: u32| {
            calls.set(0);
            slept.borrow_mut().clear();
            futures::executor::block_on(retrying(
                &[25, 150],
                || {
                    calls.set(calls.get() + 1);
                    let n = calls.get();
                    async move { if n <= fail_first { Err(n) } else { Ok(n) } }
                },
                |ms| {
                    slept.borrow_mut().push(ms);
                    async {}
                },
                |_| {},
            ))
        };
        assert_eq!(flaky(0), Ok(1));
        assert_eq!(flaky(2), Ok(3), "two transient errors are absorbed");
        assert_eq!(*slept.borrow(), vec![25, 150]);
        assert_eq!(flaky(5), Err(3), "then the error is returned");
        assert_eq!(calls.get(), 3);
    }
}
