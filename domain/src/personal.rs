//! A client's personal data (seed 000, 6.2.1) and its sealed form.
//!
//! Personal data never reaches the log in clear: an event carries [`Sealed`] — the
//! [`PersonalData`] serialised to JSON and encrypted with the client's own data key (AEAD,
//! the key kept outside the log). Erasing a client destroys the key; the events stay, the
//! hash chain over them stays valid, and their personal fields can no longer be read.
//!
//! The domain never encrypts or decrypts (that needs the key store): it only carries the
//! sealed form, and the edge parses the clear form into these types before sealing it.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::Date;

use crate::identity::{Email, Inn, PassportNumber, PhoneE164, Snils};

/// Personal data sealed with the client's data key: what events carry.
///
/// `key_version` names the client's key that sealed it; `nonce` and `ciphertext` are
/// lowercase hex. The ciphertext authenticates the client id as associated data, so a
/// sealed value copied to another client's event does not open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    pub key_version: u32,
    pub nonce: String,
    pub ciphertext: String,
}

/// A Russian passport as the client gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passport {
    pub number: PassportNumber,
    #[serde(with = "crate::schedule::iso_date")]
    pub issued_on: Date,
    /// Issuing authority's department code, `NNN-NNN`.
    pub department_code: String,
    pub issued_by: String,
}

/// Where the client works.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Employment {
    pub employer: String,
    pub position: String,
    /// Months at the current employer.
    pub months_employed: u32,
}

/// A guarantor's contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guarantor {
    pub full_name: String,
    pub phone: PhoneE164,
    pub relation: String,
}

/// Everything personal the registry keeps of a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonalData {
    pub last_name: String,
    pub first_name: String,
    #[serde(default)]
    pub middle_name: Option<String>,
    #[serde(with = "crate::schedule::iso_date")]
    pub birth_date: Date,
    pub phone: PhoneE164,
    #[serde(default)]
    pub email: Option<Email>,
    #[serde(default)]
    pub passport: Option<Passport>,
    #[serde(default)]
    pub snils: Option<Snils>,
    #[serde(default)]
    pub inn: Option<Inn>,
    #[serde(default)]
    pub registration_address: Option<String>,
    #[serde(default)]
    pub employment: Option<Employment>,
    /// Average monthly income, roubles with kopecks (what the PDN divides by).
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub monthly_income: Option<Decimal>,
    #[serde(default)]
    pub guarantors: Vec<Guarantor>,
}

impl PersonalData {
    /// "Фамилия Имя Отчество", the middle name only when there is one.
    pub fn full_name(&self) -> String {
        let mut name = format!("{} {}", self.last_name, self.first_name);
        if let Some(middle) = self.middle_name.as_deref().filter(|m| !m.is_empty()) {
            name.push(' ');
            name.push_str(middle);
        }
        name
    }

    /// The identification data the client provided ([`crate::identification::Datum`]).
    pub fn provided(&self) -> std::collections::BTreeSet<crate::identification::Datum> {
        use crate::identification::Datum;
        let mut data = std::collections::BTreeSet::from([Datum::Phone]);
        if self.passport.is_some() {
            data.insert(Datum::Passport);
        }
        if self.snils.is_some() {
            data.insert(Datum::Snils);
        }
        if self.inn.is_some() {
            data.insert(Datum::Inn);
        }
        data
    }
}
