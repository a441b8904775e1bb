//! Exact USD arithmetic. Billing code downstream compares costs to the last
//! digit, so the mock never lets a float touch a price: amounts are integer
//! femto-dollars (1e-15 USD) and are written to JSON from their exact decimal
//! text. Femto (not pico) so a 5% BYOK fee of any catalogue price stays exact.

use serde::{Serialize, Serializer};

const SCALE_DIGITS: usize = 15;
const SCALE: i128 = 1_000_000_000_000_000;

/// An exact USD amount, serialised as a plain JSON number (`0.0033789`, `0`,
/// never `3.3789e-3`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Usd(pub i128);

impl Usd {
    pub const ZERO: Usd = Usd(0);

    /// Parses a decimal string such as `"0.00000015"` (the catalogue's price
    /// format). `None` for anything that is not a plain decimal with at most
    /// 15 fractional digits.
    pub fn parse(s: &str) -> Option<Usd> {
        let (neg, body) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(int) || !all_digits(frac) || frac.len() > SCALE_DIGITS {
            return None;
        }
        let int_v: i128 = if int.is_empty() { 0 } else { int.parse().ok()? };
        let frac_v: i128 = if frac.is_empty() {
            0
        } else {
            frac.parse::<i128>().ok()? * 10i128.pow((SCALE_DIGITS - frac.len()) as u32)
        };
        let v = int_v.checked_mul(SCALE)?.checked_add(frac_v)?;
        Some(Usd(if neg { -v } else { v }))
    }

    /// For caller-supplied amounts (key limits) that arrive as JSON floats;
    /// rounding to the femto grid removes the binary-float tail.
    pub fn from_f64(v: f64) -> Usd {
        Usd((v * SCALE as f64).round() as i128)
    }

    pub fn times(self, n: u64) -> Usd {
        Usd(self.0 * n as i128)
    }

    /// `self * num / den`, truncating (exact for the ratios used here).
    pub fn ratio(self, num: i128, den: i128) -> Usd {
        Usd(self.0 * num / den)
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn to_decimal(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let int = abs / SCALE as u128;
        let frac = abs % SCALE as u128;
        if frac == 0 {
            return format!("{sign}{int}");
        }
        let frac = format!("{frac:0width$}", width = SCALE_DIGITS);
        format!("{sign}{int}.{}", frac.trim_end_matches('0'))
    }
}

impl std::ops::Add for Usd {
    type Output = Usd;
    fn add(self, o: Usd) -> Usd {
        Usd(self.0 + o.0)
    }
}

impl std::ops::Sub for Usd {
    type Output = Usd;
    fn sub(self, o: Usd) -> Usd {
        Usd(self.0 - o.0)
    }
}

impl std::ops::AddAssign for Usd {
    fn add_assign(&mut self, o: Usd) {
        self.0 += o.0;
    }
}

impl Serialize for Usd {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // RawValue is emitted verbatim by serde_json, so the number keeps the
        // exact digits instead of going through f64 formatting.
        let raw = serde_json::value::RawValue::from_string(self.to_decimal())
            .map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format_round_trip() {
        for s in [
            "0",
            "0.00000015",
            "0.0000025",
            "0.00001",
            "12.5",
            "0.0033789",
        ] {
            assert_eq!(Usd::parse(s).unwrap().to_decimal(), s);
        }
        assert_eq!(Usd::parse("-1.50").unwrap().to_decimal(), "-1.5");
        assert!(Usd::parse("1e-7").is_none());
        assert!(Usd::parse("").is_none());
    }

    #[test]
    fn exact_cost_of_reference_example() {
        // 10427 prompt + 264 completion tokens of openai/gpt-4o.
        let p = Usd::parse("0.0000003").unwrap().times(10427);
        let c = Usd::parse("0.00000095").unwrap().times(264);
        assert_eq!(p.to_decimal(), "0.0031281");
        assert_eq!(c.to_decimal(), "0.0002508");
        assert_eq!((p + c).to_decimal(), "0.0033789");
        assert_eq!(serde_json::to_string(&(p + c)).unwrap(), "0.0033789");
        assert_eq!(serde_json::to_string(&Usd::ZERO).unwrap(), "0");
        assert_eq!(
            serde_json::to_string(&Usd::parse("0.0000015").unwrap()).unwrap(),
            "0.0000015"
        );
    }
}
