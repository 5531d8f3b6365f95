//! The plainer dictionaries: services, payment sources, receipt templates, currency rates and
//! map points.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::document::{
    CurrencyRateDocument, MapPointDocument, PaymentSourceDocument, ReceiptTemplateDocument,
    ServiceDocument,
};
use super::error::{DictionaryError, ItemRef};
use super::fields::{
    date, decimal, text, PointId, ServiceId, SourceId, TemplateName, DEFAULT_TEMPLATE,
};

/// The largest receipt template accepted, in bytes.
pub const MAX_TEMPLATE_BYTES: usize = 64 * 1024;

/// The most digits after the point of a rate.
pub const RATE_SCALE: u32 = 8;

/// The most digits after the point of a coordinate (about a millimetre).
pub const COORDINATE_SCALE: u32 = 8;

fn invalid(item: Box<ItemRef>, field: &'static str) -> impl Fn(String) -> DictionaryError {
    move |reason| DictionaryError::InvalidField {
        item: item.clone(),
        field,
        reason,
    }
}

/// An id that parses, or a refusal naming the item by its position.
fn id<T, E: fmt::Display>(
    dictionary: &'static str,
    raw: &str,
    index: usize,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<T, DictionaryError> {
    parse(raw).map_err(|e| DictionaryError::InvalidField {
        item: ItemRef::new(dictionary, raw, format!("{dictionary}[{index}]")),
        field: "id",
        reason: e.to_string(),
    })
}

/// Refuses the second of two items with one id.
fn unique<K: Ord + Clone + fmt::Display>(
    seen: &mut BTreeSet<K>,
    key: &K,
    dictionary: &'static str,
) -> Result<(), DictionaryError> {
    if seen.insert(key.clone()) {
        Ok(())
    } else {
        Err(DictionaryError::Duplicate {
            item: ItemRef::new(dictionary, &key.to_string(), key.to_string()),
        })
    }
}

/// Receipt templates by name (Apache Velocity text, spec §3.1, item 4); the default
/// `default.check-render` is always there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptTemplates(BTreeMap<TemplateName, String>);

impl ReceiptTemplates {
    /// Errors: [`DictionaryError::InvalidField`] (a bad name, an empty or too large body),
    /// [`DictionaryError::ReceiptTemplate`] (outside the subset [`crate::receipt`] renders),
    /// [`DictionaryError::Duplicate`], [`DictionaryError::DefaultTemplateMissing`].
    pub(crate) fn parse(
        docs: &[ReceiptTemplateDocument],
    ) -> Result<ReceiptTemplates, DictionaryError> {
        let mut out = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for (i, doc) in docs.iter().enumerate() {
            let name = id("receipt_templates", &doc.name, i, TemplateName::parse)?;
            unique(&mut seen, &name, "receipt_templates")?;
            let item = ItemRef::new("receipt_templates", &doc.name, doc.name.clone());
            if doc.body.trim().is_empty() {
                return Err(invalid(item, "body")("is empty".into()));
            }
            if doc.body.len() > MAX_TEMPLATE_BYTES {
                return Err(invalid(item, "body")(format!(
                    "is larger than {MAX_TEMPLATE_BYTES} bytes"
                )));
            }
            crate::receipt::Template::parse(&doc.body).map_err(|e| {
                DictionaryError::ReceiptTemplate {
                    item,
                    template_code: e.code,
                    line: e.line,
                    reason: e.message,
                }
            })?;
            out.insert(name, doc.body.clone());
        }
        if !out.contains_key(&TemplateName::default_template()) {
            return Err(DictionaryError::DefaultTemplateMissing);
        }
        Ok(ReceiptTemplates(out))
    }

    /// The template named `name`.
    pub fn get(&self, name: &TemplateName) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The default template's text.
    pub fn default_body(&self) -> &str {
        self.0
            .iter()
            .find(|(name, _)| name.as_str() == DEFAULT_TEMPLATE)
            .map_or("", |(_, body)| body.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&TemplateName, &str)> {
        self.0.iter().map(|(k, v)| (k, v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A provider in whose favour operations are accepted (spec §1.3, item 1).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Service {
    pub id: ServiceId,
    pub name: String,
    /// Its own receipt template; none: the default.
    pub receipt_template: Option<TemplateName>,
    /// The logo client apps show.
    pub logo: Option<String>,
}

impl Service {
    /// Errors: [`DictionaryError::InvalidField`], [`DictionaryError::UnknownReceiptTemplate`].
    pub(crate) fn parse(
        doc: &ServiceDocument,
        index: usize,
        templates: &ReceiptTemplates,
    ) -> Result<Service, DictionaryError> {
        let service_id = id("services", &doc.id, index, ServiceId::parse)?;
        let item = ItemRef::new("services", &doc.id, doc.id.clone());
        let name = text(&doc.name, 200).map_err(invalid(item.clone(), "name"))?;
        let receipt_template = match doc.receipt_template.as_deref() {
            None => None,
            Some(raw) => {
                let name = TemplateName::parse(raw)
                    .map_err(|e| invalid(item.clone(), "receipt_template")(e.to_string()))?;
                if templates.get(&name).is_none() {
                    return Err(DictionaryError::UnknownReceiptTemplate {
                        item,
                        template: raw.to_owned(),
                    });
                }
                Some(name)
            }
        };
        let logo = doc
            .logo
            .as_deref()
            .map(|l| text(l, 500).map_err(invalid(item.clone(), "logo")))
            .transpose()?;
        Ok(Service {
            id: service_id,
            name,
            receipt_template,
            logo,
        })
    }

    /// The name of the template its receipts are rendered with: its own, else the default.
    pub fn receipt_template_name(&self) -> TemplateName {
        self.receipt_template
            .clone()
            .unwrap_or_else(TemplateName::default_template)
    }
}

/// A payment source (spec §1.3, item 3): the commission is broken down by it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PaymentSource {
    pub id: SourceId,
    pub name: String,
}

impl PaymentSource {
    /// Errors: [`DictionaryError::InvalidField`].
    pub(crate) fn parse(
        doc: &PaymentSourceDocument,
        index: usize,
    ) -> Result<PaymentSource, DictionaryError> {
        let source_id = id("payment_sources", &doc.id, index, SourceId::parse)?;
        let item = ItemRef::new("payment_sources", &doc.id, doc.id.clone());
        Ok(PaymentSource {
            id: source_id,
            name: text(&doc.name, 200).map_err(invalid(item, "name"))?,
        })
    }
}

/// Three upper-case letters of an ISO 4217 code. Rates are reference only, so any code is
/// kept, not just the currencies accounts are held in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CurrencyCode(String);

impl CurrencyCode {
    pub fn parse(raw: &str) -> Option<CurrencyCode> {
        (raw.len() == 3 && raw.bytes().all(|b| b.is_ascii_uppercase()))
            .then(|| CurrencyCode(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CurrencyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A currency's rate on a date (spec §1.3, item 5): reference only — the rate applied to an
/// operation may differ.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CurrencyRate {
    pub currency: CurrencyCode,
    pub base: CurrencyCode,
    /// Units of `base` for one unit of `currency`, exact as published (at most
    /// [`RATE_SCALE`] places).
    pub rate: Decimal,
    pub date: time::Date,
}

impl CurrencyRate {
    /// Errors: [`DictionaryError::InvalidField`].
    pub(crate) fn parse(
        doc: &CurrencyRateDocument,
        index: usize,
    ) -> Result<CurrencyRate, DictionaryError> {
        let base_raw = doc.base.as_deref().unwrap_or("RUB");
        let item = ItemRef::new(
            "currency_rates",
            &format!("{}/{}@{}", doc.currency, base_raw, doc.date),
            format!("currency_rates[{index}]"),
        );
        let code = |field: &'static str, raw: &str| {
            CurrencyCode::parse(raw).ok_or_else(|| {
                invalid(item.clone(), field)(format!("`{raw}` is not an ISO 4217 code such as USD"))
            })
        };
        let currency = code("currency", &doc.currency)?;
        let base = code("base", base_raw)?;
        if currency == base {
            return Err(invalid(item, "base")("is the currency itself".into()));
        }
        let rate = decimal(&doc.rate, false, RATE_SCALE).map_err(invalid(item.clone(), "rate"))?;
        if rate.is_zero() {
            return Err(invalid(item, "rate")("must be positive".into()));
        }
        let date = date(&doc.date).map_err(invalid(item, "date"))?;
        Ok(CurrencyRate {
            currency,
            base,
            rate,
            date,
        })
    }
}

/// What a map point is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PointKind {
    /// A payment terminal.
    Terminal,
    /// A service office.
    Office,
    /// A cash machine.
    Atm,
    /// An agent's point (a shop accepting payments).
    Agent,
}

impl PointKind {
    pub const ALL: [PointKind; 4] = [
        PointKind::Terminal,
        PointKind::Office,
        PointKind::Atm,
        PointKind::Agent,
    ];

    pub fn code(self) -> &'static str {
        match self {
            PointKind::Terminal => "terminal",
            PointKind::Office => "office",
            PointKind::Atm => "atm",
            PointKind::Agent => "agent",
        }
    }

    pub fn parse(raw: &str) -> Option<PointKind> {
        PointKind::ALL.into_iter().find(|k| k.code() == raw)
    }
}

/// A point on the map (spec §1.3, item 6).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MapPoint {
    pub id: PointId,
    pub name: String,
    pub address: String,
    /// Decimal degrees, −90 to 90, at most [`COORDINATE_SCALE`] places.
    pub latitude: Decimal,
    /// Decimal degrees, −180 to 180.
    pub longitude: Decimal,
    pub kind: PointKind,
}

impl MapPoint {
    /// Errors: [`DictionaryError::InvalidField`].
    pub(crate) fn parse(doc: &MapPointDocument, index: usize) -> Result<MapPoint, DictionaryError> {
        let point_id = id("map_points", &doc.id, index, PointId::parse)?;
        let item = ItemRef::new("map_points", &doc.id, doc.id.clone());
        let degrees = |field: &'static str, raw: &str, bound: i64| {
            let value =
                decimal(raw, true, COORDINATE_SCALE).map_err(invalid(item.clone(), field))?;
            if value.abs() > Decimal::from(bound) {
                return Err(invalid(item.clone(), field)(format!(
                    "{value} is outside −{bound}…{bound} degrees"
                )));
            }
            Ok(value)
        };
        Ok(MapPoint {
            id: point_id,
            name: text(&doc.name, 200).map_err(invalid(item.clone(), "name"))?,
            address: text(&doc.address, 500).map_err(invalid(item.clone(), "address"))?,
            latitude: degrees("latitude", &doc.latitude, 90)?,
            longitude: degrees("longitude", &doc.longitude, 180)?,
            kind: PointKind::parse(&doc.kind).ok_or_else(|| {
                invalid(item.clone(), "kind")(format!(
                    "`{}` is not one of terminal, office, atm, agent",
                    doc.kind
                ))
            })?,
        })
    }
}

/// Parses every item of a list with `parse`, refusing a second item with the same key.
pub(crate) fn parse_unique<D, T, K: Ord + Clone + fmt::Display>(
    docs: &[D],
    dictionary: &'static str,
    parse: impl Fn(&D, usize) -> Result<T, DictionaryError>,
    key: impl Fn(&T) -> K,
) -> Result<Vec<T>, DictionaryError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(docs.len());
    for (i, doc) in docs.iter().enumerate() {
        let parsed = parse(doc, i)?;
        unique(&mut seen, &key(&parsed), dictionary)?;
        out.push(parsed);
    }
    Ok(out)
}
