//! Exact money. Balances and ledger amounts are integer micro-USD (`Micros`);
//! prices and upstream costs are parsed exactly into pico-USD (`Picos`) and rounded
//! once, upwards, to micro-USD when a charge is made. Floats never hold money:
//! JSON numbers are read from their decimal text and written from integers.

use crate::decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;

pub const MICROS_PER_USD: i64 = 1_000_000;
const PICOS_PER_MICRO: i128 = 1_000_000;
pub(crate) const PICO_SCALE: u32 = 12;

/// An amount of US dollars in millionths. Signed: debits are negative.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Micros(pub i64);

/// An exact amount in 10⁻¹² USD: per-token prices and upstream-reported costs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Picos(pub i128);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoneyError {
    NotANumber,
    TooPrecise,
    OutOfRange,
}

impl fmt::Display for MoneyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MoneyError::NotANumber => "not a decimal number",
            MoneyError::TooPrecise => "more than 6 decimal places",
            MoneyError::OutOfRange => "amount out of range",
        })
    }
}

impl Micros {
    pub const ZERO: Micros = Micros(0);

    /// Parses a USD amount that must be exact to the micro-dollar (e.g. an admin
    /// credit of `5.25`); finer amounts are refused rather than rounded.
    pub fn parse_usd_exact(text: &str) -> Result<Micros, MoneyError> {
        let picos = Picos::parse_usd(text)?;
        if picos.0 % PICOS_PER_MICRO != 0 {
            return Err(MoneyError::TooPrecise);
        }
        let micros = picos.0 / PICOS_PER_MICRO;
        // Keep every amount inside JavaScript's safe-integer range (DO SQL, JSON).
        if micros.abs() > (1i128 << 53) - 1 {
            return Err(MoneyError::OutOfRange);
        }
        Ok(Micros(micros as i64))
    }

    /// Parses a JSON number (as serde_json renders it) as an exact USD amount.
    pub fn from_json_usd(value: &serde_json::Value) -> Result<Micros, MoneyError> {
        match value {
            serde_json::Value::Number(n) => Micros::parse_usd_exact(&n.to_string()),
            serde_json::Value::String(s) => Micros::parse_usd_exact(s),
            _ => Err(MoneyError::NotANumber),
        }
    }

    /// Exact decimal USD with all six places: `-0.003379`, `10.000000`.
    pub fn usd_fixed(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        format!("{sign}{}.{:06}", abs / 1_000_000, abs % 1_000_000)
    }

    /// Exact decimal USD without trailing zeros but at least two places: `0.42`, `4.870001`.
    pub fn usd_trimmed(self) -> String {
        let fixed = self.usd_fixed();
        let (int, frac) = fixed.split_once('.').expect("usd_fixed has a point");
        let mut frac = frac.trim_end_matches('0').to_string();
        while frac.len() < 2 {
            frac.push('0');
        }
        format!("{int}.{frac}")
    }

    /// Exact decimal cents (four places): `0.3379`.
    pub fn cents_exact(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        format!("{sign}{}.{:04}", abs / 10_000, abs % 10_000)
    }

    /// Exact cents as a JSON number (`0.3379`), for shapes that count in cents;
    /// exact for the same reason as `as_json_usd`.
    /// Whole cents are written as integers (`321`, not `321.0`).
    pub fn as_json_cents(self) -> serde_json::Value {
        if self.0 % 10_000 == 0 {
            return serde_json::json!(self.0 / 10_000);
        }
        let parsed: f64 = self.cents_exact().parse().expect("valid decimal");
        serde_json::json!(parsed)
    }

    /// Whole cents rounded down (towards −∞): a balance shown in cents is never overstated.
    pub fn whole_cents_floor(self) -> i64 {
        self.0.div_euclid(10_000)
    }

    /// The amount as a JSON number. Exact: every micro amount within ±2^53 has a
    /// decimal expansion of ≤ 16 significant digits that round-trips through f64,
    /// and serde_json prints the shortest round-trip form.
    pub fn as_json_usd(self) -> serde_json::Value {
        let parsed: f64 = self.usd_fixed().parse().expect("valid decimal");
        serde_json::json!(parsed)
    }

    pub fn saturating_add(self, other: Micros) -> Micros {
        Micros(self.0.saturating_add(other.0))
    }

    pub fn saturating_sub(self, other: Micros) -> Micros {
        Micros(self.0.saturating_sub(other.0))
    }
}

impl Picos {
    pub const ZERO: Picos = Picos(0);

    /// Parses decimal USD text exactly (`0.0000025`, `1e-7`, `-3`). Digits beyond
    /// 10⁻¹² USD round up: a price or cost is never understated.
    pub fn parse_usd(text: &str) -> Result<Picos, MoneyError> {
        let decimal = Decimal::parse(text.trim()).ok_or(MoneyError::NotANumber)?;
        decimal.ceil_at_scale(PICO_SCALE).map(Picos).ok_or(MoneyError::OutOfRange)
    }

    /// Exact decimal USD, no exponent, trailing zeros trimmed: `0.0000025`, `0`, `-1.5`.
    pub fn usd_decimal(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let scale = 10u128.pow(PICO_SCALE);
        let frac = format!("{:012}", abs % scale);
        let frac = frac.trim_end_matches('0');
        let int = abs / scale;
        if frac.is_empty() {
            format!("{sign}{int}")
        } else {
            format!("{sign}{int}.{frac}")
        }
    }

    /// Rounds up to whole micro-USD (towards +∞): charging never undercuts cost.
    pub fn ceil_micros(self) -> Micros {
        let q = self.0.div_euclid(PICOS_PER_MICRO);
        let r = self.0.rem_euclid(PICOS_PER_MICRO);
        let micros = if r == 0 { q } else { q + 1 };
        Micros(micros.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
    }

    pub fn times(self, count: u64) -> Picos {
        Picos(self.0.saturating_mul(count as i128))
    }

    pub fn plus(self, other: Picos) -> Picos {
        Picos(self.0.saturating_add(other.0))
    }

    pub fn min(self, other: Picos) -> Picos {
        if self.0 <= other.0 {
            self
        } else {
            other
        }
    }
}

impl From<Micros> for Picos {
    fn from(m: Micros) -> Picos {
        Picos(m.0 as i128 * PICOS_PER_MICRO)
    }
}

/// A markup factor in basis points (10 000 = 1.0×). Never below 1.0×: the user
/// price can never be less than what the provider charged us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Markup {
    bps: u32,
}

impl Markup {
    pub const NONE: Markup = Markup { bps: 10_000 };

    /// Parses `"1.0"`, `"1.25"`; at most four decimals; below 1.0 or above 100× is refused.
    pub fn parse(text: &str) -> Result<Markup, MoneyError> {
        let d = Decimal::parse(text.trim()).ok_or(MoneyError::NotANumber)?;
        let bps = d.scaled(4).ok_or(MoneyError::TooPrecise)?;
        if !(10_000..=1_000_000).contains(&bps) {
            return Err(MoneyError::OutOfRange);
        }
        Ok(Markup { bps: bps as u32 })
    }

    pub fn from_bps(bps: u32) -> Markup {
        Markup { bps: bps.max(10_000) }
    }

    pub fn bps(self) -> u32 {
        self.bps
    }

    /// The factor as a decimal: `1.0`, `1.25`.
    pub fn decimal(self) -> String {
        let frac = format!("{:04}", self.bps % 10_000);
        let frac = frac.trim_end_matches('0');
        format!("{}.{}", self.bps / 10_000, if frac.is_empty() { "0" } else { frac })
    }

    /// `amount × markup`, rounded up to the pico.
    pub fn apply(self, amount: Picos) -> Picos {
        let scaled = amount.0.saturating_mul(self.bps as i128);
        let q = scaled.div_euclid(10_000);
        Picos(if scaled.rem_euclid(10_000) == 0 { q } else { q + 1 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prices_exactly() {
        assert_eq!(Picos::parse_usd("0.0000025").unwrap(), Picos(2_500_000));
        assert_eq!(Picos::parse_usd("0.00000015").unwrap(), Picos(150_000));
        assert_eq!(Picos::parse_usd("0").unwrap(), Picos(0));
        assert_eq!(Picos::parse_usd("1e-7").unwrap(), Picos(100_000));
        assert_eq!(Picos::parse_usd("3.3789e-3").unwrap(), Picos(3_378_900_000));
        assert_eq!(Picos::parse_usd("0.0033789").unwrap(), Picos(3_378_900_000));
        assert_eq!(Picos::parse_usd("-2").unwrap(), Picos(-2_000_000_000_000));
    }

    #[test]
    fn sub_pico_digits_round_up() {
        assert_eq!(Picos::parse_usd("0.0000000000001").unwrap(), Picos(1));
        assert_eq!(Picos::parse_usd("0.0000000000010").unwrap(), Picos(1));
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "abc", "1.2.3", "--1", "1e", ".", "0x10", "1,5"] {
            assert!(Picos::parse_usd(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ceil_to_micros_never_undercharges() {
        assert_eq!(Picos(3_378_900_000).ceil_micros(), Micros(3379));
        assert_eq!(Picos(3_379_000_000).ceil_micros(), Micros(3379));
        assert_eq!(Picos(1).ceil_micros(), Micros(1));
        assert_eq!(Picos(0).ceil_micros(), Micros(0));
        assert_eq!(Picos(-1_500_000).ceil_micros(), Micros(-1));
    }

    #[test]
    fn exact_usd_amounts() {
        assert_eq!(Micros::parse_usd_exact("5.0").unwrap(), Micros(5_000_000));
        assert_eq!(Micros::parse_usd_exact("0.000001").unwrap(), Micros(1));
        assert_eq!(Micros::parse_usd_exact("0.0000001"), Err(MoneyError::TooPrecise));
        assert_eq!(Micros::parse_usd_exact("1e20"), Err(MoneyError::OutOfRange));
        let json: serde_json::Value = serde_json::from_str("0.1").unwrap();
        assert_eq!(Micros::from_json_usd(&json).unwrap(), Micros(100_000));
    }

    #[test]
    fn formatting_is_exact() {
        assert_eq!(Micros(3379).usd_fixed(), "0.003379");
        assert_eq!(Micros(-3379).usd_fixed(), "-0.003379");
        assert_eq!(Micros(420_000).usd_trimmed(), "0.42");
        assert_eq!(Micros(10_000_000).usd_trimmed(), "10.00");
        assert_eq!(Micros(4_870_001).usd_trimmed(), "4.870001");
        assert_eq!(Micros(3379).cents_exact(), "0.3379");
        assert_eq!(Micros(12_345_678).whole_cents_floor(), 1234);
        assert_eq!(Micros(-1).whole_cents_floor(), -1);
    }

    #[test]
    fn json_numbers_round_trip_exactly() {
        for m in [0i64, 1, 3379, 4_870_001, 9_999_999_999_999, -1_234_567] {
            let text = Micros(m).as_json_usd().to_string();
            assert_eq!(Micros::parse_usd_exact(&text).unwrap(), Micros(m), "{text}");
        }
    }

    #[test]
    fn markup_never_below_cost() {
        assert_eq!(Markup::parse("1.0").unwrap(), Markup::NONE);
        assert_eq!(Markup::parse("1.25").unwrap().bps(), 12_500);
        assert!(Markup::parse("0.9").is_err());
        assert!(Markup::parse("1.00001").is_err());
        assert_eq!(Markup::NONE.apply(Picos(7)), Picos(7));
        assert_eq!(Markup::parse("1.5").unwrap().apply(Picos(3)), Picos(5)); // 4.5 rounds up
        assert_eq!(Markup::from_bps(5_000), Markup::NONE);
        assert_eq!((Markup::NONE.decimal(), Markup::from_bps(12_500).decimal()), ("1.0".into(), "1.25".into()));
    }

    #[test]
    fn decimal_forms_are_exact() {
        assert_eq!(Picos(2_500_000).usd_decimal(), "0.0000025");
        assert_eq!(Picos(0).usd_decimal(), "0");
        assert_eq!(Picos(-1_500_000_000_000).usd_decimal(), "-1.5");
        assert_eq!(Picos(1).usd_decimal(), "0.000000000001");
        assert_eq!(Micros(3379).as_json_cents().to_string(), "0.3379");
        assert_eq!(Micros(1_234_500).as_json_cents().to_string(), "123.45");
        assert_eq!(Micros(3_210_000).as_json_cents().to_string(), "321");
    }
}
