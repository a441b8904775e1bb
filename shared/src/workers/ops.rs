//! This isolate's counters of billable platform operations
//! (`platform_ops::Ops`), bumped where each operation is made, and a gauge of
//! background work still running (exchanges and D1 projections), so a test
//! can wait until a request's last operation is counted. In memory, per
//! isolate: locally one isolate runs the chat Worker and every wallet object;
//! deployed, each isolate counts its own share. Read by `GET /__ops` on the
//! chat Worker (admin token) and by tests/tests/cost_model.rs.

use crate::platform_ops::Ops;
use std::cell::{Cell, RefCell};
use worker::D1Result;

thread_local! {
    static OPS: RefCell<Ops> = RefCell::new(Ops::default());
    static BUSY: Cell<i64> = const { Cell::new(0) };
}

/// Counts operations: `ops::count(|o| o.kv_reads += 1)`.
pub fn count(f: impl FnOnce(&mut Ops)) {
    OPS.with(|o| f(&mut o.borrow_mut()));
}

pub fn snapshot() -> Ops {
    OPS.with(|o| *o.borrow())
}

/// Counts D1 statements and the rows their results report.
pub fn d1(results: &[D1Result]) {
    count(|o| o.d1_queries += results.len() as u64);
    for meta in results.iter().filter_map(|r| r.meta().ok().flatten()) {
        count(|o| {
            o.d1_rows_read += meta.rows_read.unwrap_or(0) as u64;
            o.d1_rows_written += meta.rows_written.unwrap_or(0) as u64;
        });
    }
}

/// Background work started (+1) or finished (−1): an exchange in flight, a projection.
pub fn busy(delta: i64) {
    BUSY.with(|b| b.set(b.get() + delta));
}

pub fn busy_now() -> i64 {
    BUSY.with(Cell::get)
}
