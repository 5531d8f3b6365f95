//! A client's documents (seed 000, 6.2.1: documents saved and edited under validation rules
//! kept as configuration). The rules say, per document type, which file types and sizes are
//! accepted and whether the document carries a number of a given length. A document of type
//! `passport_photo` or `selfie` makes photo identification available ([`crate::identification`]).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::personal::Sealed;

/// The validation rule of one document type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Stable id, e.g. `passport_photo`.
    pub kind: String,
    pub name: String,
    /// Accepted MIME types.
    pub content_types: Vec<String>,
    /// Largest accepted file, bytes.
    pub max_bytes: u64,
    /// The document carries a number of exactly this many digits (spaces and dashes aside).
    #[serde(default)]
    pub number_digits: Option<u32>,
}

/// Why a document is refused; each with its code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// `unknown_document_type`
    #[error("no document type `{0}` is configured")]
    UnknownKind(String),
    /// `document_content_type`
    #[error("a {kind} must be one of {allowed}, not {given}")]
    ContentType {
        kind: String,
        allowed: String,
        given: String,
    },
    /// `document_empty`
    #[error("the file is empty")]
    Empty,
    /// `document_too_large`
    #[error("a {kind} is at most {max} bytes, this one is {size}")]
    TooLarge { kind: String, max: u64, size: u64 },
    /// `document_number`
    #[error("a {kind} needs a number of {digits} digits")]
    Number { kind: String, digits: u32 },
    /// `document_rules`
    #[error("document rules: {0}")]
    Rules(String),
}

impl DocumentError {
    pub fn code(&self) -> &'static str {
        match self {
            DocumentError::UnknownKind(_) => "unknown_document_type",
            DocumentError::ContentType { .. } => "document_content_type",
            DocumentError::Empty => "document_empty",
            DocumentError::TooLarge { .. } => "document_too_large",
            DocumentError::Number { .. } => "document_number",
            DocumentError::Rules(_) => "document_rules",
        }
    }
}

/// The configured rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rules(Vec<Rule>);

impl Rules {
    /// Rules from their JSON form (a list). Errors: [`DocumentError::Rules`] for JSON that is
    /// not a list of rules, a repeated kind, or a rule accepting no file type.
    pub fn from_json(json: &str) -> Result<Rules, DocumentError> {
        let rules: Vec<Rule> =
            serde_json::from_str(json).map_err(|e| DocumentError::Rules(e.to_string()))?;
        let mut kinds = std::collections::BTreeSet::new();
        for r in &rules {
            if !kinds.insert(r.kind.as_str()) {
                return Err(DocumentError::Rules(format!(
                    "`{}` is configured twice",
                    r.kind
                )));
            }
            if r.content_types.is_empty() || r.max_bytes == 0 {
                return Err(DocumentError::Rules(format!(
                    "`{}` accepts no file",
                    r.kind
                )));
            }
        }
        Ok(Rules(rules))
    }

    /// Checks a file of `kind`, `content_type` and `size` bytes with an optional number;
    /// returns the number in canonical form (digits only).
    ///
    /// Errors: every [`DocumentError`] but `Rules`.
    pub fn check(
        &self,
        kind: &str,
        content_type: &str,
        size: u64,
        number: Option<&str>,
    ) -> Result<Option<String>, DocumentError> {
        let rule = self
            .0
            .iter()
            .find(|r| r.kind == kind)
            .ok_or_else(|| DocumentError::UnknownKind(kind.to_owned()))?;
        if !rule.content_types.iter().any(|t| t == content_type) {
            return Err(DocumentError::ContentType {
                kind: kind.to_owned(),
                allowed: rule.content_types.join(", "),
                given: content_type.to_owned(),
            });
        }
        if size == 0 {
            return Err(DocumentError::Empty);
        }
        if size > rule.max_bytes {
            return Err(DocumentError::TooLarge {
                kind: kind.to_owned(),
                max: rule.max_bytes,
                size,
            });
        }
        match (rule.number_digits, number) {
            (None, _) => Ok(None),
            (Some(digits), Some(n)) => {
                let canonical: String = n.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
                let ok = canonical.len() == usize::try_from(digits).unwrap_or(usize::MAX)
                    && canonical.bytes().all(|b| b.is_ascii_digit());
                if ok {
                    Ok(Some(canonical))
                } else {
                    Err(DocumentError::Number {
                        kind: kind.to_owned(),
                        digits,
                    })
                }
            }
            (Some(digits), None) => Err(DocumentError::Number {
                kind: kind.to_owned(),
                digits,
            }),
        }
    }
}

/// A document as the registry records it: the file is kept sealed in the document store,
/// the number (personal data) sealed on the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    pub document_id: Uuid,
    pub kind: String,
    pub content_type: String,
    pub size_bytes: u64,
    /// Where the sealed file is stored.
    pub location: String,
    pub number: Option<Sealed>,
}
