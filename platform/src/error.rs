//! The crate's one error.

/// Errors of wiring the platform's roles.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database cannot be reached or migrated.
    #[error("Postgres at {url} (is it running?): {source}")]
    Database {
        url: String,
        source: etr_infra::Error,
    },
    /// The broker does not answer within 30 s.
    #[error("the Kafka broker does not answer; `scripts/up` starts the local one: {0}")]
    Broker(etr_infra::Error),
    /// A role's address is taken or not ours.
    #[error("binding {role} on {addr}: {source}")]
    Bind {
        role: &'static str,
        addr: String,
        source: std::io::Error,
    },
    /// The registry refused the event schemas (an incompatible change, or it is down).
    #[error("registering the event schemas: {0}")]
    Schemas(etr_infra::Error),
    /// A URL that names no client (`…/v1/clients/<client id>/…`).
    #[error("not a client URL (…/v1/clients/<client id>/…): {0}")]
    NotClientUrl(String),
    /// A configuration file or value of the platform is wrong.
    #[error("configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Infra(#[from] etr_infra::Error),
    #[error(transparent)]
    Command(#[from] etr_command_api::Error),
    #[error(transparent)]
    Projection(#[from] etr_projections::Error),
    #[error(transparent)]
    Report(#[from] etr_reports::Error),
    #[error("token: {0}")]
    Token(#[from] etr_infra::auth::TokenError),
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}
