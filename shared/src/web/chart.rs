//! Daily spend by model over a window of days, as an inline SVG (stacked
//! bars, one colour per model, the rest as "other") plus a legend. Drawn on
//! the server: no chart library, no script. Readable without hovering: the
//! date axis is labelled (every few days and the last), the value axis shows
//! its top and zero; and by screen readers: each day's bar is a group whose
//! `<title>` says the date and its total, each segment has its own `<title>`
//! (the page also has the rows as a table).
//! Colours are SVG attributes and stylesheet classes (`.s0`…`.s5` in the
//! dashboard's CSS, same order), never inline `style`: the CSP forbids it.

use super::html::{esc, usd};
use crate::money::Micros;
use std::collections::BTreeMap;

/// Models beyond this many (by spend) are drawn as one "other" series.
const SERIES: usize = 5;
const COLOURS: [&str; SERIES + 1] = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#6b7280"];
const WIDTH: i64 = 600;
/// The plot area: left of it the value labels, under it the date labels.
const LEFT: i64 = 64;
const TOP: i64 = 8;
const PLOT_HEIGHT: i64 = 150;
const BASELINE: i64 = TOP + PLOT_HEIGHT;
const HEIGHT: i64 = BASELINE + 22;
/// At most this many date labels, so they never overlap.
const DATE_LABELS: usize = 7;

pub struct DaySpend {
    /// `YYYY-MM-DD`
    pub day: String,
    pub model: String,
    pub cost: Micros,
}

/// `days`: every day of the window in order (so empty days show as gaps).
pub fn render(days: &[String], rows: &[DaySpend]) -> String {
    let mut by_model: BTreeMap<&str, i64> = BTreeMap::new();
    for r in rows {
        *by_model.entry(&r.model).or_default() += r.cost.0;
    }
    let mut ranked: Vec<(&str, i64)> = by_model.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let named: Vec<&str> = ranked.iter().take(SERIES).map(|(m, _)| *m).collect();
    let series_of = |model: &str| named.iter().position(|m| *m == model).unwrap_or(SERIES);
    // day index → per-series totals
    let mut stacks = vec![[0i64; SERIES + 1]; days.len()];
    for r in rows {
        if let Some(d) = days.iter().position(|d| *d == r.day) {
            stacks[d][series_of(&r.model)] += r.cost.0;
        }
    }
    let max = stacks.iter().map(|s| s.iter().sum::<i64>()).max().unwrap_or(0).max(1);
    let slot = (WIDTH - LEFT) / (days.len().max(1) as i64);
    let bar = (slot - 2).max(1);
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart-title"><title id="chart-title">Daily spend by model, {} to {}</title>"#,
        esc(days.first().map_or("", String::as_str)),
        esc(days.last().map_or("", String::as_str))
    );
    // Value axis: its top (the largest day) and zero, with the baseline.
    svg.push_str(&format!(
        r##"<g class="axis" fill="#6b7280" font-size="11"><text x="{}" y="{}" text-anchor="end">{}</text><text x="{}" y="{BASELINE}" text-anchor="end">$0</text><line x1="{LEFT}" y1="{BASELINE}" x2="{WIDTH}" y2="{BASELINE}" stroke="#d1d5db"/></g>"##,
        LEFT - 6,
        TOP + 10,
        usd(Micros(max)),
        LEFT - 6,
    ));
    // Date axis: every `step`-th day from the first, and always the last
    // (whose label replaces a regular one too close to it).
    let step = days.len().div_ceil(DATE_LABELS).max(1);
    let labelled = |d: usize| d + 1 == days.len() || (d.is_multiple_of(step) && days.len() - 1 - d >= step.div_ceil(2));
    let mut dates = String::from(r##"<g class="axis" fill="#6b7280" font-size="11" text-anchor="middle">"##);
    for (d, day) in days.iter().enumerate() {
        if labelled(d) {
            dates.push_str(&format!(r#"<text x="{}" y="{}">{}</text>"#, LEFT + d as i64 * slot + bar / 2, HEIGHT - 4, esc(short_date(day))));
        }
    }
    dates.push_str("</g>");
    svg.push_str(&dates);
    for (d, stack) in stacks.iter().enumerate() {
        let total: i64 = stack.iter().sum();
        if total == 0 {
            continue;
        }
        svg.push_str(&format!(r#"<g class="day"><title>{}: {} in all</title>"#, esc(&days[d]), usd(Micros(total))));
        let mut y = BASELINE;
        for (s, &cost) in stack.iter().enumerate() {
            if cost == 0 {
                continue;
            }
            let h = (cost * PLOT_HEIGHT / max).max(1);
            y -= h;
            let label = if s < SERIES { named[s] } else { "other models" };
            svg.push_str(&format!(
                r#"<rect class="bar" x="{}" y="{y}" width="{bar}" height="{h}" fill="{}"><title>{}: {} {}</title></rect>"#,
                LEFT + d as i64 * slot,
                COLOURS[s],
                esc(&days[d]),
                esc(label),
                usd(Micros(cost))
            ));
        }
        svg.push_str("</g>");
    }
    svg.push_str("</svg>");
    let mut legend = String::from(r#"<ul class="legend">"#);
    for (s, (model, total)) in ranked.iter().take(SERIES).enumerate() {
        legend.push_str(&format!(r#"<li><span class="swatch s{s}"></span>{} — {}</li>"#, esc(model), usd(Micros(*total))));
    }
    if ranked.len() > SERIES {
        let rest: i64 = ranked.iter().skip(SERIES).map(|(_, t)| t).sum();
        legend.push_str(&format!(r#"<li><span class="swatch s{SERIES}"></span>other models — {}</li>"#, usd(Micros(rest))));
    }
    legend.push_str("</ul>");
    format!("{svg}{legend}")
}

/// `2026-11-03` → `11-03`: the year is in the chart's title.
fn short_date(day: &str) -> &str {
    day.get(5..).unwrap_or(day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(day: &str, model: &str, cost: i64) -> DaySpend {
        DaySpend { day: day.into(), model: model.into(), cost: Micros(cost) }
    }

    #[test]
    fn one_segment_per_day_and_model_tallest_is_full_height() {
        let days: Vec<String> = ["2026-11-01", "2026-11-02", "2026-11-03"].map(String::from).to_vec();
        let out = render(&days, &[row("2026-11-01", "a/x", 500), row("2026-11-01", "b/y", 500), row("2026-11-03", "a/x", 250)]);
        assert_eq!(out.matches(r#"class="bar""#).count(), 3);
        // Plot 150 high from y=8: two halves of the tallest day, 75 each.
        assert!(out.contains(r#"x="64" y="83" width="176" height="75""#), "{out}");
        assert!(out.contains(r#"x="64" y="8" width="176" height="75""#), "{out}");
        assert!(out.contains("a/x — $0.00075") && out.contains("b/y — $0.0005"));
    }

    #[test]
    fn the_axes_are_labelled_and_each_bar_says_its_date_and_total() {
        let days: Vec<String> = (1..=30).map(|d| format!("2026-11-{d:02}")).collect();
        let out = render(&days, &[row("2026-11-02", "a/x", 1_000_000), row("2026-11-02", "b/y", 500_000), row("2026-11-30", "a/x", 250_000)]);
        assert!(out.contains("<title>2026-11-02: $1.50 in all</title>"), "{out}");
        assert!(out.contains("<title>2026-11-30: $0.25 in all</title>"));
        assert!(out.contains(">$1.50</text>") && out.contains(">$0</text>"), "the value axis shows its top and zero");
        let labels: Vec<&str> = out.match_indices(r#"<text x=""#).map(|(i, _)| &out[i..]).filter_map(|t| t.split('>').nth(1)?.strip_suffix("</text")).collect();
        assert!(labels.contains(&"11-01") && labels.contains(&"11-30"), "first and last day: {labels:?}");
        let dates = labels.iter().filter(|l| l.starts_with("11-")).count();
        assert!((5..=8).contains(&dates), "a date every few days, never crowded: {labels:?}");
    }

    #[test]
    fn escapes_model_names_and_groups_the_tail() {
        let days = vec!["2026-11-01".to_string()];
        let mut rows: Vec<DaySpend> = (0..7).map(|i| row("2026-11-01", &format!("m{i}"), 100 + i)).collect();
        rows.push(row("2026-11-01", "<script>x</script>", 1_000));
        let out = render(&days, &rows);
        assert!(!out.contains("<script>") && out.contains("&lt;script&gt;"));
        assert!(out.contains("other models"));
    }

    #[test]
    fn empty_window_draws_no_bars() {
        let out = render(&["2026-11-01".to_string()], &[]);
        assert_eq!(out.matches("<rect").count(), 0);
    }
}
