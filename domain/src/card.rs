//! A bank card as a buyer types it on the checkout page, parsed once at the edge. The number,
//! expiry and CVC go to the bank-system port only: events and logs carry the masked number.

use std::fmt;
use time::{Date, Month};

/// Why a card was refused before the bank was asked; each with its code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    #[error("a card number is 13–19 digits (spaces allowed between groups)")]
    NumberFormat,
    #[error("the card number's check digit is wrong")]
    NumberChecksum,
    #[error("the expiry is MM/YY")]
    ExpiryFormat,
    #[error("the card has expired")]
    Expired,
    #[error("the CVC is 3 or 4 digits")]
    CvcFormat,
}

impl CardError {
    pub fn code(&self) -> &'static str {
        match self {
            CardError::NumberFormat => "card_number_format",
            CardError::NumberChecksum => "card_number_checksum",
            CardError::ExpiryFormat => "card_expiry_format",
            CardError::Expired => "card_expired",
            CardError::CvcFormat => "card_cvc_format",
        }
    }
}

/// A card number (PAN) whose Luhn check digit (ISO/IEC 7812-1) is right. `Debug` and
/// `Display` show it masked.
#[derive(Clone, PartialEq, Eq)]
pub struct CardNumber(String);

impl CardNumber {
    /// Errors: `card_number_format`, `card_number_checksum`.
    pub fn parse(s: &str) -> Result<CardNumber, CardError> {
        let digits: String = s.chars().filter(|c| *c != ' ').collect();
        if !(13..=19).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(CardError::NumberFormat);
        }
        let sum: u32 = digits
            .bytes()
            .rev()
            .enumerate()
            .map(|(i, b)| {
                let d = u32::from(b - b'0');
                if i % 2 == 1 {
                    let x = d * 2;
                    if x > 9 {
                        x - 9
                    } else {
                        x
                    }
                } else {
                    d
                }
            })
            .sum();
        if !sum.is_multiple_of(10) {
            return Err(CardError::NumberChecksum);
        }
        Ok(CardNumber(digits))
    }

    /// The digits, for the bank only.
    pub fn digits(&self) -> &str {
        &self.0
    }

    /// The first six and last four digits, the rest as `*` (PCI DSS 3.4).
    pub fn masked(&self) -> String {
        let n = self.0.len();
        format!("{}{}{}", &self.0[..6], "*".repeat(n - 10), &self.0[n - 4..])
    }
}

impl fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Display for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// The card's expiry month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry {
    pub year: i32,
    pub month: Month,
}

impl Expiry {
    /// `MM/YY` exactly (two ASCII digits each, month 01–12, no spaces), valid through the
    /// last day of that month, checked against `today`.
    ///
    /// Errors: `card_expiry_format`, `card_expired`.
    pub fn parse(s: &str, today: Date) -> Result<Expiry, CardError> {
        let (mm, yy) = s.split_once('/').ok_or(CardError::ExpiryFormat)?;
        let two_digits = |t: &str| t.len() == 2 && t.bytes().all(|b| b.is_ascii_digit());
        if !two_digits(mm) || !two_digits(yy) {
            return Err(CardError::ExpiryFormat);
        }
        let month: u8 = mm.parse().map_err(|_| CardError::ExpiryFormat)?;
        let year: i32 = yy.parse().map_err(|_| CardError::ExpiryFormat)?;
        let month = Month::try_from(month).map_err(|_| CardError::ExpiryFormat)?;
        let expiry = Expiry {
            year: 2000 + year,
            month,
        };
        if (expiry.year, u8::from(expiry.month)) < (today.year(), u8::from(today.month())) {
            return Err(CardError::Expired);
        }
        Ok(expiry)
    }
}

/// The card verification code. `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct Cvc(String);

impl Cvc {
    /// Errors: `card_cvc_format`.
    pub fn parse(s: &str) -> Result<Cvc, CardError> {
        if (3..=4).contains(&s.len()) && s.chars().all(|c| c.is_ascii_digit()) {
            Ok(Cvc(s.to_owned()))
        } else {
            Err(CardError::CvcFormat)
        }
    }

    /// The digits, for the bank only.
    pub fn digits(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Cvc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn a_card_number_is_checked_by_luhn_and_shown_masked() {
        let n = CardNumber::parse("4111 1111 1111 1111").unwrap();
        assert_eq!(n.masked(), "411111******1111");
        assert_eq!(format!("{n:?}"), "411111******1111");
        assert_eq!(
            CardNumber::parse("4111111111111112").unwrap_err().code(),
            "card_number_checksum"
        );
        for bad in [
            "",
            "4111-1111-1111-1111",
            "411111111111",
            "41111111111111111111",
        ] {
            assert_eq!(
                CardNumber::parse(bad).unwrap_err().code(),
                "card_number_format"
            );
        }
    }

    #[test]
    fn an_expiry_is_valid_through_its_month() {
        let today = date!(2026 - 12 - 01);
        assert!(Expiry::parse("12/26", today).is_ok());
        assert_eq!(
            Expiry::parse("11/26", today).unwrap_err().code(),
            "card_expired"
        );
        for bad in [
            "13/27", "1/27", "12-27", "ab/cd", "", "+1/27", "12/+7", " 12/27", "00/27",
        ] {
            assert_eq!(
                Expiry::parse(bad, today).unwrap_err().code(),
                "card_expiry_format"
            );
        }
        assert_eq!(Cvc::parse("12").unwrap_err().code(), "card_cvc_format");
        assert_eq!(format!("{:?}", Cvc::parse("123").unwrap()), "***");
    }
}
