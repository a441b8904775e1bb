//! Structured JSON logs: one line per event, never prompts, completions, keys or
//! tokens. Fields are passed explicitly so nothing secret can slip in via Debug.

use serde_json::{Map, Value};

pub fn event(name: &str, fields: Value) {
    let mut line = Map::new();
    line.insert("ts".into(), Value::from(crate::time::rfc3339(crate::http::now_ms())));
    line.insert("event".into(), Value::from(name));
    if let Value::Object(extra) = fields {
        line.extend(extra);
    }
    worker::console_log!("{}", Value::Object(line));
}
