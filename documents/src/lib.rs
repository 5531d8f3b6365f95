//! Loan agreements: the documents a client signs.
//!
//! The agreement service of the platform turns a client's data and an accepted
//! offer into a contract the client signs with a simple electronic signature
//! (a one-time code), and keeps the signed file:
//!
//! 1. **Templates** ([`Templates`]) are configuration: MiniJinja HTML
//!    templates, a built-in set shipped in the binary ([`LOAN_AGREEMENT`], a
//!    Russian consumer-loan agreement with its individual terms table) which
//!    operators override from a directory. Undefined parameters are errors
//!    naming the parameter, never blanks in a contract.
//! 2. **Parameters** ([`ContractParams`]) are typed; amounts arrive formatted,
//!    this crate does no money arithmetic.
//! 3. **Rendering** ([`Agreements::render`]) gives the HTML, a PDF laid out
//!    from that HTML (see [`pdf`] for the markup it reads) and the SHA-256 of
//!    the PDF. The PDF is deterministic — the same template and parameters
//!    give the same bytes — so the hash the client signs can be reproduced
//!    and checked with [`verify_hash`] at any later time.
//! 4. **Storage** ([`DocumentStore`]) keeps documents in an object store
//!    (a local directory by default) under [`agreement_key`]s.

pub mod error;
pub mod params;
pub mod pdf;
pub mod store;
pub mod templates;

use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior, Value};
use sha2::{Digest, Sha256};

pub use error::Error;
pub use params::{Client, ContractParams, Lender, Offer, ScheduleRow};
pub use store::{agreement_key, DocumentStore};
pub use templates::{Templates, LOAN_AGREEMENT, TEMPLATE_SUFFIX};

/// A rendered agreement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The agreement as HTML, for display before signing.
    pub html: String,
    /// The agreement as PDF, the document that is signed and kept.
    pub pdf: Vec<u8>,
    /// SHA-256 of `pdf`, lowercase hexadecimal.
    pub sha256: String,
}

/// Renders agreements from a set of templates.
pub struct Agreements {
    env: Environment<'static>,
    fonts: pdf::Fonts,
}

impl std::fmt::Debug for Agreements {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agreements")
            .field(
                "templates",
                &self
                    .env
                    .templates()
                    .map(|(name, _)| name)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Agreements {
    /// Compiles every template of the set; a template with a syntax error is
    /// refused here, naming it, rather than when a client is waiting.
    pub fn new(templates: Templates) -> Result<Self, Error> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        env.add_filter("ru_date", ru_date);
        for (name, source) in templates.into_sources() {
            env.add_template_owned(name.clone(), source)
                .map_err(|err| Error::TemplateInvalid {
                    name,
                    message: describe(&err),
                })?;
        }
        Ok(Self {
            env,
            fonts: pdf::Fonts::load()?,
        })
    }

    /// Agreements from the built-in templates.
    pub fn builtin() -> Result<Self, Error> {
        Self::new(Templates::builtin())
    }

    /// Renders `template` with `params` to HTML only.
    pub fn render_html(&self, template: &str, params: &ContractParams) -> Result<String, Error> {
        let compiled = self.env.get_template(template).map_err(|err| {
            if err.kind() == ErrorKind::TemplateNotFound {
                Error::TemplateNotFound(template.to_owned())
            } else {
                Error::Render {
                    template: template.to_owned(),
                    message: describe(&err),
                }
            }
        })?;
        compiled
            .render(Value::from(Serde(params)))
            .map_err(|err| render_error(template, &err))
    }

    /// Renders `template` with `params` to HTML and PDF and hashes the PDF.
    pub fn render(&self, template: &str, params: &ContractParams) -> Result<Rendered, Error> {
        let html = self.render_html(template, params)?;
        let pdf = pdf::html_to_pdf(&html, &self.fonts)?;
        let sha256 = sha256_hex(&pdf);
        Ok(Rendered { html, pdf, sha256 })
    }
}

/// Lowercase hexadecimal SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Whether `pdf` is the document whose SHA-256 is `expected_sha256`
/// (hexadecimal, either case).
pub fn verify_hash(pdf: &[u8], expected_sha256: &str) -> bool {
    sha256_hex(pdf).eq_ignore_ascii_case(expected_sha256.trim())
}

/// Template filter `ru_date`: an ISO date (`2026-03-15`) as printed in
/// Russian documents (`15.03.2026`); anything else is a render error.
fn ru_date(value: &str) -> Result<String, minijinja::Error> {
    let bytes = value.as_bytes();
    let is_iso = bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !is_iso {
        return Err(minijinja::Error::new(
            ErrorKind::InvalidOperation,
            format!("`{value}` is not an ISO date (YYYY-MM-DD)"),
        ));
    }
    Ok(format!(
        "{}.{}.{}",
        &value[8..10],
        &value[5..7],
        &value[..4]
    ))
}

fn render_error(template: &str, err: &minijinja::Error) -> Error {
    let template = err.name().unwrap_or(template).to_owned();
    if err.kind() == ErrorKind::UndefinedError {
        if let Some(variable) = undefined_variable(err) {
            return Error::MissingParameter { template, variable };
        }
    }
    Error::Render {
        template,
        message: describe(err),
    }
}

/// The undefined expression of an undefined-value error: the engine reports
/// it as "`client.middle_name` is undefined"; failing that, the source text
/// the error points at.
fn undefined_variable(err: &minijinja::Error) -> Option<String> {
    let from_detail = err.detail().and_then(|detail| {
        let rest = detail.strip_prefix('`')?;
        let end = rest.find('`')?;
        Some(rest[..end].to_owned())
    });
    from_detail
        .or_else(|| {
            let source = err.template_source()?;
            let range = err.range()?;
            source.get(range).map(|text| text.trim().to_owned())
        })
        .filter(|name| !name.is_empty())
}

fn describe(err: &minijinja::Error) -> String {
    match (err.name(), err.line()) {
        (Some(name), Some(line)) => format!("{} ({name}, line {line})", err_text(err)),
        _ => err_text(err),
    }
}

fn err_text(err: &minijinja::Error) -> String {
    match err.detail() {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    }
}
