//! Which identification methods a client can take (seed 000, 6.11.1–6.11.2: a configured
//! catalogue of methods; the methods available to a client follow from the data the client
//! has provided).
//!
//! The catalogue is configuration (JSON): each method names the data it needs and whether it
//! needs a person (an operator checks a photo). A method is available when every datum it
//! needs has been provided; the list keeps the catalogue's order, which is the order of
//! preference.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A piece of data a client can provide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Datum {
    Passport,
    Snils,
    Inn,
    Phone,
    PassportPhoto,
    Selfie,
}

/// One method of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Method {
    /// Stable id, e.g. `snils`, `mobile_id`.
    pub id: String,
    pub name: String,
    /// Everything the method needs.
    pub requires: BTreeSet<Datum>,
    /// An operator has to look (photo identification): the flow waits for a CRM ticket.
    #[serde(default)]
    pub manual: bool,
    /// Methods can be switched off without being removed.
    #[serde(default = "enabled")]
    pub enabled: bool,
}

fn enabled() -> bool {
    true
}

/// Why a catalogue is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    /// `identification_catalogue`
    #[error("identification catalogue: {0}")]
    Invalid(String),
}

/// The catalogue of methods, in order of preference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Catalogue(Vec<Method>);

impl Catalogue {
    /// A catalogue from its JSON form (a list of methods).
    ///
    /// Errors: [`CatalogueError::Invalid`] for JSON that is not a list of methods, an empty
    /// or repeated id, or a method that needs nothing.
    pub fn from_json(json: &str) -> Result<Catalogue, CatalogueError> {
        let methods: Vec<Method> =
            serde_json::from_str(json).map_err(|e| CatalogueError::Invalid(e.to_string()))?;
        Catalogue::new(methods)
    }

    /// Errors: as [`Catalogue::from_json`].
    pub fn new(methods: Vec<Method>) -> Result<Catalogue, CatalogueError> {
        let mut ids = BTreeSet::new();
        for m in &methods {
            if m.id.trim().is_empty() {
                return Err(CatalogueError::Invalid("a method has an empty id".into()));
            }
            if !ids.insert(m.id.as_str()) {
                return Err(CatalogueError::Invalid(format!(
                    "method `{}` is listed twice",
                    m.id
                )));
            }
            if m.requires.is_empty() {
                return Err(CatalogueError::Invalid(format!(
                    "method `{}` needs no data: it would identify anyone",
                    m.id
                )));
            }
        }
        Ok(Catalogue(methods))
    }

    /// The enabled methods whose every required datum is in `provided`, in catalogue order.
    pub fn available(&self, provided: &BTreeSet<Datum>) -> Vec<&Method> {
        self.0
            .iter()
            .filter(|m| m.enabled && m.requires.is_subset(provided))
            .collect()
    }

    /// What the client still has to provide for `method` (empty when it is available).
    pub fn missing(&self, method: &str, provided: &BTreeSet<Datum>) -> Option<Vec<Datum>> {
        self.0
            .iter()
            .find(|m| m.id == method)
            .map(|m| m.requires.difference(provided).copied().collect())
    }
}
