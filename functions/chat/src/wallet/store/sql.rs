//! The object's SQL, counted: every statement, and the rows SQLite reports it
//! read and wrote (the Durable Object storage bill), go to this isolate's
//! operation counters (shared/src/workers/ops.rs). Same calls as `SqlStorage`.

use serde::de::DeserializeOwned;
use worker::{Result, SqlCursor, SqlStorage, SqlStorageValue};

pub struct Sql(SqlStorage);

impl Sql {
    pub fn new(sql: SqlStorage) -> Sql {
        Sql(sql)
    }

    /// Runs `query`. Its rows read and written are counted once, when the
    /// cursor is dropped: by then a write has run and a query's rows were read.
    pub fn exec(&self, query: &str, bindings: impl Into<Option<Vec<SqlStorageValue>>>) -> Result<Rows> {
        dexto_shared::ops::count(|o| o.do_statements += 1);
        Ok(Rows(self.0.exec(query, bindings)?))
    }
}

pub struct Rows(SqlCursor);

impl Rows {
    pub fn to_array<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        self.0.to_array()
    }

    pub fn one<T: DeserializeOwned>(&self) -> Result<T> {
        self.0.one()
    }
}

impl Drop for Rows {
    fn drop(&mut self) {
        let (read, written) = (self.0.rows_read() as u64, self.0.rows_written() as u64);
        dexto_shared::ops::count(|o| {
            o.do_rows_read += read;
            o.do_rows_written += written;
        });
    }
}
