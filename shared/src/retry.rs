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

/// Runs `attempt` until it succeeds, pausing `sleep(delay)` before each
/// retry, where `next_delay` picks the pause after each failure (by the
/// error, so kinds of failure can have schedules of their own) or `None` to
/// give up. `on_retry` sees each failure that is retried. The last error is
/// returned.
pub async fn retrying<T, E, A, AF, S, SF>(mut next_delay: impl FnMut(&E) -> Option<u64>, mut attempt: A, mut sleep: S, mut on_retry: impl FnMut(&E)) -> Result<T, E>
where
    A: FnMut() -> AF,
    AF: std::future::Future<Output = Result<T, E>>,
    S: FnMut(u64) -> SF,
    SF: std::future::Future<Output = ()>,
{
    loop {
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(e) => match next_delay(&e) {
                Some(ms) => {
                    on_retry(&e);
                    sleep(ms).await;
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
            let mut delays = [25, 150].into_iter();
            futures::executor::block_on(retrying(
                move |_: &u32| delays.next(),
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

    #[test]
    fn each_kind_of_failure_follows_its_own_schedule() {
        // Odd errors ("locked") wait longer and more often than even ones.
        let (mut odd, mut even) = ([1, 2, 3].into_iter(), [10].into_iter());
        let mut failures = vec![1u32, 2, 3, 5, 4].into_iter();
        let slept = std::cell::RefCell::new(vec![]);
        let outcome = futures::executor::block_on(retrying(
            move |e: &u32| if e % 2 == 1 { odd.next() } else { even.next() },
            || {
                let next = failures.next();
                async move { next.map_or(Ok(()), Err) }
            },
            |ms| {
                slept.borrow_mut().push(ms);
                async {}
            },
            |_| {},
        ));
        assert_eq!(outcome, Err(4), "the second even error finds its schedule spent");
        assert_eq!(*slept.borrow(), vec![1, 10, 2, 3]);
    }
}
