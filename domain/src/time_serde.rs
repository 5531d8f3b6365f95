//! Optional times and dates in JSON: RFC 3339 / `YYYY-MM-DD` text, or `null` when unset.
//!
//! `time::serde::*::option` refuse a `null` that serde hands over as a unit value, which it
//! does wherever it buffers a value before reading it: inside an internally tagged enum (a
//! command's recorded outcome carries the states it left, so a repeated command id could not
//! be answered for a payment not reserved or an application without an expiry) or a
//! flattened struct. These modules read `null` as unset in every such place. Every optional
//! time or date the platform stores uses them (`with = "etr_domain::time_serde::…"`).

use serde::{Deserialize, Deserializer, Serializer};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};

/// `Option<OffsetDateTime>` as RFC 3339 text or `null`.
pub mod rfc3339_option {
    use super::*;

    pub fn serialize<S: Serializer>(
        value: &Option<OffsetDateTime>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        time::serde::rfc3339::option::serialize(value, serializer)
    }

    /// Errors: text that is not an RFC 3339 date-time.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<OffsetDateTime>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| OffsetDateTime::parse(&text, &Rfc3339).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// `Option<Date>` as `YYYY-MM-DD` or `null`.
pub mod iso_date_option {
    use super::*;

    pub fn serialize<S: Serializer>(
        value: &Option<Date>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        crate::schedule::iso_date::option::serialize(value, serializer)
    }

    /// Errors: text that is not a `YYYY-MM-DD` date.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Date>, D::Error> {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        Option::<String>::deserialize(deserializer)?
            .map(|text| Date::parse(&text, &format).map_err(serde::de::Error::custom))
            .transpose()
    }
}
