//! The crate's error type.

use std::path::PathBuf;

/// Why a template could not be loaded, an agreement rendered or a document stored.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No template of that name is configured.
    #[error("no contract template named `{0}`")]
    TemplateNotFound(String),

    /// A template does not compile (syntax error).
    #[error("contract template `{name}` is invalid: {message}")]
    TemplateInvalid {
        /// Template name.
        name: String,
        /// What the template engine reported, with the line.
        message: String,
    },

    /// The template directory or one of its files could not be read.
    #[error("cannot read contract templates from {}: {source}", path.display())]
    TemplateDir {
        /// Directory or file that failed.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },

    /// The template prints a parameter the contract parameters do not provide.
    #[error(
        "template `{template}` uses `{variable}`, which the contract parameters do not provide"
    )]
    MissingParameter {
        /// Template in which the reference occurs.
        template: String,
        /// The undefined expression, e.g. `client.middle_name`.
        variable: String,
    },

    /// Rendering the template failed for another reason.
    #[error("rendering template `{template}` failed: {message}")]
    Render {
        /// Template being rendered.
        template: String,
        /// What the template engine reported.
        message: String,
    },

    /// The rendered agreement is not in the markup the PDF layout reads
    /// (well-formed XHTML-style HTML, see the [`pdf`](crate::pdf) module).
    #[error("the rendered agreement cannot be laid out as PDF: {0}")]
    Markup(String),

    /// Producing the PDF failed.
    #[error("PDF generation failed: {0}")]
    Pdf(String),

    /// The document store refused or failed an operation
    /// ([`object_store::Error::NotFound`] for a key that holds nothing).
    #[error("document storage: {0}")]
    Storage(#[from] object_store::Error),

    /// A storage key is not a valid object path.
    #[error("invalid document key `{key}`: {message}")]
    InvalidKey {
        /// The key as given.
        key: String,
        /// Why it was refused.
        message: String,
    },
}
