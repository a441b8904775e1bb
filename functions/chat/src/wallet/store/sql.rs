//! The object's SQL, counted: every statement, and the rows SQLite reports it
//! read and wrote (the Durable Object storage bill), go to this isolate's
//! operation counters (shared/src/workers/ops.rs). Same calls as `SqlStorage`.

use serde::de::DeserializeOwned;
use std::cell::Cell;
use worker::{Result, SqlCursor, SqlStorage, SqlStorageValue};

pub struct Sql(SqlStorage);

impl Sql {
    pub fn new(sql: SqlStorage) -> Sql {
        Sql(sql)
    }

    /// Runs `query`. A statement that returns no rows has run to its end here;
    /// the rows a query returns are counted as they are read.
    pub fn exec(&self, query: &str, bindings: impl Into<Option<Vec<SqlStorageValue>>>) -> Result<Rows> {
        let rows = Rows { cursor: self.0.exec(query, bindings)?, counted: Cell::new((0, 0)) };
        dexto_shared::ops::count(|o| o.do_statements += 1);
        rows.tally();
        Ok(rows)
    }
}

pub struct Rows {
    cursor: SqlCursor,
    /// Rows read and written already counted for this cursor.
    counted: Cell<(usize, usize)>,
}

impl Rows {
    pub fn to_array<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        let rows = self.cursor.to_array();
        self.tally();
        rows
    }

    pub fn one<T: DeserializeOwned>(&self) -> Result<T> {
        let row = self.cursor.one();
        self.tally();
        row
    }

    fn tally(&self) {
        let (read, written) = (self.cursor.rows_read(), self.cursor.rows_written());
        let (r0, w0) = self.counted.replace((read, written));
        dexto_shared::ops::count(|o| {
            o.do_rows_read += (read - r0) as u64;
            o.do_rows_written += (written - w0) as u64;
        });
    }
}
