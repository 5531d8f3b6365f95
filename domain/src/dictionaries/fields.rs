//! The values of a document, parsed one by one: ids, names, decimals, dates.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a value is not an id of its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a {what}: 1–{max} characters of A–Z, a–z, 0–9, `_`, `.` and `-`")]
pub struct IdError {
    pub what: &'static str,
    pub value: String,
    pub max: usize,
}

/// Whether `raw` is 1–`max` characters of `A–Z a–z 0–9 _ . -`.
fn is_key(raw: &str, max: usize) -> bool {
    !raw.is_empty()
        && raw.len() <= max
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

macro_rules! id_newtype {
    ($(#[$doc:meta])* $t:ident, $what:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $t(String);

        impl $t {
            /// Parses an id: 1–
            #[doc = stringify!($max)]
            /// characters of `A–Z a–z 0–9 _ . -`, taken as written (case kept, nothing
            /// trimmed).
            ///
            /// Errors: [`IdError`].
            pub fn parse(raw: &str) -> Result<$t, IdError> {
                if is_key(raw, $max) {
                    Ok($t(raw.to_owned()))
                } else {
                    Err(IdError {
                        what: $what,
                        value: raw.to_owned(),
                        max: $max,
                    })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $t {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                $t::parse(&value)
            }
        }

        impl From<$t> for String {
            fn from(value: $t) -> String {
                value.0
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_newtype!(
    /// A service's id in the processing centre, e.g. `mts`.
    ServiceId,
    "service id",
    64
);
id_newtype!(
    /// A payment source's id, e.g. `wallet`, `card`.
    SourceId,
    "payment source id",
    40
);
id_newtype!(
    /// A commission profile's id.
    ProfileId,
    "commission profile id",
    64
);
id_newtype!(
    /// A menu item's id, unique in the menu profile.
    MenuItemId,
    "menu item id",
    64
);
id_newtype!(
    /// A receipt template's name, e.g. `default.check-render`.
    TemplateName,
    "receipt template name",
    100
);
id_newtype!(
    /// A map point's id.
    PointId,
    "map point id",
    64
);

impl TemplateName {
    /// The template a service without one of its own uses (spec §3.1: «Имя файла шаблона
    /// чека по умолчанию: default.check-render»).
    pub fn default_template() -> TemplateName {
        TemplateName(DEFAULT_TEMPLATE.to_owned())
    }
}

/// The name of the default receipt template.
pub const DEFAULT_TEMPLATE: &str = "default.check-render";

/// A name or an address as shown to people: trimmed, 1–`max` characters, no control
/// characters. Errors: the reason.
pub(crate) fn text(raw: &str, max: usize) -> Result<String, String> {
    let t = raw.trim();
    if t.is_empty() {
        return Err("is empty".into());
    }
    if t.chars().count() > max {
        return Err(format!("is longer than {max} characters"));
    }
    if t.chars().any(char::is_control) {
        return Err("contains control characters".into());
    }
    Ok(t.to_owned())
}

/// A plain decimal written `[-]digits[.digits]` (the minus only when `signed`), at most
/// `max_scale` digits after the point and 28 digits in all, exact. Errors: the reason.
pub(crate) fn decimal(raw: &str, signed: bool, max_scale: u32) -> Result<Decimal, String> {
    let unsigned = match raw.strip_prefix('-') {
        Some(rest) if signed => rest,
        Some(_) => return Err(format!("`{raw}` must not be negative")),
        None => raw,
    };
    let (int, frac) = match unsigned.split_once('.') {
        Some((i, f)) => (i, f),
        None => (unsigned, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty()
        || !digits(int)
        || !digits(frac)
        || (unsigned.contains('.') && frac.is_empty())
    {
        return Err(format!(
            "`{raw}` is not a decimal written as digits with an optional point, e.g. \"10.50\""
        ));
    }
    if frac.len() > max_scale as usize {
        return Err(format!(
            "`{raw}` has more than {max_scale} digits after the point"
        ));
    }
    if int.len() + frac.len() > 28 {
        return Err(format!("`{raw}` has more than 28 digits"));
    }
    Decimal::from_str_exact(raw).map_err(|e| format!("`{raw}`: {e}"))
}

/// An ISO date `YYYY-MM-DD`. Errors: the reason.
pub(crate) fn date(raw: &str) -> Result<time::Date, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(raw, &format).map_err(|_| format!("`{raw}` is not a date YYYY-MM-DD"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn ids_are_taken_as_written_or_refused() {
        assert_eq!(
            ServiceId::parse("mts-moscow_1.0").map(|s| s.to_string()),
            Ok("mts-moscow_1.0".to_owned())
        );
        for bad in ["", " mts", "mts/x", "мтс", &"a".repeat(65)] {
            let e = ServiceId::parse(bad).unwrap_err();
            assert_eq!(e.what, "service id");
            assert!(e.to_string().contains("1–64"), "{e}");
        }
        assert!(TemplateName::parse(DEFAULT_TEMPLATE).is_ok());
    }

    #[test]
    fn decimals_are_plain_and_exact() {
        assert_eq!(decimal("10.50", false, 2), Ok(dec!(10.50)));
        assert_eq!(decimal("0", false, 2), Ok(dec!(0)));
        assert_eq!(decimal("-55.75", true, 8), Ok(dec!(-55.75)));
        for bad in [
            "", "-", ".5", "5.", "1e3", "+1", " 1", "1,5", "1.2.3", "0x1", "1_0",
        ] {
            assert!(decimal(bad, true, 2).is_err(), "{bad:?} accepted");
        }
        assert!(decimal("-1", false, 2).unwrap_err().contains("negative"));
        assert!(decimal("1.001", false, 2).unwrap_err().contains("2 digits"));
        assert!(decimal(&"9".repeat(29), false, 2)
            .unwrap_err()
            .contains("28 digits"));
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(text("  МТС ", 10), Ok("МТС".to_owned()));
        assert!(text("  ", 10).is_err());
        assert!(text("a\u{7}b", 10).is_err());
        assert!(text("абвгдеёжзий", 10).is_err());
    }

    #[test]
    fn dates_are_iso() {
        assert_eq!(date("2026-12-03"), Ok(time::macros::date!(2026 - 12 - 03)));
        assert!(date("03.12.2026").is_err());
        assert!(date("2026-02-30").is_err());
    }
}
