//! Exact money: a `Decimal` amount with an ISO 4217 currency. Never `f64`.
//!
//! Amounts arrive as text ([`Money::parse_positive`], the REST contract
//! `^[0-9]+(\.[0-9]{1,2})?$`), are kept at the currency's minor unit (banker's rounding,
//! fixed scale: [`round_minor`]) and leave as text ([`format_amount`], [`format_fixed`], the
//! serde form of [`Money`] and [`amount_str`]). A zero never leaves with a sign: `rust_decimal`
//! keeps a sign bit on zero (negating a zero, `0 + -0`, `ceil`/`trunc` of a small negative,
//! `rescale` of `-0`, `{:.2}` of `-0.001`) and would print `-0.00`; every constructor,
//! formatter and serde form here goes through [`normalized`].

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

/// Why a textual amount is not money. [`MoneyError::code`] gives each a stable
/// machine-readable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// `unknown_currency`
    #[error("unknown currency `{0}` (expected one of RUB, USD, EUR)")]
    UnknownCurrency(String),
    /// `invalid_amount`: anything not covered by a more precise variant (letters, commas,
    /// two points, non-ASCII digits…).
    #[error("`{0}` is not a decimal amount (expected digits with an optional point and 1 or 2 digits after it, e.g. \"100.50\")")]
    NotADecimal(String),
    /// `amount_empty`
    #[error("the amount is empty (expected e.g. \"100.50\")")]
    Empty,
    /// `amount_whitespace`: leading, trailing or inner whitespace.
    #[error("amount {0:?} contains whitespace")]
    Whitespace(String),
    /// `amount_not_positive`: a leading minus sign.
    #[error("amount must be positive, got `{0}`")]
    Negative(String),
    /// `amount_signed`: a leading plus sign (amounts are written without a sign).
    #[error("amount `{0}` has a sign; write it without one")]
    Signed(String),
    /// `amount_exponent`: scientific notation such as `1e5`.
    #[error("amount `{0}` is in exponent notation; write it as plain digits")]
    Exponent(String),
    /// `amount_underscore`: digit group separators such as `1_000.00`.
    #[error("amount `{0}` contains an underscore; write it without digit separators")]
    Underscore(String),
    /// `amount_bare_point`: a point without digits on both sides (`5.`, `.5`, `.`).
    #[error("amount `{0}` needs digits on both sides of the point")]
    BarePoint(String),
    /// `amount_leading_zero`: a zero before other digits of the whole part (`007.10`,
    /// `00.01`): amounts are written as the API's pattern says, `0.01` or `7.10`.
    #[error("amount `{0}` has a leading zero; write it without one (e.g. 7.10, 0.01)")]
    LeadingZero(String),
    /// `amount_too_long`: more digits than a `Decimal` holds exactly (they would be rounded).
    #[error("amount `{amount}` has more than {max_digits} digits")]
    TooLong { amount: String, max_digits: usize },
    /// `amount_not_positive`: zero.
    #[error("amount must be positive, got {0}")]
    NotPositive(Decimal),
    /// `amount_too_precise`: more digits after the point than the currency's minor unit.
    #[error("amount {amount} has more than {digits} digits after the point for {currency}")]
    TooPrecise {
        amount: Decimal,
        currency: Currency,
        digits: u32,
    },
    /// `amount_too_large`: above [`MAX_AMOUNT`].
    #[error("amount {0} is too large (the maximum is {MAX_AMOUNT})")]
    TooLarge(Decimal),
    /// `currency_mismatch`
    #[error("currency mismatch: expected {expected}, got {actual}")]
    CurrencyMismatch {
        expected: Currency,
        actual: Currency,
    },
}

impl MoneyError {
    /// Stable machine-readable code for API responses (the REST API answers 400 with it).
    pub fn code(&self) -> &'static str {
        match self {
            MoneyError::UnknownCurrency(_) => "unknown_currency",
            MoneyError::NotADecimal(_) => "invalid_amount",
            MoneyError::Empty => "amount_empty",
            MoneyError::Whitespace(_) => "amount_whitespace",
            MoneyError::Negative(_) | MoneyError::NotPositive(_) => "amount_not_positive",
            MoneyError::Signed(_) => "amount_signed",
            MoneyError::Exponent(_) => "amount_exponent",
            MoneyError::Underscore(_) => "amount_underscore",
            MoneyError::BarePoint(_) => "amount_bare_point",
            MoneyError::LeadingZero(_) => "amount_leading_zero",
            MoneyError::TooLong { .. } => "amount_too_long",
            MoneyError::TooPrecise { .. } => "amount_too_precise",
            MoneyError::TooLarge(_) => "amount_too_large",
            MoneyError::CurrencyMismatch { .. } => "currency_mismatch",
        }
    }
}

/// The largest amount any single operation or balance may hold: 1,000,000,000 in major units
/// (10^11 minor units).
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);

/// The most digits a textual amount may have, before and after the point together, leading
/// zeros included: what a `Decimal` holds exactly. Longer input is refused
/// ([`MoneyError::TooLong`]) rather than rounded.
pub const MAX_AMOUNT_DIGITS: usize = 28;

/// `value` with the sign of a zero dropped, scale kept (`-0.00` → `0.00`); any other value
/// unchanged. Everything that stores or formats an amount goes through it, so no amount is
/// ever printed as `-0` or `-0.00`.
pub fn normalized(value: Decimal) -> Decimal {
    if value.is_zero() && value.is_sign_negative() {
        let mut v = value;
        v.set_sign_positive(true);
        v
    } else {
        value
    }
}

/// `value` as exact decimal text (scale as stored, e.g. `"100.50"`), a zero without a sign.
pub fn format_amount(value: Decimal) -> String {
    normalized(value).to_string()
}

/// `value` rounded to `digits` after the point with banker's rounding (half to even) and
/// written with exactly that many (e.g. `format_fixed(dec!(-0.001), 2) == "0.00"`), a zero
/// without a sign. Unlike `format!("{:.2}", value)`, which writes `-0.00` for `-0.001`.
pub fn format_fixed(value: Decimal, digits: u32) -> String {
    fixed(value, digits).to_string()
}

fn fixed(value: Decimal, digits: u32) -> Decimal {
    let mut v = value.round_dp_with_strategy(digits, RoundingStrategy::MidpointNearestEven);
    v.rescale(digits);
    normalized(v)
}

/// Serde for a `Decimal` amount as a JSON string, the form events, snapshots and read-model
/// JSON use: `#[serde(with = "etr_domain::money::amount_str")]`. Serialising writes the exact decimal
/// text with a zero never signed; deserialising accepts what `rust_decimal` reads from a
/// string (so every event already on the log still reads) and drops the sign of a zero.
pub mod amount_str {
    use rust_decimal::Decimal;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format_amount(*value))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
        rust_decimal::serde::str::deserialize(deserializer).map(super::normalized)
    }
}

/// An amount of money in a currency. The amount is exact and at most the currency's
/// minor-unit precision; it may be zero or negative only where the type is used for
/// balances and differences (see [`Money::parse_positive`] for input). A zero amount is never
/// negative: [`Money::new`], `Display` and the serde form (a decimal string,
/// `{"amount": "100.50", "currency": "RUB"}`) all normalise it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    #[serde(with = "amount_str")]
    pub amount: Decimal,
    pub currency: Currency,
}

impl Money {
    /// `amount` in `currency`, as given (no rounding), a zero without a sign.
    pub fn new(amount: Decimal, currency: Currency) -> Self {
        Money {
            amount: normalized(amount),
            currency,
        }
    }

    pub fn zero(currency: Currency) -> Self {
        Money::new(Decimal::ZERO, currency)
    }

    /// Parses client input: the amount must match `^(0|[1-9][0-9]*)(\.[0-9]{1,2})?$` exactly
    /// (for a currency with 2 minor digits), be positive and at most [`MAX_AMOUNT`]; the
    /// result has the currency's scale (`"100.5"` → `100.50`). The REST API's document gives
    /// the same rules as one pattern (`command-api`'s `contract::AMOUNT_PATTERN`).
    /// Nothing is trimmed or rounded. A leading minus keeps the code the API has always given
    /// it, `amount_not_positive`; a leading plus has its own.
    ///
    /// Errors, checked in this order: [`MoneyError::UnknownCurrency`] (`unknown_currency`);
    /// `""` → [`MoneyError::Empty`] (`amount_empty`); any whitespace →
    /// [`MoneyError::Whitespace`] (`amount_whitespace`); `-5` → [`MoneyError::Negative`]
    /// (`amount_not_positive`); `+5` → [`MoneyError::Signed`] (`amount_signed`); `1_000` →
    /// [`MoneyError::Underscore`] (`amount_underscore`); `1e5` → [`MoneyError::Exponent`]
    /// (`amount_exponent`); any other character or a second point →
    /// [`MoneyError::NotADecimal`] (`invalid_amount`); `5.`, `.5` →
    /// [`MoneyError::BarePoint`] (`amount_bare_point`); `007.10`, `00.01` →
    /// [`MoneyError::LeadingZero`] (`amount_leading_zero`); more than [`MAX_AMOUNT_DIGITS`] digits
    /// → [`MoneyError::TooLong`] (`amount_too_long`); more digits after the point than the
    /// currency's minor unit, trailing zeros included (`1.000`) →
    /// [`MoneyError::TooPrecise`] (`amount_too_precise`); zero →
    /// [`MoneyError::NotPositive`] (`amount_not_positive`); above [`MAX_AMOUNT`] →
    /// [`MoneyError::TooLarge`] (`amount_too_large`).
    pub fn parse_positive(amount: &str, currency: &str) -> Result<Money, MoneyError> {
        let currency = Currency::from_str(currency)?;
        let (digits, fraction_digits) = plain_decimal_digits(amount)?;
        if digits > MAX_AMOUNT_DIGITS {
            return Err(MoneyError::TooLong {
                amount: amount.to_owned(),
                max_digits: MAX_AMOUNT_DIGITS,
            });
        }
        // At most 28 digits: exact in a Decimal.
        let value = Decimal::from_str_exact(amount)
            .map_err(|_| MoneyError::NotADecimal(amount.to_owned()))?;
        // Counted on the text: "1.000" is refused like "1.001" (the contract allows 1 or 2).
        if fraction_digits > currency.minor_digits() as usize {
            return Err(MoneyError::TooPrecise {
                amount: value,
                currency,
                digits: currency.minor_digits(),
            });
        }
        Money::positive(value, currency)
    }

    /// Checks a decimal is a positive amount with the currency's precision, at most
    /// [`MAX_AMOUNT`], and fixes its scale. Errors: `amount_not_positive`,
    /// `amount_too_precise`, `amount_too_large`.
    pub fn positive(value: Decimal, currency: Currency) -> Result<Money, MoneyError> {
        if value <= Decimal::ZERO {
            return Err(MoneyError::NotPositive(normalized(value)));
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
    /// `"100.50 RUB"`, a zero never signed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", normalized(self.amount), self.currency)
    }
}

/// Checks `amount` is plain decimal text, `digits[.digits]`, and returns how many digits it
/// has (both sides of the point) and how many of them follow the point. The errors are the
/// syntactic ones of [`Money::parse_positive`], in its order.
fn plain_decimal_digits(amount: &str) -> Result<(usize, usize), MoneyError> {
    let refuse = |e: fn(String) -> MoneyError| Err(e(amount.to_owned()));
    if amount.is_empty() {
        return Err(MoneyError::Empty);
    }
    if amount.chars().any(char::is_whitespace) {
        return refuse(MoneyError::Whitespace);
    }
    if amount.starts_with('-') {
        return refuse(MoneyError::Negative);
    }
    if amount.starts_with('+') {
        return refuse(MoneyError::Signed);
    }
    let plain = |c: char| c.is_ascii_digit() || c == '.';
    if amount.contains('_') && amount.chars().all(|c| plain(c) || c == '_') {
        return refuse(MoneyError::Underscore);
    }
    if amount.contains(['e', 'E'])
        && amount.chars().any(|c| c.is_ascii_digit())
        && amount
            .chars()
            .all(|c| plain(c) || matches!(c, 'e' | 'E' | '+' | '-'))
    {
        return refuse(MoneyError::Exponent);
    }
    if !amount.chars().all(plain) {
        return refuse(MoneyError::NotADecimal);
    }
    let (int, frac) = match amount.split_once('.') {
        None => (amount, None),
        Some((int, frac)) => (int, Some(frac)),
    };
    if frac.is_some_and(|f| f.contains('.')) {
        return refuse(MoneyError::NotADecimal);
    }
    if int.is_empty() || frac == Some("") {
        return refuse(MoneyError::BarePoint);
    }
    if int.len() > 1 && int.starts_with('0') {
        return refuse(MoneyError::LeadingZero);
    }
    let fraction = frac.map_or(0, str::len);
    Ok((int.len() + fraction, fraction))
}

/// Rounds to the currency's minor unit with banker's rounding (half to even) and fixes the
/// scale, so `10` and `10.00` are stored alike; a zero result is never negative
/// (`-0.001` → `0.00`).
pub fn round_minor(value: Decimal, currency: Currency) -> Decimal {
    fixed(value, currency.minor_digits())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    /// Given an amount typed by a client, when it is parsed as roubles, then this.
    fn when_parsed(amount: &str) -> Result<Money, MoneyError> {
        Money::parse_positive(amount, "RUB")
    }

    fn then_code(amount: &str, code: &str) {
        match when_parsed(amount) {
            Err(e) => assert_eq!(e.code(), code, "{amount:?}: {e}"),
            Ok(m) => panic!("{amount:?} was accepted as {m}, expected {code}"),
        }
    }

    #[test]
    fn accepts_the_contract_forms_with_the_currency_scale() {
        for (given, then) in [
            ("0.01", "0.01"),
            ("100", "100.00"),
            ("100.5", "100.50"),
            ("100.50", "100.50"),
            ("10", "10.00"),
            ("1000000000", "1000000000.00"),
            ("1000000000.00", "1000000000.00"),
        ] {
            let m = when_parsed(given).unwrap_or_else(|e| panic!("{given:?}: {e}"));
            assert_eq!(m.amount.to_string(), then, "{given:?}");
            assert_eq!(m.currency, Currency::Rub);
        }
        let usd = Money::parse_positive("1.50", "EUR").map(|m| m.to_string());
        assert_eq!(usd, Ok("1.50 EUR".to_owned()));
    }

    #[test]
    fn refuses_leading_zeros_as_the_pattern_does() {
        then_code("007.10", "amount_leading_zero");
        then_code("00.01", "amount_leading_zero");
        then_code("00", "amount_leading_zero");
        assert_eq!(when_parsed("0.01").map(|m| m.amount), Ok(dec!(0.01)));
    }

    #[test]
    fn refuses_an_empty_amount() {
        then_code("", "amount_empty");
        assert_eq!(when_parsed(""), Err(MoneyError::Empty));
    }

    #[test]
    fn refuses_whitespace_anywhere_instead_of_trimming() {
        for given in [
            " 5",
            "5 ",
            "\t5",
            "5\n",
            "1 000.00",
            "5 .00",
            " ",
            "5\u{a0}",
            "\u{2003}5",
        ] {
            then_code(given, "amount_whitespace");
        }
    }

    #[test]
    fn refuses_signs() {
        for given in ["-5", "-0", "-0.00", "-1e5", "--5"] {
            then_code(given, "amount_not_positive");
        }
        for given in ["+5", "+0.01", "+-5"] {
            then_code(given, "amount_signed");
        }
    }

    #[test]
    fn refuses_exponents() {
        for given in ["1e5", "1E5", "1.5e2", "1e-2", "1e+2", "5e0"] {
            then_code(given, "amount_exponent");
        }
    }

    #[test]
    fn refuses_underscores() {
        for given in ["1_000.00", "1_000", "_1", "1_", "1.0_0"] {
            then_code(given, "amount_underscore");
        }
    }

    #[test]
    fn refuses_a_point_without_digits_on_both_sides() {
        for given in ["5.", ".5", ".", ".50", "100."] {
            then_code(given, "amount_bare_point");
        }
    }

    #[test]
    fn refuses_anything_else_as_not_a_decimal() {
        for given in [
            "abc", "1,000.00", "1,5", "1.2.3", "1..2", "0x10", "NaN", "inf", "Infinity", "\u{661}",
            "１", "5RUB", "5-", "1-2", "e", "\"5\"",
        ] {
            then_code(given, "invalid_amount");
        }
    }

    #[test]
    fn refuses_more_digits_than_a_decimal_holds_instead_of_rounding() {
        let twenty_eight = "1".repeat(28);
        let twenty_nine = "1".repeat(29);
        // 28 digits parse exactly (and are then too large); 29 would be rounded: refused.
        then_code(&twenty_eight, "amount_too_large");
        then_code(&twenty_nine, "amount_too_long");
        then_code("12345678901234567890123456789.5", "amount_too_long");
        then_code("99999999999999999999999999999999", "amount_too_long");
        then_code(&format!("{}.01", "0".repeat(27)), "amount_leading_zero");
        then_code(&format!("0.{}", "0".repeat(30)), "amount_too_long");
        assert_eq!(
            when_parsed(&twenty_nine),
            Err(MoneyError::TooLong {
                amount: twenty_nine.clone(),
                max_digits: MAX_AMOUNT_DIGITS
            })
        );
        // 28 digits after the point are too precise long before they could be rounded.
        then_code(&format!("0.{}1", "0".repeat(26)), "amount_too_precise");
    }

    #[test]
    fn refuses_zero() {
        for given in ["0", "0.0", "0.00"] {
            then_code(given, "amount_not_positive");
        }
        for given in ["000", "00.00"] {
            then_code(given, "amount_leading_zero");
        }
        assert_eq!(
            when_parsed("0.00"),
            Err(MoneyError::NotPositive(dec!(0.00)))
        );
    }

    #[test]
    fn refuses_more_than_two_digits_after_the_point() {
        for given in ["1.001", "1.000", "0.001", "0.000", "100.505", "100.5000"] {
            then_code(given, "amount_too_precise");
        }
    }

    #[test]
    fn refuses_more_than_the_platform_maximum() {
        then_code("1000000000.01", "amount_too_large");
        then_code("99999999999999", "amount_too_large");
    }

    #[test]
    fn refuses_an_unknown_currency_first() {
        then_code_currency(" 5", "XYZ", "unknown_currency");
        then_code_currency("5", "rub", "unknown_currency");
    }

    fn then_code_currency(amount: &str, currency: &str, code: &str) {
        let got = Money::parse_positive(amount, currency).map_err(|e| e.code());
        assert_eq!(got, Err(code));
    }

    #[test]
    fn every_refusal_has_its_own_code_and_a_message() {
        let errors = [
            MoneyError::UnknownCurrency("XYZ".into()),
            MoneyError::NotADecimal("x".into()),
            MoneyError::Empty,
            MoneyError::Whitespace(" 5".into()),
            MoneyError::Negative("-5".into()),
            MoneyError::Signed("+5".into()),
            MoneyError::Exponent("1e5".into()),
            MoneyError::Underscore("1_0".into()),
            MoneyError::BarePoint("5.".into()),
            MoneyError::TooLong {
                amount: "1".repeat(29),
                max_digits: MAX_AMOUNT_DIGITS,
            },
            MoneyError::TooPrecise {
                amount: dec!(1.001),
                currency: Currency::Rub,
                digits: 2,
            },
            MoneyError::TooLarge(dec!(1e10)),
            MoneyError::CurrencyMismatch {
                expected: Currency::Rub,
                actual: Currency::Usd,
            },
        ];
        let codes: std::collections::BTreeSet<_> = errors.iter().map(MoneyError::code).collect();
        assert_eq!(codes.len(), errors.len());
        assert!(errors.iter().all(|e| !e.to_string().is_empty()));
        // A minus sign and zero share `amount_not_positive`, as before this parser.
        assert_eq!(
            MoneyError::NotPositive(dec!(0)).code(),
            "amount_not_positive"
        );
        // The whitespace message shows the whitespace.
        assert_eq!(
            MoneyError::Whitespace(" 5".into()).to_string(),
            "amount \" 5\" contains whitespace"
        );
    }

    #[test]
    fn banker_rounding_is_explicit() {
        assert_eq!(round_minor(dec!(2.345), Currency::Rub).to_string(), "2.34");
        assert_eq!(round_minor(dec!(2.355), Currency::Rub).to_string(), "2.36");
    }

    #[test]
    fn zero_is_never_negative() {
        let negative_zero = -dec!(0.00);
        assert!(
            negative_zero.is_sign_negative(),
            "rust_decimal keeps the sign"
        );
        assert_eq!(negative_zero.to_string(), "-0.00", "and prints it");
        assert_eq!(normalized(negative_zero).to_string(), "0.00");
        assert_eq!(format_amount(negative_zero), "0.00");
        assert_eq!(format_amount(dec!(-0.001).ceil()), "0");
        assert_eq!(format_fixed(dec!(-0.001), 2), "0.00");
        assert_eq!(
            format!("{:.2}", dec!(-0.001)),
            "-0.00",
            "what format_fixed avoids"
        );
        assert_eq!(format_fixed(dec!(-0.005), 2), "0.00");
        assert_eq!(format_fixed(dec!(-0.006), 2), "-0.01");
        assert_eq!(
            round_minor(negative_zero, Currency::Rub).to_string(),
            "0.00"
        );
        assert_eq!(
            Money::new(negative_zero, Currency::Rub).amount.to_string(),
            "0.00"
        );
        let literal = Money {
            amount: negative_zero,
            currency: Currency::Usd,
        };
        assert_eq!(literal.to_string(), "0.00 USD");
        assert_eq!(
            Money::positive(negative_zero, Currency::Rub),
            Err(MoneyError::NotPositive(dec!(0.00)))
        );
        assert_eq!(
            MoneyError::NotPositive(normalized(negative_zero)).to_string(),
            "amount must be positive, got 0.00"
        );
        // Other values are unchanged, scale included.
        assert_eq!(normalized(dec!(-0.50)).to_string(), "-0.50");
        assert_eq!(normalized(dec!(10.00)).to_string(), "10.00");
    }
}
