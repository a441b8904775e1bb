//! The figures we track: each one through the gateway and through the floor
//! (tools/bench-floor), and gateway ÷ floor. Absolute times on a loaded
//! machine are noise; a ratio measured in one run is comparable across runs.

pub struct Table {
    header: [&'static str; 4],
    rows: Vec<[String; 4]>,
}

impl Default for Table {
    fn default() -> Table {
        Table::titled(["figure", "gateway", "floor", "gateway ÷ floor"])
    }
}

impl Table {
    /// A table of figures compared with another column (e.g. a dialect's with chat's).
    pub fn titled(header: [&'static str; 4]) -> Table {
        Table { header, rows: Vec::new() }
    }

    /// A figure in `unit` (`"ms"`, `"req/s"`, …) with its ratio.
    pub fn add(&mut self, figure: &str, unit: &str, gateway: f64, floor: f64) {
        // An added latency at or below zero (noise) has no meaningful ratio.
        let ratio = if floor > 0.0 && gateway > 0.0 { format!("{:.2}×", gateway / floor) } else { "n/a".into() };
        self.rows.push([figure.into(), format!("{gateway:.2} {unit}"), format!("{floor:.2} {unit}"), ratio]);
    }

    /// A count (errors): no ratio.
    pub fn count(&mut self, figure: &str, gateway: u64, floor: u64) {
        self.rows.push([figure.into(), gateway.to_string(), floor.to_string(), "—".into()]);
    }

    pub fn print(&self) {
        let header = self.header.map(String::from);
        let width = |c: usize| self.rows.iter().chain([&header]).map(|r| r[c].chars().count()).max().unwrap_or(0);
        let widths = [width(0), width(1), width(2), width(3)];
        let line = |r: &[String; 4]| {
            let cells: Vec<String> = r.iter().zip(widths).enumerate().map(|(c, (s, w))| if c == 0 { format!("{s:<w$}") } else { format!("{s:>w$}") }).collect();
            println!("| {} |", cells.join(" | "));
        };
        line(&header);
        println!("|{}|", widths.iter().map(|w| "-".repeat(w + 2)).collect::<Vec<_>>().join("|"));
        self.rows.iter().for_each(line);
    }
}
