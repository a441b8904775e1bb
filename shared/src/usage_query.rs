//! Queries over a user's `usage_ledger` rows: parameter parsing (time ranges,
//! filters, cursors) and the SQL, kept here so it is unit-tested natively and
//! the index checks (EXPLAIN QUERY PLAN) run the very text the Worker runs.
//!
//! Every query binds the caller's user id as `?1` and every index starts with
//! `user_id`: no parameter can reach another user's rows.

use crate::time;

/// Largest instant bound we pass to D1 (JavaScript's largest safe integer).
pub const MAX_MS: i64 = (1 << 53) - 1;

/// `[from_ms, to_ms)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeRange {
    pub from_ms: i64,
    pub to_ms: i64,
}

impl TimeRange {
    /// `from`: an RFC 3339 instant or a date (its 00:00 UTC). `to`: an instant
    /// (exclusive) or a date (inclusive: up to the next day's 00:00 UTC).
    /// Missing bounds take the defaults.
    pub fn parse(from: Option<&str>, to: Option<&str>, default_from: i64, default_to: i64) -> Result<TimeRange, String> {
        let instant = |name: &str, text: &str| {
            time::parse(text).ok_or_else(|| format!("`{name}` must be a date (2026-01-31) or an RFC 3339 time (2026-01-31T12:00:00Z)."))
        };
        let from_ms = match from {
            Some(text) => instant("from", text)?.ms,
            None => default_from,
        };
        let to_ms = match to {
            Some(text) => {
                let parsed = instant("to", text)?;
                if parsed.date_only { parsed.ms + time::DAY_MS } else { parsed.ms }
            }
            None => default_to,
        };
        if from_ms >= to_ms {
            return Err("`from` must be before `to`.".into());
        }
        Ok(TimeRange { from_ms: from_ms.max(-MAX_MS), to_ms: to_ms.min(MAX_MS) })
    }

    /// The current calendar month in UTC, up to now (and anything later).
    pub fn month_to_date(now_ms: i64) -> TimeRange {
        TimeRange { from_ms: time::month_start(now_ms), to_ms: MAX_MS }
    }
}

/// Keyset position: the last row of the previous page. Rows are ordered by
/// `created_at DESC, request_id ASC`, a total order, so a page starts strictly
/// after its cursor: rows inserted meanwhile can neither repeat nor shift a
/// row out of the remaining pages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: i64,
    pub request_id: String,
}

impl Cursor {
    /// Opaque to clients: hex of `v1:<created_at>:<request_id>`.
    pub fn encode(&self) -> String {
        hex::encode(format!("v1:{}:{}", self.created_at, self.request_id))
    }

    pub fn decode(text: &str) -> Result<Cursor, String> {
        let bad = || "`cursor` is not a cursor returned by this API.".to_string();
        let raw = String::from_utf8(hex::decode(text.trim()).map_err(|_| bad())?).map_err(|_| bad())?;
        let rest = raw.strip_prefix("v1:").ok_or_else(bad)?;
        let (at, id) = rest.split_once(':').ok_or_else(bad)?;
        let created_at = at.parse::<i64>().map_err(|_| bad())?;
        if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad());
        }
        Ok(Cursor { created_at, request_id: id.to_string() })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupBy {
    Day,
    Model,
    Key,
    /// One group per (UTC day, model): the dashboard's daily-spend chart.
    DayModel,
}

impl GroupBy {
    pub fn parse(text: Option<&str>) -> Result<GroupBy, String> {
        match text.unwrap_or("day") {
            "day" => Ok(GroupBy::Day),
            "model" => Ok(GroupBy::Model),
            "key" => Ok(GroupBy::Key),
            "day_model" => Ok(GroupBy::DayModel),
            _ => Err("`group_by` must be `day`, `model`, `key` or `day_model`.".into()),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Day => "day",
            GroupBy::Model => "model",
            GroupBy::Key => "key",
            GroupBy::DayModel => "day_model",
        }
    }

    fn sql(self) -> &'static str {
        match self {
            GroupBy::Day => "created_at / 86400000",
            GroupBy::Model => "model",
            GroupBy::Key => "key_id",
            // `<day number>:<model>`; split again by the report.
            GroupBy::DayModel => "(created_at / 86400000) || ':' || model",
        }
    }
}

/// Optional equality filters of the history and the export.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filters {
    pub model: Option<String>,
    pub key_id: Option<String>,
    pub session_id: Option<String>,
    pub status: Option<String>,
}

impl Filters {
    /// From query parameters `model`, `key`, `session` (or `session_id`), `status`.
    pub fn parse(get: impl Fn(&str) -> Option<String>) -> Result<Filters, String> {
        let bounded = |name: &str, max: usize| -> Result<Option<String>, String> {
            match get(name) {
                Some(v) if v.is_empty() || v.len() > max => Err(format!("`{name}` must be 1–{max} characters.")),
                other => Ok(other),
            }
        };
        let status = bounded("status", 32)?;
        if let Some(s) = &status {
            if !["billed", "needs_review", "refunded"].contains(&s.as_str()) {
                return Err("`status` must be `billed`, `needs_review` or `refunded`.".into());
            }
        }
        let session = match bounded("session", 128)? {
            Some(s) => Some(s),
            None => bounded("session_id", 128)?,
        };
        Ok(Filters { model: bounded("model", 200)?, key_id: bounded("key", 64)?, session_id: session, status })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Param {
    Text(String),
    Int(i64),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    pub sql: String,
    pub params: Vec<Param>,
}

impl Query {
    /// The SQL with its parameters written in as literals, for tools that bind
    /// nothing (`wrangler d1 execute` running EXPLAIN QUERY PLAN in the tests
    /// and the bench). Requests always bind parameters.
    pub fn inline(&self) -> String {
        let mut out = String::with_capacity(self.sql.len() + 64);
        let mut chars = self.sql.chars().peekable();
        while let Some(c) = chars.next() {
            let mut digits = String::new();
            while c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
                digits.push(chars.next().expect("peeked"));
            }
            match digits.parse::<usize>().ok().and_then(|n| self.params.get(n.wrapping_sub(1))) {
                Some(Param::Text(t)) => out.push_str(&format!("'{}'", t.replace('\'', "''"))),
                Some(Param::Int(n)) => out.push_str(&n.to_string()),
                None => {
                    out.push(c);
                    out.push_str(&digits);
                }
            }
        }
        out
    }
}

/// The columns of a ledger row as the API shows it (`usage_report::LedgerRow`).
pub const ROW_COLUMNS: &str = "request_id, key_id, model, session_id, prompt_tokens, completion_tokens, cached_tokens, \
reasoning_tokens, provider_cost_micros, user_price_micros, price_basis, billing_status, upstream_status, stream, \
cancelled, client_source, client_version, generation_id, latency_ms, created_at, api";

/// The index for a history query: the one whose prefix is `user_id` plus the
/// most selective filter present, then `created_at`, so a page reads only
/// matching rows in order (ties on `created_at` are sorted in a small temp
/// b-tree). Named explicitly: without statistics the planner may prefer
/// walking `usage_user_time` and filtering, which for a rare value reads the
/// user's whole history.
pub fn history_index(filters: &Filters) -> &'static str {
    if filters.model.is_some() {
        "usage_user_model_time"
    } else if filters.key_id.is_some() {
        "usage_user_key_time"
    } else if filters.session_id.is_some() {
        "usage_user_session_time"
    } else if filters.status.is_some() {
        "usage_user_status_time"
    } else {
        "usage_user_time"
    }
}

/// One page of rows, newest first, strictly after `after`.
pub fn history(user_id: &str, range: TimeRange, filters: &Filters, after: Option<&Cursor>, limit: u32) -> Query {
    let mut params = vec![Param::Text(user_id.into()), Param::Int(range.from_ms), Param::Int(range.to_ms)];
    let index = history_index(filters);
    let mut sql = format!("SELECT {ROW_COLUMNS} FROM usage_ledger INDEXED BY {index} WHERE user_id = ?1 AND created_at >= ?2 AND created_at < ?3");
    for (column, value) in [
        ("model", &filters.model),
        ("key_id", &filters.key_id),
        ("session_id", &filters.session_id),
        ("billing_status", &filters.status),
    ] {
        if let Some(v) = value {
            params.push(Param::Text(v.clone()));
            sql.push_str(&format!(" AND {column} = ?{}", params.len()));
        }
    }
    if let Some(c) = after {
        params.push(Param::Int(c.created_at));
        params.push(Param::Text(c.request_id.clone()));
        let (at, id) = (params.len() - 1, params.len());
        sql.push_str(&format!(" AND (created_at < ?{at} OR (created_at = ?{at} AND request_id > ?{id}))"));
    }
    params.push(Param::Int(limit as i64));
    sql.push_str(&format!(" ORDER BY created_at DESC, request_id ASC LIMIT ?{}", params.len()));
    Query { sql, params }
}

/// Totals per group over a time range; reads only that range of the user's rows.
pub fn summary(user_id: &str, range: TimeRange, group: GroupBy) -> Query {
    let sql = format!(
        "SELECT {} AS grp, COUNT(*) AS requests, SUM(prompt_tokens) AS input_tokens, SUM(completion_tokens) AS output_tokens, \
         SUM(provider_cost_micros) AS provider_cost_micros, SUM(user_price_micros) AS user_price_micros, \
         SUM(billing_status = 'needs_review' AND resolved_at IS NULL) AS needs_review \
         FROM usage_ledger INDEXED BY usage_user_time WHERE user_id = ?1 AND created_at >= ?2 AND created_at < ?3 \
         GROUP BY grp ORDER BY grp",
        group.sql()
    );
    Query { sql, params: vec![Param::Text(user_id.into()), Param::Int(range.from_ms), Param::Int(range.to_ms)] }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_forgeries() {
        let c = Cursor { created_at: 1_769_508_000_123, request_id: "req_0123abcd".into() };
        assert_eq!(Cursor::decode(&c.encode()), Ok(c.clone()));
        let negative = Cursor { created_at: -5, request_id: "r:with:colons".into() };
        assert_eq!(Cursor::decode(&negative.encode()), Ok(negative));
        for bad in ["", "zz", "00", &hex::encode("v2:1:r"), &hex::encode("v1:x:r"), &hex::encode("v1:1:"), &hex::encode("v1:1:a b")] {
            assert!(Cursor::decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges_take_dates_inclusively_and_instants_exactly() {
        let day = |d: &str| time::parse(d).unwrap().ms;
        let r = TimeRange::parse(Some("2026-01-01"), Some("2026-01-31"), 0, MAX_MS).unwrap();
        assert_eq!((r.from_ms, r.to_ms), (day("2026-01-01"), day("2026-02-01")));
        let r = TimeRange::parse(Some("2026-01-01T10:00:00Z"), Some("2026-01-01T11:00:00Z"), 0, MAX_MS).unwrap();
        assert_eq!(r.to_ms - r.from_ms, 3_600_000);
        assert_eq!(TimeRange::parse(None, None, 5, 9).unwrap(), TimeRange { from_ms: 5, to_ms: 9 });
        assert!(TimeRange::parse(Some("2026-01-02"), Some("2026-01-01"), 0, MAX_MS).is_err());
        assert!(TimeRange::parse(Some("2026-01-01T10:00:00Z"), Some("2026-01-01T10:00:00Z"), 0, MAX_MS).is_err());
        assert!(TimeRange::parse(Some("yesterday"), None, 0, MAX_MS).is_err());
        let mtd = TimeRange::month_to_date(day("2026-03-31") + 5);
        assert_eq!((mtd.from_ms, mtd.to_ms), (day("2026-03-01"), MAX_MS));
    }

    #[test]
    fn filters_are_validated() {
        let q = |pairs: &'static [(&'static str, &'static str)]| {
            Filters::parse(|n| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.to_string()))
        };
        assert_eq!(q(&[]).unwrap(), Filters::default());
        let f = q(&[("model", "openai/gpt-4o"), ("key", "key_1"), ("session_id", "s1"), ("status", "needs_review")]).unwrap();
        assert_eq!((f.model.as_deref(), f.key_id.as_deref(), f.session_id.as_deref()), (Some("openai/gpt-4o"), Some("key_1"), Some("s1")));
        assert!(q(&[("status", "paid")]).is_err());
        assert!(q(&[("model", "")]).is_err());
        assert_eq!(GroupBy::parse(None), Ok(GroupBy::Day));
        assert!(GroupBy::parse(Some("user")).is_err());
    }

    #[test]
    fn history_sql_binds_the_user_first_and_the_cursor_as_a_keyset() {
        let range = TimeRange { from_ms: 0, to_ms: MAX_MS };
        let plain = history("u1", range, &Filters::default(), None, 51);
        assert_eq!(plain.params, vec![Param::Text("u1".into()), Param::Int(0), Param::Int(MAX_MS), Param::Int(51)]);
        assert!(plain.sql.ends_with("ORDER BY created_at DESC, request_id ASC LIMIT ?4"), "{}", plain.sql);
        assert!(plain.sql.contains("FROM usage_ledger INDEXED BY usage_user_time WHERE"), "{}", plain.sql);
        let by_session = Filters { session_id: Some("s".into()), status: Some("billed".into()), ..Default::default() };
        assert_eq!(history_index(&by_session), "usage_user_session_time");
        let filters = Filters { model: Some("m".into()), status: Some("billed".into()), ..Default::default() };
        let cursor = Cursor { created_at: 7, request_id: "r".into() };
        let q = history("u1", range, &filters, Some(&cursor), 11);
        assert!(q.sql.contains("AND model = ?4 AND billing_status = ?5"), "{}", q.sql);
        assert!(q.sql.contains("AND (created_at < ?6 OR (created_at = ?6 AND request_id > ?7))"), "{}", q.sql);
        assert_eq!(q.params[5..], [Param::Int(7), Param::Text("r".into()), Param::Int(11)]);
        assert!(q.inline().contains("user_id = 'u1' AND created_at >= 0") && q.inline().ends_with("LIMIT 11"), "{}", q.inline());
        let quoted = history("o'brien?2", range, &Filters::default(), None, 1).inline();
        assert!(quoted.contains("user_id = 'o''brien?2' AND created_at >= 0 AND"), "{quoted}");
        let s = summary("u1", range, GroupBy::Key);
        assert!(s.sql.starts_with("SELECT key_id AS grp") && s.sql.contains("user_id = ?1 AND created_at >= ?2 AND created_at < ?3"));
    }
}
