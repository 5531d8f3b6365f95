//! Exact money: a `Decimal` amount with an ISO 4217 currency. Never `f64`.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Currencies the platform keeps accounts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Currency {
    #[serde(rename = "RUB")]
    Rub,
    #[serde(rename = "USD")]
    Usd,
    #[serde(rename = "EUR")]
    Eur,
}

impl Currency {
    pub const ALL: [Currency; 3] = [Currency::Rub, Currency::Usd, Currency::Eur];

    /// ISO 4217 alphabetic code.
    pub fn code(self) -> &'static str {
        match self {
            Currency::Rub => "RUB",
            Currency::Usd => "USD",
            Currency::Eur => "EUR",
        }
    }

    /// Number of digits after the decimal point of the currency's minor unit.
    pub fn minor_digits(self) -> u32 {
        2
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::ALL
            .into_iter()
            .find(|c| c.code() == s)
            .ok_or_else(|| MoneyError::UnknownCurrency(s.to_owned()))
    }
}

/// Why a textual amount is not money.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unknown currency `{0}` (expected one of RUB, USD, EUR)")]
    UnknownCurrency(String),
    #[error("`{0}` is not a decimal amount")]
    NotADecimal(String),
    #[error("amount must be positive, got {0}")]
    NotPositive(Decimal),
    #[error("amount {amount} has more than {digits} digits after the point for {currency}")]
    TooPrecise {
        amount: Decimal,
        currency: Currency,
        digits: u32,
    },
    #[error("amount {0} is too large")]
    TooLarge(Decimal),
    #[error("currency mismatch: expected {expected}, got {actual}")]
    CurrencyMismatch {
        expected: Currency,
        actual: Currency,
    },
}

/// The largest amount any single operation or balance may hold (10^15 minor units).
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);

/// An amount of money in a currency. The amount is exact and at most the currency's
/// minor-unit precision; it may be zero or negative only where the type is used for
/// balances and differences (see [`Money::parse_positive`] for input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount: Decimal, currency: Currency) -> Self {
        Money { amount, currency }
    }

    pub fn zero(currency: Currency) -> Self {
        Money::new(Decimal::ZERO, currency)
    }

    /// Parses client input: a positive decimal string with at most the currency's precision.
    pub fn parse_positive(amount: &str, currency: &str) -> Result<Money, MoneyError> {
        let currency = Currency::from_str(currency)?;
        let trimmed = amount.trim();
        // Only plain decimal notation: digits with an optional point and sign.
        if trimmed.is_empty()
            || !trimmed
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.' || c == '-' || c == '+')
        {
            return Err(MoneyError::NotADecimal(amount.to_owned()));
        }
        let value =
            Decimal::from_str(trimmed).map_err(|_| MoneyError::NotADecimal(amount.to_owned()))?;
        Money::positive(value, currency)
    }

    /// Checks a decimal is a positive amount with the currency's precision.
    pub fn positive(value: Decimal, currency: Currency) -> Result<Money, MoneyError> {
        if value <= Decimal::ZERO {
            return Err(MoneyError::NotPositive(value));
        }
        let digits = currency.minor_digits();
        if value.normalize().scale() > digits {
            return Err(MoneyError::TooPrecise {
                amount: value,
                currency,
                digits,
            });
        }
        if value > MAX_AMOUNT {
            return Err(MoneyError::TooLarge(value));
        }
        Ok(Money::new(round_minor(value, currency), currency))
    }

    pub fn ensure_currency(&self, expected: Currency) -> Result<(), MoneyError> {
        if self.currency == expected {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                expected,
                actual: self.currency,
            })
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

/// Rounds to the currency's minor unit with banker's rounding (half to even) and fixes the
/// scale, so `10` and `10.00` are stored alike.
pub fn round_minor(value: Decimal, currency: Currency) -> Decimal {
    let mut v = value.round_dp_with_strategy(
        currency.minor_digits(),
        RoundingStrategy::MidpointNearestEven,
    );
    v.rescale(currency.minor_digits());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_valid_amounts_with_fixed_scale() {
        let m = Money::parse_positive("10", "RUB").unwrap();
        assert_eq!(m.amount.to_string(), "10.00");
        assert_eq!(
            Money::parse_positive("0.01", "USD")
                .unwrap()
                .amount
                .to_string(),
            "0.01"
        );
        assert_eq!(
            Money::parse_positive("1.50", "EUR")
                .unwrap()
                .amount
                .to_string(),
            "1.50"
        );
    }

    #[test]
    fn refuses_bad_amounts() {
        assert!(matches!(
            Money::parse_positive("-1", "RUB"),
            Err(MoneyError::NotPositive(_))
        ));
        assert!(matches!(
            Money::parse_positive("0", "RUB"),
            Err(MoneyError::NotPositive(_))
        ));
        assert!(matches!(
            Money::parse_positive("1.001", "RUB"),
            Err(MoneyError::TooPrecise { .. })
        ));
        assert!(matches!(
            Money::parse_positive("1e5", "RUB"),
            Err(MoneyError::NotADecimal(_))
        ));
        assert!(matches!(
            Money::parse_positive("abc", "RUB"),
            Err(MoneyError::NotADecimal(_))
        ));
        assert!(matches!(
            Money::parse_positive("1", "XYZ"),
            Err(MoneyError::UnknownCurrency(_))
        ));
        assert!(matches!(
            Money::parse_positive("99999999999999", "RUB"),
            Err(MoneyError::TooLarge(_))
        ));
    }

    #[test]
    fn banker_rounding_is_explicit() {
        let v = Decimal::from_str("2.345").unwrap();
        assert_eq!(round_minor(v, Currency::Rub).to_string(), "2.34");
        let v = Decimal::from_str("2.355").unwrap();
        assert_eq!(round_minor(v, Currency::Rub).to_string(), "2.36");
    }
}
