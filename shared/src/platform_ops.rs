//! What requests cost the platform: the billable operations a Worker isolate
//! counts as it makes them (`workers/ops.rs`), and Cloudflare's published
//! Workers Paid prices for them. docs/ARCHITECTURE.md, "What a request costs",
//! is the table `tests/tests/cost_model.rs` measures with these counters.
//!
//! Not counted here: Worker CPU time and Durable Object duration, which the
//! runtime bills by time rather than by operation (see ARCHITECTURE).

use serde::{Deserialize, Serialize};

/// Operations made, by kind. Every field is billed separately, or is free and
/// counted so that the cost model says so.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ops {
    /// Worker requests (an invocation of a Worker's fetch handler by a client).
    pub worker_requests: u64,
    /// Calls to another Worker over a service binding (not billed as requests).
    pub service_calls: u64,
    /// Durable Object requests (fetches to a wallet object, alarm invocations).
    pub do_requests: u64,
    /// SQL statements run in Durable Object storage (not billed; CPU).
    pub do_statements: u64,
    pub do_rows_read: u64,
    pub do_rows_written: u64,
    /// `setAlarm` calls (priced as one row written each).
    pub do_alarm_sets: u64,
    pub d1_queries: u64,
    pub d1_rows_read: u64,
    pub d1_rows_written: u64,
    pub kv_reads: u64,
    pub kv_writes: u64,
    /// Workers Analytics Engine data points written.
    pub analytics_points: u64,
    /// Outgoing `fetch` calls (the upstream, the key management API): free.
    pub subrequests: u64,
}

macro_rules! each_field {
    ($mac:ident) => {
        $mac!(worker_requests, service_calls, do_requests, do_statements, do_rows_read, do_rows_written, do_alarm_sets, d1_queries, d1_rows_read, d1_rows_written, kv_reads, kv_writes, analytics_points, subrequests)
    };
}

impl Ops {
    /// `self − earlier`, field by field (a counter snapshot minus an older one).
    pub fn since(&self, earlier: &Ops) -> Ops {
        let mut out = Ops::default();
        macro_rules! sub {
            ($($f:ident),*) => { $( out.$f = self.$f.saturating_sub(earlier.$f); )* };
        }
        each_field!(sub);
        out
    }

    pub fn add(&mut self, other: &Ops) {
        macro_rules! add {
            ($($f:ident),*) => { $( self.$f += other.$f; )* };
        }
        each_field!(add);
    }

    /// Platform cost of these operations, in micro-USD per million requests,
    /// when they were made by `requests` requests (rounded to the nearest µ$).
    pub fn micro_usd_per_million(&self, requests: u64) -> u64 {
        let p = &WORKERS_PAID;
        let total = self.worker_requests * p.worker_request
            + self.do_requests * p.do_request
            + self.do_rows_read * p.row_read
            + (self.do_rows_written + self.do_alarm_sets) * p.row_written
            + self.d1_rows_read * p.row_read
            + self.d1_rows_written * p.row_written
            + self.kv_reads * p.kv_read
            + self.kv_writes * p.kv_write
            + self.analytics_points * p.analytics_point;
        (total + requests / 2) / requests.max(1)
    }
}

/// Prices in micro-USD per million operations.
pub struct Prices {
    pub worker_request: u64,
    pub do_request: u64,
    pub row_read: u64,
    pub row_written: u64,
    pub kv_read: u64,
    pub kv_write: u64,
    pub analytics_point: u64,
}

/// Cloudflare Workers Paid, beyond the monthly inclusions (developers.cloudflare.com
/// pricing pages of Workers, Durable Objects, D1, KV and Analytics Engine):
/// requests $0.30/M; DO requests $0.15/M; SQLite rows (DO and D1) read
/// $0.001/M, written $1.00/M; KV reads $0.50/M, writes $5.00/M; Analytics
/// Engine points $0.25/M. Subrequests and service-binding calls are free.
pub const WORKERS_PAID: Prices = Prices {
    worker_request: 300_000,
    do_request: 150_000,
    row_read: 1_000,
    row_written: 1_000_000,
    kv_read: 500_000,
    kv_write: 5_000_000,
    analytics_point: 250_000,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_a_request_mix_per_million() {
        // One request: a Worker request, a DO request, 10 rows read and 5
        // written in the object, 3 rows written to D1, one AE point.
        let ops = Ops { worker_requests: 1, do_requests: 1, do_rows_read: 10, do_rows_written: 5, d1_rows_written: 3, analytics_points: 1, subrequests: 1, ..Ops::default() };
        // $0.30 + $0.15 + $0.01 + $5 + $3 + $0.25 = $8.71 per million.
        assert_eq!(ops.micro_usd_per_million(1), 8_710_000);
        // The same operations spread over four requests cost a quarter each.
        assert_eq!(ops.micro_usd_per_million(4), 2_177_500);
    }

    #[test]
    fn since_subtracts_field_by_field() {
        let later = Ops { do_statements: 9, d1_queries: 2, ..Ops::default() };
        let earlier = Ops { do_statements: 4, ..Ops::default() };
        assert_eq!(later.since(&earlier), Ops { do_statements: 5, d1_queries: 2, ..Ops::default() });
        let mut sum = earlier;
        sum.add(&later);
        assert_eq!(sum.do_statements, 13);
    }
}
