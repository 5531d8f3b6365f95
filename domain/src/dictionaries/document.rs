//! The dictionaries as they arrive: one JSON document holding every dictionary, as the
//! processing centre's sync delivers it and as an operator imports it from a file
//! (`docs/dictionaries.md` describes it field by field).
//!
//! Every value is text as written (amounts, percents, rates and coordinates are decimal
//! strings, never JSON numbers; numbers of the capacity ranges are digit strings), and every
//! list is a JSON array, never an object keyed by id, so that a key given twice cannot silently
//! replace another. Nothing here is checked: [`super::Dictionaries::parse`] turns a document
//! into the dictionaries or refuses it naming the item.
//!
//! With the `openapi` feature the document's types describe themselves as OpenAPI schemas
//! (`utoipa::ToSchema`), so the command API's import route states the body it reads.

use serde::{Deserialize, Serialize};

/// Every dictionary of one sync or import. The catalogue (services, payment sources,
/// commission profiles, the menu profile and receipt templates) is required; rates, map
/// points and capacity ranges may be empty. Whatever the document leaves empty is empty in the
/// version it becomes: an import replaces every dictionary.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Document {
    pub services: Vec<ServiceDocument>,
    pub payment_sources: Vec<PaymentSourceDocument>,
    pub commission_profiles: Vec<CommissionProfileDocument>,
    /// The menu profile's roots (at most three: payment, top-up, transfer), each with its
    /// items nested under `items`.
    pub menu: Vec<MenuItemDocument>,
    pub receipt_templates: Vec<ReceiptTemplateDocument>,
    #[serde(default)]
    pub currency_rates: Vec<CurrencyRateDocument>,
    #[serde(default)]
    pub map_points: Vec<MapPointDocument>,
    #[serde(default)]
    pub phone_ranges: Vec<PhoneRangeDocument>,
}

/// A provider in whose favour operations are accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ServiceDocument {
    pub id: String,
    pub name: String,
    /// The receipt template's name; none: the default template `default.check-render`.
    #[serde(default)]
    pub receipt_template: Option<String>,
    /// The logo client apps show (a file name or a path on the platform's static host).
    #[serde(default)]
    pub logo: Option<String>,
}

/// A payment source: where the money of an operation comes from (`wallet`, `card`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PaymentSourceDocument {
    pub id: String,
    pub name: String,
}

/// A commission profile: the rules that give the commission charged to the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CommissionProfileDocument {
    pub id: String,
    pub name: String,
    /// ISO 4217 code of the amounts of its rules and of the operations it applies to.
    pub currency: String,
    pub rules: Vec<CommissionRuleDocument>,
}

/// One rule: for operations paid from `source` whose amount is in [`from`, `to`), the
/// commission is `fixed` + `percent` % of the amount, at least `min` and at most `max`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CommissionRuleDocument {
    pub source: String,
    /// Decimal string, at most two places, e.g. `"0.00"`.
    pub from: String,
    /// Decimal string; none: no upper bound.
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub fixed: Option<String>,
    /// Percent of the amount, at most four places, e.g. `"1.5"`.
    #[serde(default)]
    pub percent: Option<String>,
    #[serde(default)]
    pub min: Option<String>,
    #[serde(default)]
    pub max: Option<String>,
}

/// An item of the menu profile: a folder (no `service`; its `items` nested) or a service
/// (`service` and `commission_profile`, no `items`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MenuItemDocument {
    pub id: String,
    pub name: String,
    /// `payment`, `top_up` or `transfer`; every item must have one (spec §1.3, rule 3).
    #[serde(default)]
    pub operation: Option<String>,
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub commission_profile: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(no_recursion))]
    pub items: Vec<MenuItemDocument>,
}

/// A currency's rate on a date, for reference only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CurrencyRateDocument {
    /// ISO 4217 code of the currency quoted, e.g. `USD`.
    pub currency: String,
    /// ISO 4217 code of the currency it is quoted in; `RUB` when absent.
    #[serde(default)]
    pub base: Option<String>,
    /// Units of `base` for one unit of `currency`, a positive decimal string.
    pub rate: String,
    /// `YYYY-MM-DD`.
    pub date: String,
}

/// A point on the map: a terminal, an office, an ATM or an agent's point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MapPointDocument {
    pub id: String,
    pub name: String,
    pub address: String,
    /// Decimal degrees as strings, e.g. `"55.757800"`.
    pub latitude: String,
    pub longitude: String,
    /// `terminal`, `office`, `atm` or `agent`.
    pub kind: String,
}

/// A range of phone numbers of one operator in one region, both ends included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PhoneRangeDocument {
    /// The full number with its country code, digits only (a leading `+` is allowed), e.g.
    /// `"79160000000"`.
    pub from: String,
    pub to: String,
    pub operator: String,
    pub region: String,
}

/// A receipt template (Apache Velocity text, spec §3.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReceiptTemplateDocument {
    pub name: String,
    pub body: String,
}
