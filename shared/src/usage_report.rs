//! The usage views' shapes, built from ledger rows (one source of truth).
//!
//! Money: the CLI-compatible `/me/usage` object uses JSON numbers (the CLI
//! requires them), written from exact decimals; history, summary and export
//! use exact decimal strings. `credits_cents` is whole cents rounded down (a
//! balance is never overstated, like `X-Dexto-Credits-Remaining`); cost cents
//! are exact, fractional when the cost is (like `X-Dexto-Cost-Cents`).

use crate::csv;
use crate::money::Micros;
use crate::time::{date, rfc3339, rfc3339_millis, DAY_MS};
use crate::usage_query::{GroupBy, TimeRange, MAX_MS};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// A `usage_ledger` row as selected by `usage_query::ROW_COLUMNS`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct LedgerRow {
    pub request_id: String,
    pub key_id: String,
    pub model: String,
    pub session_id: Option<String>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cached_tokens: i64,
    pub reasoning_tokens: i64,
    pub provider_cost_micros: i64,
    pub user_price_micros: i64,
    pub price_basis: String,
    pub billing_status: String,
    pub upstream_status: Option<i64>,
    pub stream: i64,
    pub cancelled: i64,
    pub client_source: Option<String>,
    pub client_version: Option<String>,
    pub generation_id: Option<String>,
    pub latency_ms: i64,
    pub created_at: i64,
    /// The API dialect: chat, messages or responses.
    #[serde(default)]
    pub api: String,
}

/// One group of `usage_query::summary`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct GroupTotal {
    /// Day number (`created_at / 86400000`), model id or key id.
    pub grp: Value,
    pub requests: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub provider_cost_micros: i64,
    pub user_price_micros: i64,
    pub needs_review: i64,
}

impl GroupTotal {
    fn name(&self) -> String {
        match &self.grp {
            Value::Number(n) => date(n.as_i64().unwrap_or(0) * DAY_MS),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    /// A `day_model` group's `<day number>:<model>` as (`YYYY-MM-DD`, model).
    fn day_and_model(&self) -> (String, String) {
        let text = self.name();
        let (day, model) = text.split_once(':').unwrap_or(("0", text.as_str()));
        (date(day.parse::<i64>().unwrap_or(0) * DAY_MS), model.to_string())
    }
}

pub const CSV_HEADER: &[&str] = &[
    "request_id", "timestamp", "model", "key_id", "session_id", "input_tokens", "output_tokens", "cached_tokens",
    "reasoning_tokens", "provider_cost_usd", "user_price_usd", "price_basis", "billing_status", "stream", "cancelled",
    "upstream_status", "client_source", "client_version", "generation_id", "api",
];

impl LedgerRow {
    /// A history / JSON-export entry.
    pub fn history_json(&self) -> Value {
        json!({
            "request_id": self.request_id, "timestamp": rfc3339_millis(self.created_at), "created_at_ms": self.created_at,
            "model": self.model, "key_id": self.key_id, "session_id": self.session_id,
            "input_tokens": self.prompt_tokens, "output_tokens": self.completion_tokens,
            "cached_tokens": self.cached_tokens, "reasoning_tokens": self.reasoning_tokens,
            "provider_cost_usd": Micros(self.provider_cost_micros).usd_fixed(),
            "user_price_usd": Micros(self.user_price_micros).usd_fixed(),
            "price_basis": self.price_basis, "billing_status": self.billing_status,
            "stream": self.stream != 0, "cancelled": self.cancelled != 0, "upstream_status": self.upstream_status,
            "client_source": self.client_source, "client_version": self.client_version,
            "generation_id": self.generation_id, "latency_ms": self.latency_ms, "api": self.api,
        })
    }

    /// A CSV record in `CSV_HEADER` order.
    pub fn csv_record(&self) -> String {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        // Client-supplied text must not become a spreadsheet formula.
        let client = |v: &Option<String>| csv::inert(&opt(v));
        csv::record(&[
            self.request_id.clone(), rfc3339_millis(self.created_at), self.model.clone(), self.key_id.clone(),
            client(&self.session_id), self.prompt_tokens.to_string(), self.completion_tokens.to_string(),
            self.cached_tokens.to_string(), self.reasoning_tokens.to_string(),
            Micros(self.provider_cost_micros).usd_fixed(), Micros(self.user_price_micros).usd_fixed(),
            self.price_basis.clone(), self.billing_status.clone(), (self.stream != 0).to_string(),
            (self.cancelled != 0).to_string(), self.upstream_status.map(|s| s.to_string()).unwrap_or_default(),
            client(&self.client_source), client(&self.client_version), opt(&self.generation_id), self.api.clone(),
        ])
    }
}

/// `GET /me/usage` and `/api/account/usage`: the CLI's shape and the plan's in
/// one object. `by_model` is the month-to-date summary grouped by model.
pub fn me_usage(balance: Micros, month_start_ms: i64, by_model: &[GroupTotal], recent: &[LedgerRow]) -> Value {
    let total = Micros(by_model.iter().map(|g| g.user_price_micros).sum());
    let requests: i64 = by_model.iter().map(|g| g.requests).sum();
    let mut models = Map::new();
    for g in by_model {
        let cost = Micros(g.user_price_micros);
        models.insert(
            g.name(),
            json!({
                "requests": g.requests, "cost_usd": cost.as_json_usd(), "cost_cents": cost.as_json_cents(),
                "tokens": g.input_tokens + g.output_tokens, "input_tokens": g.input_tokens, "output_tokens": g.output_tokens,
            }),
        );
    }
    let recent: Vec<Value> = recent
        .iter()
        .map(|r| {
            let cost = Micros(r.user_price_micros);
            json!({
                "timestamp": rfc3339(r.created_at), "ts": rfc3339(r.created_at), "request_id": r.request_id,
                "model": r.model, "cost_usd": cost.as_json_usd(), "cost_cents": cost.as_json_cents(),
                "input_tokens": r.prompt_tokens, "output_tokens": r.completion_tokens,
            })
        })
        .collect();
    json!({
        "credits_usd": balance.as_json_usd(),
        "credits_cents": balance.whole_cents_floor(),
        "mtd_usage": {
            "total_cost_usd": total.as_json_usd(), "total_requests": requests,
            "cost_cents": total.as_json_cents(), "requests": requests,
            "by_model": models,
            "period_start": rfc3339(month_start_ms),
        },
        "recent": recent,
    })
}

fn totals_json(requests: i64, input: i64, output: i64, provider: i64, price: i64, review: i64) -> Map<String, Value> {
    let v = json!({
        "requests": requests, "input_tokens": input, "output_tokens": output, "tokens": input + output,
        "provider_cost_usd": Micros(provider).usd_fixed(), "user_price_usd": Micros(price).usd_fixed(),
        "needs_review": review,
    });
    match v {
        Value::Object(map) => map,
        _ => unreachable!("json! object"),
    }
}

/// `GET /me/usage/summary`: totals per group and overall, amounts as exact strings.
pub fn summary(group_by: GroupBy, range: TimeRange, groups: &[GroupTotal]) -> Value {
    let data: Vec<Value> = groups
        .iter()
        .map(|g| {
            let mut row = totals_json(g.requests, g.input_tokens, g.output_tokens, g.provider_cost_micros, g.user_price_micros, g.needs_review);
            row.insert("group".into(), g.name().into());
            match group_by {
                GroupBy::Key => {
                    row.insert("key_id".into(), g.name().into());
                }
                GroupBy::DayModel => {
                    let (day, model) = g.day_and_model();
                    row.insert("day".into(), day.into());
                    row.insert("model".into(), model.into());
                }
                _ => {
                    row.insert(group_by.as_str().into(), g.name().into());
                }
            }
            Value::Object(row)
        })
        .collect();
    let sum = |f: fn(&GroupTotal) -> i64| groups.iter().map(f).sum::<i64>();
    let total = totals_json(
        sum(|g| g.requests), sum(|g| g.input_tokens), sum(|g| g.output_tokens),
        sum(|g| g.provider_cost_micros), sum(|g| g.user_price_micros), sum(|g| g.needs_review),
    );
    json!({
        "object": "usage.summary", "group_by": group_by.as_str(),
        "from": rfc3339_millis(range.from_ms),
        "to": (range.to_ms < MAX_MS).then(|| rfc3339_millis(range.to_ms)),
        "data": data, "total": total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse;

    fn row(id: &str, model: &str, price: i64, at: &str) -> LedgerRow {
        LedgerRow {
            request_id: id.into(), key_id: "key_1".into(), model: model.into(), prompt_tokens: 800, completion_tokens: 120,
            provider_cost_micros: price - 1, user_price_micros: price, price_basis: "reported_cost".into(),
            billing_status: "billed".into(), stream: 1, created_at: parse(at).unwrap().ms, ..Default::default()
        }
    }

    fn group(name: Value, requests: i64, price: i64) -> GroupTotal {
        GroupTotal { grp: name, requests, input_tokens: 10 * requests, output_tokens: requests, provider_cost_micros: price, user_price_micros: price, needs_review: 0 }
    }

    #[test]
    fn me_usage_satisfies_the_cli_and_the_plan_shapes() {
        let by_model = [group("anthropic/claude-haiku-4.5".into(), 40, 120_000), group("openai/gpt-4o".into(), 2, 3_400)];
        let recent = [row("req_1", "openai/gpt-4o", 3_000, "2026-01-27T10:00:00.900Z")];
        let v = me_usage(Micros(4_870_001), parse("2026-01-01").unwrap().ms, &by_model, &recent);
        // CLI shape.
        assert_eq!(v["credits_usd"], json!(4.870001));
        assert_eq!(v["mtd_usage"]["total_cost_usd"], json!(0.1234));
        assert_eq!(v["mtd_usage"]["total_requests"], 42);
        let haiku = &v["mtd_usage"]["by_model"]["anthropic/claude-haiku-4.5"];
        assert_eq!((haiku["requests"].clone(), haiku["cost_usd"].clone(), haiku["tokens"].clone()), (json!(40), json!(0.12), json!(440)));
        let r = &v["recent"][0];
        assert_eq!((r["timestamp"].as_str(), r["model"].as_str()), (Some("2026-01-27T10:00:00Z"), Some("openai/gpt-4o")));
        assert_eq!((r["cost_usd"].clone(), r["input_tokens"].clone(), r["output_tokens"].clone()), (json!(0.003), json!(800), json!(120)));
        // Plan shape.
        assert_eq!(v["credits_cents"], 487);
        assert_eq!((v["mtd_usage"]["cost_cents"].clone(), v["mtd_usage"]["requests"].clone()), (json!(12.34), json!(42)));
        assert_eq!((r["ts"].as_str(), r["cost_cents"].clone()), (Some("2026-01-27T10:00:00Z"), json!(0.3)));
        assert_eq!(v["mtd_usage"]["period_start"], "2026-01-01T00:00:00Z");
    }

    #[test]
    fn an_empty_month_and_a_negative_balance_are_exact() {
        let v = me_usage(Micros(-1), 0, &[], &[]);
        assert_eq!((v["credits_usd"].clone(), v["credits_cents"].clone()), (json!(-0.000001), json!(-1)));
        assert_eq!((v["mtd_usage"]["total_cost_usd"].clone(), v["mtd_usage"]["total_requests"].clone()), (json!(0.0), json!(0)));
        assert_eq!((v["mtd_usage"]["by_model"].clone(), v["recent"].clone()), (json!({}), json!([])));
    }

    #[test]
    fn summaries_name_days_and_total_exactly() {
        let day = parse("2026-01-27").unwrap().ms / DAY_MS;
        let groups = [group(json!(day), 3, 1), group(json!(day + 1), 1, 999_999)];
        let range = TimeRange { from_ms: parse("2026-01-01").unwrap().ms, to_ms: MAX_MS };
        let v = summary(GroupBy::Day, range, &groups);
        assert_eq!((v["data"][0]["day"].as_str(), v["data"][1]["group"].as_str()), (Some("2026-01-27"), Some("2026-01-28")));
        assert_eq!((v["total"]["requests"].clone(), v["total"]["user_price_usd"].clone()), (json!(4), json!("1.000000")));
        assert_eq!((v["from"].as_str(), v["to"].clone()), (Some("2026-01-01T00:00:00.000Z"), Value::Null));
        let keys = summary(GroupBy::Key, range, &[group("key_9".into(), 1, 5)]);
        let by_day_model = summary(GroupBy::DayModel, range, &[group("20422:openai/gpt-4o:extended".into(), 1, 5)]);
        assert_eq!((by_day_model["data"][0]["day"].as_str(), by_day_model["data"][0]["model"].as_str()), (Some("2025-11-30"), Some("openai/gpt-4o:extended")));
        assert_eq!(keys["data"][0]["key_id"], "key_9");
    }

    #[test]
    fn rows_render_as_history_entries_and_csv_records() {
        let mut r = row("req_1", "openai/gpt-4o", 3_379, "2026-01-27T10:00:00.042Z");
        r.session_id = Some("s,\"1\"".into());
        r.api = "messages".into();
        let h = r.history_json();
        assert_eq!(h["api"], "messages");
        assert_eq!((h["user_price_usd"].as_str(), h["provider_cost_usd"].as_str()), (Some("0.003379"), Some("0.003378")));
        assert_eq!((h["stream"].clone(), h["cancelled"].clone(), h["timestamp"].clone()), (json!(true), json!(false), json!("2026-01-27T10:00:00.042Z")));
        let line = r.csv_record();
        assert!(line.starts_with("req_1,2026-01-27T10:00:00.042Z,openai/gpt-4o,key_1,\"s,\"\"1\"\"\",800,120,0,0,0.003378,0.003379,"), "{line}");
        assert!(line.ends_with(",true,false,,,,,messages\r\n"), "{line}");
        assert_eq!(csv::record(CSV_HEADER).matches(',').count() + 1, CSV_HEADER.len());
    }
}
