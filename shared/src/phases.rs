//! Where a request's time goes: named phases, measured as it runs (edge →
//! chat Worker → wallet object → upstream → back), rendered as one
//! `Server-Timing` header and as a `phases` object in the request's log line.
//! Pure: the caller reads its clock (`http::clock_ms`) and records laps.
//!
//! Each side measures only its own phases with its own clock; the chat
//! Worker's arrive at the wallet object with the exchange, and the hop
//! between them is wall clock on both sides (millisecond resolution).

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Phases {
    laps: Vec<(String, f64)>,
    #[serde(skip)]
    mark: f64,
}

impl Phases {
    /// Starts timing at `now` (ms).
    pub fn start(now: f64) -> Phases {
        Phases { laps: Vec::new(), mark: now }
    }

    /// Ends the phase running since the last lap, named `name`; the next one starts now.
    pub fn lap(&mut self, name: &str, now: f64) {
        self.laps.push((name.to_string(), (now - self.mark).max(0.0)));
        self.mark = now;
    }

    /// Restarts the clock at `now` without recording (a new side of the hop).
    pub fn resume(&mut self, now: f64) {
        self.mark = now;
    }

    /// Records a phase measured elsewhere.
    pub fn record(&mut self, name: &str, ms: f64) {
        self.laps.push((name.to_string(), ms.max(0.0)));
    }

    pub fn get(&self, name: &str) -> Option<f64> {
        self.laps.iter().find(|(n, _)| n == name).map(|(_, ms)| *ms)
    }

    /// `auth;dur=0.12, body;dur=0.40, …`
    pub fn server_timing(&self) -> String {
        self.laps.iter().map(|(n, ms)| format!("{n};dur={ms:.2}")).collect::<Vec<_>>().join(", ")
    }

    /// `{"auth": 0.12, …}` for the log line (µs precision).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(self.laps.iter().map(|(n, ms)| (n.clone(), serde_json::json!((ms * 1000.0).round() / 1000.0))).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laps_measure_from_the_previous_lap_and_render_once() {
        let mut p = Phases::start(100.0);
        p.lap("auth", 100.25);
        p.lap("quote", 101.0);
        p.resume(200.0);
        p.lap("admit", 200.5);
        p.record("hop", 3.0);
        assert_eq!(p.server_timing(), "auth;dur=0.25, quote;dur=0.75, admit;dur=0.50, hop;dur=3.00");
        assert_eq!(p.to_json()["quote"], 0.75);
        assert_eq!(p.get("admit"), Some(0.5));
        let back: Phases = serde_json::from_value(serde_json::to_value(&p).unwrap()).unwrap();
        assert_eq!(back.server_timing(), p.server_timing(), "phases travel with the exchange");
    }
}
