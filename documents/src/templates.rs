//! Contract templates as configuration.
//!
//! A template is a [MiniJinja](https://docs.rs/minijinja) document producing
//! HTML, named after its file without the `.html.j2` suffix
//! (`loan_agreement.html.j2` is the template `loan_agreement`). The built-in
//! set ships inside the binary; operators override any of them, or add new
//! ones, by placing files of the same name in a directory passed to
//! [`Templates::from_dir`].
//!
//! Parameters are those of [`ContractParams`](crate::ContractParams); a
//! reference to anything else fails the rendering, naming it. Besides
//! MiniJinja's built-in filters, `ru_date` prints an ISO date as `15.03.2026`.
//!
//! The HTML a template produces is also what the PDF is laid out from, so it
//! must stay within the markup described in the [`pdf`](crate::pdf) module.

use std::collections::BTreeMap;
use std::path::Path;

use crate::Error;

/// File-name suffix of template files.
pub const TEMPLATE_SUFFIX: &str = ".html.j2";

/// Name of the built-in consumer-loan agreement template.
pub const LOAN_AGREEMENT: &str = "loan_agreement";

const BUILTIN: &[(&str, &str)] = &[(
    LOAN_AGREEMENT,
    include_str!("../templates/loan_agreement.html.j2"),
)];

/// A set of named template sources.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Templates {
    sources: BTreeMap<String, String>,
}

impl Templates {
    /// An empty set.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The templates shipped with the crate (at least [`LOAN_AGREEMENT`]).
    pub fn builtin() -> Self {
        let sources = BUILTIN
            .iter()
            .map(|(name, source)| ((*name).to_owned(), (*source).to_owned()))
            .collect();
        Self { sources }
    }

    /// The built-in templates, overridden and extended by every
    /// `*.html.j2` file directly inside `dir`.
    ///
    /// Subdirectories and other files are ignored; a file that cannot be read
    /// as UTF-8 is an error rather than skipped, so an operator's broken edit
    /// is noticed at start-up.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self, Error> {
        let mut templates = Self::builtin();
        templates.load_dir(dir.as_ref())?;
        Ok(templates)
    }

    /// Adds or replaces the template `name`.
    pub fn insert(&mut self, name: impl Into<String>, source: impl Into<String>) {
        self.sources.insert(name.into(), source.into());
    }

    /// Names of the templates in the set, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.sources.keys().map(String::as_str)
    }

    /// Source of the template `name`.
    pub fn source(&self, name: &str) -> Option<&str> {
        self.sources.get(name).map(String::as_str)
    }

    pub(crate) fn into_sources(self) -> BTreeMap<String, String> {
        self.sources
    }

    fn load_dir(&mut self, dir: &Path) -> Result<(), Error> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::TemplateDir { path, source }
        };
        for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
            let entry = entry.map_err(io_err(dir))?;
            let path = entry.path();
            let Some(name) = path
                .file_name()
                .and_then(|name| name.to_str())
                .and_then(|name| name.strip_suffix(TEMPLATE_SUFFIX))
            else {
                continue;
            };
            // Follows symbolic links: mounted configuration is often linked.
            if name.is_empty() || !std::fs::metadata(&path).map_err(io_err(&path))?.is_file() {
                continue;
            }
            let source = std::fs::read_to_string(&path).map_err(io_err(&path))?;
            self.sources.insert(name.to_owned(), source);
        }
        Ok(())
    }
}
