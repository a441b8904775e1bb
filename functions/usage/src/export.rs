//! `GET /me/usage/export?format=csv|json&from=&to=` (plus the history's
//! filters). Streamed: pages of `PAGE` rows are read from D1 with the same
//! keyset as the history and written as they come, so the Worker never holds
//! the whole export. CSV is RFC 4180 with a header row; amounts are exact
//! decimal USD strings. Default range: this calendar month (UTC).
//!
//! The first page is read before the response starts, so a bad query or a D1
//! outage is a proper error status; a failure later ends the stream early
//! (a JSON export is then visibly incomplete) and is logged.

use crate::db::{all, database};
use crate::{Params, UsageResult};
use dexto_shared::error::GatewayError;
use dexto_shared::http::now_ms;
use dexto_shared::time::date;
use dexto_shared::usage_query::{history, Cursor, Filters, TimeRange, MAX_MS};
use dexto_shared::usage_report::{LedgerRow, CSV_HEADER};
use dexto_shared::csv;
use futures::{stream, StreamExt};
use worker::{D1Database, Env, Headers, Response};

const PAGE: u32 = 500;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Json,
}

struct Export {
    db: D1Database,
    user_id: String,
    range: TimeRange,
    filters: Filters,
    format: Format,
    /// Rows read but not yet written; None once the last page has been read.
    pending: Option<Vec<LedgerRow>>,
    written: usize,
    finished: bool,
}

impl Export {
    async fn fetch(&self, after: Option<&Cursor>) -> Result<Vec<LedgerRow>, GatewayError> {
        all(&self.db, &history(&self.user_id, self.range, &self.filters, after, PAGE)).await
    }

    fn render(&mut self, rows: &[LedgerRow]) -> String {
        let mut out = String::new();
        for row in rows {
            match self.format {
                Format::Csv => out.push_str(&row.csv_record()),
                Format::Json => {
                    out.push_str(if self.written == 0 { "\n" } else { ",\n" });
                    out.push_str(&row.history_json().to_string());
                }
            }
            self.written += 1;
        }
        out
    }

    /// The next chunk of the body, or None at the end.
    async fn next_chunk(&mut self) -> Option<String> {
        if self.finished {
            return None;
        }
        let Some(rows) = self.pending.take() else {
            self.finished = true;
            return (self.format == Format::Json).then(|| "\n]}\n".to_string());
        };
        if rows.len() == PAGE as usize {
            let last = rows.last().map(|r| Cursor { created_at: r.created_at, request_id: r.request_id.clone() });
            match self.fetch(last.as_ref()).await {
                Ok(next) => self.pending = Some(next),
                Err(e) => {
                    dexto_shared::log::event("usage.export_failed", serde_json::json!({"user_id": self.user_id, "rows_written": self.written, "error": format!("{e:?}")}));
                    self.finished = true;
                }
            }
        }
        Some(self.render(&rows))
    }
}

pub async fn stream(env: &Env, user_id: &str, params: &Params) -> UsageResult {
    let bad = GatewayError::BadRequest;
    let format = match params.get("format").as_deref() {
        None | Some("csv") => Format::Csv,
        Some("json") => Format::Json,
        Some(_) => return Err(bad("`format` must be `csv` or `json`.".into())),
    };
    let mtd = TimeRange::month_to_date(now_ms());
    let range = TimeRange::parse(params.get("from").as_deref(), params.get("to").as_deref(), mtd.from_ms, mtd.to_ms).map_err(bad)?;
    let filters = Filters::parse(|n| params.get(n)).map_err(bad)?;
    let mut export = Export { db: database(env)?, user_id: user_id.to_string(), range, filters, format, pending: None, written: 0, finished: false };
    export.pending = Some(export.fetch(None).await?);

    let head = match format {
        Format::Csv => csv::record(CSV_HEADER),
        Format::Json => format!(
            "{{\"object\":\"list\",\"from\":{},\"to\":{},\"data\":[",
            serde_json::json!(dexto_shared::time::rfc3339_millis(range.from_ms)),
            serde_json::json!((range.to_ms < MAX_MS).then(|| dexto_shared::time::rfc3339_millis(range.to_ms)))
        ),
    };
    let body = stream::once(async move { Ok::<Vec<u8>, worker::Error>(head.into_bytes()) }).chain(stream::unfold(export, |mut e| async move {
        e.next_chunk().await.map(|chunk| (Ok::<Vec<u8>, worker::Error>(chunk.into_bytes()), e))
    }));
    let internal = |e: worker::Error| GatewayError::Internal(e.to_string());
    let headers = Headers::new();
    let (content_type, ext) = match format {
        Format::Csv => ("text/csv; charset=utf-8; header=present", "csv"),
        Format::Json => ("application/json", "json"),
    };
    headers.set("content-type", content_type).map_err(internal)?;
    let to = if range.to_ms < MAX_MS { date(range.to_ms - 1) } else { date(now_ms()) };
    let filename = format!("dexto-usage-{}-to-{to}.{ext}", date(range.from_ms));
    headers.set("content-disposition", &format!("attachment; filename=\"{filename}\"")).map_err(internal)?;
    headers.set("cache-control", "no-store").map_err(internal)?;
    Ok(Response::from_stream(body).map_err(internal)?.with_headers(headers))
}
