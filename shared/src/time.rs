//! Time as integer Unix milliseconds, UTC. The Workers runtime and native code
//! both expose `SystemTime` (on wasm via `Date.now()` in the worker glue), so
//! callers pass `now_ms` in explicitly; domain logic never reads a clock itself.

pub type UnixMillis = i64;

pub const DAY_MS: i64 = 86_400_000;

/// RFC 3339 UTC timestamp (second precision, `Z` suffix) for a Unix-ms instant.
pub fn rfc3339(ms: UnixMillis) -> String {
    let secs = ms.div_euclid(1000);
    let rem = secs.rem_euclid(86_400);
    format!("{}T{:02}:{:02}:{:02}Z", date(ms), rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// `YYYY-MM-DD HH:MM UTC`: for names a person reads.
pub fn utc_minute(ms: UnixMillis) -> String {
    let rem = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{} {:02}:{:02} UTC", date(ms), rem / 3600, (rem % 3600) / 60)
}

/// RFC 3339 UTC with milliseconds: `2026-01-27T10:00:00.123Z`.
pub fn rfc3339_millis(ms: UnixMillis) -> String {
    let base = rfc3339(ms);
    format!("{}.{:03}Z", &base[..base.len() - 1], ms.rem_euclid(1000))
}

/// The UTC calendar date `YYYY-MM-DD` of an instant.
pub fn date(ms: UnixMillis) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(DAY_MS));
    format!("{y:04}-{m:02}-{d:02}")
}

/// 00:00:00.000 UTC on the first day of the instant's calendar month.
pub fn month_start(ms: UnixMillis) -> UnixMillis {
    let (y, m, _) = civil_from_days(ms.div_euclid(DAY_MS));
    days_from_civil(y, m, 1) * DAY_MS
}

/// 00:00:00.000 UTC on the first day of the following month.
pub fn next_month_start(ms: UnixMillis) -> UnixMillis {
    let (y, m, _) = civil_from_days(ms.div_euclid(DAY_MS));
    let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    days_from_civil(y, m, 1) * DAY_MS
}

/// A parsed instant, and whether the text was a bare date (`YYYY-MM-DD`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parsed {
    pub ms: UnixMillis,
    pub date_only: bool,
}

/// Parses `YYYY-MM-DD` (00:00 UTC) or an RFC 3339 date-time with `Z` or a
/// `±HH:MM` offset and optional fractional seconds (kept to the millisecond).
pub fn parse(text: &str) -> Option<Parsed> {
    let text = text.trim();
    let b = text.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = text.get(from..from + len)?;
        part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok())?
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 2)? as u32, num(8, 2)? as u32);
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) {
        return None;
    }
    let day_ms = days_from_civil(y, mo, d) * DAY_MS;
    if b.len() == 10 {
        return Some(Parsed { ms: day_ms, date_only: true });
    }
    if !matches!(b[10], b'T' | b't' | b' ') || b.len() < 20 || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, mi, s) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0;
    if b.get(i) == Some(&b'.') {
        let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        let frac = &text[i + 1..i + 1 + digits];
        millis = format!("{:0<3}", &frac[..digits.min(3)]).parse::<i64>().ok()?;
        i += 1 + digits;
    }
    let offset_ms = match &text[i..] {
        "Z" | "z" => 0,
        tz if tz.len() == 6 && (tz.starts_with('+') || tz.starts_with('-')) && tz.as_bytes()[3] == b':' => {
            let (oh, om) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            sign * (oh * 3600 + om * 60) * 1000
        }
        _ => return None,
    };
    let ms = day_ms + ((h * 60 + mi) * 60 + s) * 1000 + millis - offset_ms;
    Some(Parsed { ms, date_only: false })
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// (year, month, day) → days since 1970-01-01, proleptic Gregorian (H. Hinnant).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        parse(text).unwrap_or_else(|| panic!("{text}")).ms
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_774_988_593_000), "2026-03-31T20:23:13Z");
        assert_eq!(utc_minute(1_774_988_593_000), "2026-03-31 20:23 UTC");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_millis(1_774_988_593_042), "2026-03-31T20:23:13.042Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn civil_round_trips() {
        for days in [-800_000, -1, 0, 1, 10_957, 11_016, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn month_boundaries_are_utc() {
        let last_ms_of_jan = at("2026-01-31T23:59:59.999Z");
        assert_eq!(month_start(last_ms_of_jan), at("2026-01-01"));
        assert_eq!(month_start(last_ms_of_jan + 1), at("2026-02-01"));
        assert_eq!(next_month_start(last_ms_of_jan), at("2026-02-01"));
        assert_eq!(next_month_start(at("2025-12-15T12:00:00Z")), at("2026-01-01"));
        assert_eq!(month_start(at("2024-02-29T23:00:00Z")), at("2024-02-01"));
        assert_eq!(next_month_start(at("2024-02-29T23:00:00Z")), at("2024-03-01"));
        // 00:30 on the 1st at +01:00 is still the previous month in UTC.
        assert_eq!(month_start(at("2026-03-01T00:30:00+01:00")), at("2026-02-01"));
    }

    #[test]
    fn parses_dates_and_date_times() {
        assert_eq!(parse("2026-01-27"), Some(Parsed { ms: 1_769_472_000_000, date_only: true }));
        assert_eq!(at("2026-01-27T10:00:00Z"), 1_769_508_000_000);
        assert_eq!(at("2026-01-27t10:00:00.5z"), 1_769_508_000_500);
        assert_eq!(at("2026-01-27T10:00:00.123456Z"), 1_769_508_000_123);
        assert_eq!(at("2026-01-27T12:30:00+02:30"), 1_769_508_000_000);
        assert_eq!(at("2026-01-27T07:00:00-03:00"), 1_769_508_000_000);
        assert!(!parse("2026-01-27T10:00:00Z").unwrap().date_only);
    }

    #[test]
    fn rejects_malformed_instants() {
        for bad in [
            "", "2026-1-27", "2026-13-01", "2026-02-29", "2025-04-31", "2026-01-27T24:00:00Z", "2026-01-27T10:00:00",
            "2026-01-27T10:00Z", "2026-01-27T10:00:00.Z", "2026-01-27T10:00:00+0200", "2026-01-27T10:00:00+é:00", "2026-01-27T10:00:00+0é:0", "27/01/2026", "+2026-01-27", "2026-01-27x",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
        assert!(parse("2024-02-29").is_some());
    }
}
