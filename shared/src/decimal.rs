//! Exact parsing of decimal text (`0.0000025`, `3.3789e-3`) for money: the
//! digits are kept as an integer mantissa and a power of ten, never a float.

use crate::money::{Picos, PICO_SCALE};

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

    /// The value in pico-USD, rounding any finer remainder up.
    pub(crate) fn to_picos(&self) -> Option<Picos> {
        if let Some(exact) = self.scaled(PICO_SCALE as i32) {
            return Some(Picos(exact));
        }
        let shift = (self.scale - PICO_SCALE as i32) as u32;
        let div = 10i128.checked_pow(shift).unwrap_or(i128::MAX);
        let q = self.mantissa.div_euclid(div);
        Some(Picos(if self.mantissa.rem_euclid(div) == 0 { q } else { q + 1 }))
    }
}
