//! Exact parsing of decimal text (`0.0000025`, `3.3789e-3`) for money: the
//! digits are kept as an integer mantissa and a power of ten, never a float.

/// Largest decimal exponent accepted (a 30-digit mantissa × 10^±100 covers
/// every amount and price with room to spare).
const MAX_EXPONENT: i32 = 100;

/// A parsed decimal: `mantissa × 10^-scale` (negative scale = trailing zeros).
pub(crate) struct Decimal {
    mantissa: i128,
    scale: i32,
}

impl Decimal {
    pub(crate) fn parse(text: &str) -> Option<Decimal> {
        let (num, exp) = match text.find(['e', 'E']) {
            Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
            None => (text, 0),
        };
        let (negative, digits) = match num.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, num.strip_prefix('+').unwrap_or(num)),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let all = format!("{int}{frac}");
        let trimmed = all.trim_start_matches('0');
        if trimmed.len() > 30 {
            return None;
        }
        let mut mantissa: i128 = if trimmed.is_empty() { 0 } else { trimmed.parse().ok()? };
        if negative {
            mantissa = -mantissa;
        }
        // Money never needs more than a few dozen places either way: refuse
        // exponents that would otherwise wrap the scale (`1e99999`, `1e-2147483648`).
        if !(-MAX_EXPONENT..=MAX_EXPONENT).contains(&exp) {
            return None;
        }
        Some(Decimal { mantissa, scale: frac.len() as i32 - exp })
    }

    /// The value × 10^places when that is an integer, else None.
    pub(crate) fn scaled(&self, places: i32) -> Option<i128> {
        let shift = places - self.scale;
        if shift >= 0 {
            self.mantissa.checked_mul(10i128.checked_pow(shift as u32)?)
        } else {
            let div = 10i128.checked_pow((-shift) as u32)?;
            (self.mantissa % div == 0).then(|| self.mantissa / div)
        }
    }

    /// The value in units of 10^-`scale` (money passes its pico scale),
    /// rounding any finer remainder up; None when it does not fit. Kept
    /// unit-free so that this parser depends on nothing in money.
    pub(crate) fn ceil_at_scale(&self, scale: u32) -> Option<i128> {
        let scale = scale as i32;
        if let Some(exact) = self.scaled(scale) {
            return Some(exact);
        }
        if self.scale <= scale {
            return None; // an integer number of units that overflowed: out of range
        }
        let shift = (self.scale - scale) as u32;
        let div = 10i128.checked_pow(shift).unwrap_or(i128::MAX);
        let q = self.mantissa.div_euclid(div);
        Some(if self.mantissa.rem_euclid(div) == 0 { q } else { q + 1 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_exponents_are_refused_not_wrapped() {
        for text in ["1e99999", "1e-99999", "1e-2147483648", "1e2147483647", "5e101"] {
            assert!(Decimal::parse(text).is_none(), "{text}");
        }
        assert!(Decimal::parse("1e100").is_some_and(|d| d.ceil_at_scale(12).is_none()), "parsed but out of range");
        assert_eq!(Decimal::parse("1e-100").and_then(|d| d.ceil_at_scale(12)), Some(1), "a dust amount rounds up to one pico");
        assert_eq!(Decimal::parse("3.3789e-3").and_then(|d| d.ceil_at_scale(12)), Some(3_378_900_000));
    }
}
