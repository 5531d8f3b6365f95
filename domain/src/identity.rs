//! A client's identifiers, parsed once at the edge (seed 000, 6.2.1: the customer registry
//! keeps the passport, SNILS, INN, phone and e-mail of a client and searches by them).
//!
//! Each type holds only a valid value in one canonical form, so two spellings of the same
//! identifier (`"112-233-445 95"` and `"11223344595"`) are equal once parsed, and a search by
//! it needs no further normalising. Where the format has a check digit it is verified:
//! INN (Federal Tax Service order ММВ-7-6/435@, the control-number algorithm of its
//! appendix) and SNILS (Pension Fund regulation on the insurance number, control number
//! modulo 101). Every refusal has a stable machine-readable code ([`IdentityError::code`]).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why an identifier was refused. The refused text is personal data: neither the variants
/// nor their messages carry it (an error may be logged or answered to another party), only
/// what was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// `inn_format`
    #[error("an INN must be 10 digits (an organisation) or 12 digits (a person)")]
    InnFormat,
    /// `inn_checksum`
    #[error("the INN fails its check digit")]
    InnChecksum,
    /// `snils_format`
    #[error("a SNILS must be 11 digits, written `XXX-XXX-XXX YY` or without separators")]
    SnilsFormat,
    /// `snils_checksum`
    #[error("the SNILS fails its check number")]
    SnilsChecksum,
    /// `passport_format`
    #[error("a passport must be a 4-digit series and a 6-digit number, e.g. `4510 123456`")]
    PassportFormat,
    /// `passport_not_issued`: a series or number of zeros only, which is never issued.
    #[error("the passport has a series or a number of zeros only, which is never issued")]
    PassportNotIssued,
    /// `phone_format`
    #[error(
        "a phone must be in E.164 form, e.g. `+79161234567` (or a Russian number starting with 8)"
    )]
    PhoneFormat,
    /// `email_format`
    #[error("an e-mail address must be of the form name@domain.tld")]
    EmailFormat,
}

impl IdentityError {
    /// The stable code for API responses.
    pub fn code(&self) -> &'static str {
        match self {
            IdentityError::InnFormat => "inn_format",
            IdentityError::InnChecksum => "inn_checksum",
            IdentityError::SnilsFormat => "snils_format",
            IdentityError::SnilsChecksum => "snils_checksum",
            IdentityError::PassportFormat => "passport_format",
            IdentityError::PassportNotIssued => "passport_not_issued",
            IdentityError::PhoneFormat => "phone_format",
            IdentityError::EmailFormat => "email_format",
        }
    }
}

/// The ASCII digits of `s` once the separators people write (`-`, space) are removed, or
/// `None` when anything else is in it.
fn digits_without(s: &str, separators: &[char]) -> Option<Vec<u32>> {
    let mut out = Vec::with_capacity(s.len());
    for c in s.trim().chars() {
        if separators.contains(&c) {
            continue;
        }
        out.push(c.to_digit(10).filter(|_| c.is_ascii_digit())?);
    }
    Some(out)
}

fn weighted(digits: &[u32], weights: &[u32]) -> u32 {
    digits.iter().zip(weights).map(|(d, w)| d * w).sum()
}

fn render(digits: &[u32]) -> String {
    digits
        .iter()
        .filter_map(|d| char::from_digit(*d, 10))
        .collect()
}

/// A taxpayer number (ИНН): 10 digits for an organisation, 12 for a person, check digits
/// verified. Canonical form: the digits only.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Inn(String);

impl Inn {
    /// Errors: [`IdentityError::InnFormat`] (not 10 or 12 digits), [`IdentityError::InnChecksum`].
    pub fn parse(input: &str) -> Result<Inn, IdentityError> {
        let format = || IdentityError::InnFormat;
        let d = digits_without(input, &[]).ok_or_else(format)?;
        let check = |n: usize, weights: &[u32]| weighted(&d[..n], weights) % 11 % 10 == d[n];
        let valid = match d.len() {
            10 => check(9, &[2, 4, 10, 3, 5, 9, 4, 6, 8]),
            12 => {
                check(10, &[7, 2, 4, 10, 3, 5, 9, 4, 6, 8])
                    && check(11, &[3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8])
            }
            _ => return Err(format()),
        };
        if valid {
            Ok(Inn(render(&d)))
        } else {
            Err(IdentityError::InnChecksum)
        }
    }

    /// Whether it is a person's (12-digit) INN.
    pub fn is_personal(&self) -> bool {
        self.0.len() == 12
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An individual insurance account number (СНИЛС): 9 digits and a 2-digit check number.
/// Canonical form: the 11 digits only.
///
/// The check number is Σ dᵢ·(9 − i) over the 9 digits (i from 0), taken modulo 101, with 100
/// written `00`. It is defined for numbers above 001-001-998; lower numbers were issued before
/// the rule and are accepted as they are.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Snils(String);

impl Snils {
    /// Errors: [`IdentityError::SnilsFormat`], [`IdentityError::SnilsChecksum`].
    pub fn parse(input: &str) -> Result<Snils, IdentityError> {
        let d = digits_without(input, &['-', ' '])
            .filter(|d| d.len() == 11)
            .ok_or(IdentityError::SnilsFormat)?;
        let number = d[..9].iter().fold(0u32, |n, x| n * 10 + x);
        let given = d[9] * 10 + d[10];
        if number > 1_001_998 && snils_check(&d[..9]) != given {
            return Err(IdentityError::SnilsChecksum);
        }
        Ok(Snils(render(&d)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The check number of a SNILS's first 9 digits.
fn snils_check(nine: &[u32]) -> u32 {
    let sum = weighted(nine, &[9, 8, 7, 6, 5, 4, 3, 2, 1]);
    let rest = sum % 101;
    if rest == 100 {
        0
    } else {
        rest
    }
}

/// A Russian internal passport's series and number: 4 + 6 digits (written `4510 123456`).
/// Canonical form: the 10 digits only, series first.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PassportNumber(String);

impl PassportNumber {
    /// Errors: [`IdentityError::PassportFormat`] (not 10 digits once spaces are removed),
    /// [`IdentityError::PassportNotIssued`] (an all-zero series or number).
    pub fn parse(input: &str) -> Result<PassportNumber, IdentityError> {
        let d = digits_without(input, &[' '])
            .filter(|d| d.len() == 10)
            .ok_or(IdentityError::PassportFormat)?;
        if d[..4].iter().all(|x| *x == 0) || d[4..].iter().all(|x| *x == 0) {
            return Err(IdentityError::PassportNotIssued);
        }
        Ok(PassportNumber(render(&d)))
    }

    /// The 4-digit series (the MVD invalid-passports list's `PASSP_SERIES`).
    pub fn series(&self) -> &str {
        &self.0[..4]
    }

    /// The 6-digit number (`PASSP_NUMBER`).
    pub fn number(&self) -> &str {
        &self.0[4..]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A phone number in E.164 form: `+`, a country code and the subscriber number, 8 to 15
/// digits in all, the first not 0. Spaces, `-`, `(` and `)` are dropped; a Russian national
/// number written `8XXXXXXXXXX` (11 digits) becomes `+7XXXXXXXXXX`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneE164(String);

impl PhoneE164 {
    /// Errors: [`IdentityError::PhoneFormat`].
    pub fn parse(input: &str) -> Result<PhoneE164, IdentityError> {
        let format = || IdentityError::PhoneFormat;
        let trimmed = input.trim();
        let (plus, rest) = match trimmed.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let mut d = digits_without(rest, &[' ', '-', '(', ')']).ok_or_else(format)?;
        if !plus {
            // Only the Russian national form is accepted without a `+`.
            if d.len() == 11 && d[0] == 8 {
                d[0] = 7;
            } else {
                return Err(format());
            }
        }
        if !(8..=15).contains(&d.len()) || d[0] == 0 {
            return Err(format());
        }
        Ok(PhoneE164(format!("+{}", render(&d))))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An e-mail address: at most 254 characters as written, white space around it trimmed, one
/// `@`, a local part of 1–64 characters without white space or control characters, a domain
/// of at least two dot-separated labels of 1–63 characters each — ASCII letters and digits,
/// `-` (not first or last) and any other non-ASCII character that is neither white space nor
/// a control character (internationalised domains are accepted as written). Canonical form:
/// the domain lower-cased (the local part is kept as written: it may be case-sensitive).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// Errors: [`IdentityError::EmailFormat`].
    pub fn parse(input: &str) -> Result<Email, IdentityError> {
        let format = || IdentityError::EmailFormat;
        let s = input.trim();
        if input.chars().count() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format());
        }
        let (local, domain) = s.split_once('@').ok_or_else(format)?;
        let label_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || !c.is_ascii();
        let labels: Vec<&str> = domain.split('.').collect();
        if local.is_empty()
            || local.chars().count() > 64
            || domain.contains('@')
            || labels.len() < 2
            || labels.iter().any(|l| {
                l.is_empty()
                    || l.starts_with('-')
                    || l.ends_with('-')
                    || l.chars().count() > 63
                    || !l.chars().all(label_char)
            })
        {
            return Err(format());
        }
        Ok(Email(format!("{local}@{}", domain.to_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! string_newtype {
    ($($t:ident),*) => {$(
        impl TryFrom<String> for $t {
            type Error = IdentityError;
            fn try_from(s: String) -> Result<Self, IdentityError> {
                $t::parse(&s)
            }
        }
        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::str::FromStr for $t {
            type Err = IdentityError;
            fn from_str(s: &str) -> Result<Self, IdentityError> {
                $t::parse(s)
            }
        }
    )*};
}

string_newtype!(Inn, Snils, PassportNumber, PhoneE164, Email);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snils_check_number_cases_of_the_rule() {
        // 112-233-445: 1·9+1·8+2·7+2·6+3·5+3·4+4·3+4·2+5·1 = 95.
        assert_eq!(snils_check(&[1, 1, 2, 2, 3, 3, 4, 4, 5]), 95);
        // A sum of exactly 100 and of 101 both give 00.
        assert_eq!(snils_check(&[0, 0, 0, 0, 0, 0, 0, 0, 100]), 0);
        assert_eq!(snils_check(&[0, 0, 0, 0, 0, 0, 0, 0, 101]), 0);
        // Above 101 the rest modulo 101 is taken.
        assert_eq!(snils_check(&[0, 0, 0, 0, 0, 0, 0, 0, 150]), 49);
    }
}
