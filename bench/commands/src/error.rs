//! The crate's one error (STYLE §3).

use rust_decimal::Decimal;

use crate::handler::Balances;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error(transparent)]
    Infra(#[from] etr_infra::Error),
    #[error("command handler: {0}")]
    Command(#[from] etr_command_api::Error),
    #[error("projection: {0}")]
    Projection(#[from] etr_projections::Error),
    #[error(transparent)]
    Platform(#[from] etr_platform::Error),
    #[error("peer: {0}")]
    Peer(#[from] etr_peer_bench::Error),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("token: {0}")]
    Token(#[from] etr_infra::auth::TokenError),
    /// The handler refused a command the workload never expects refused (a bug in the plan
    /// or in the platform).
    #[error("{command} {command_id} was refused: {code} ({message})")]
    Refused {
        command: &'static str,
        command_id: String,
        code: String,
        message: String,
    },
    /// The snapshot table does not hold what the callers were told succeeded.
    #[error("{workload}: expected {expected_wallets} wallets holding {expected} in total with no open hold, found {found:?}")]
    Inconsistent {
        workload: String,
        expected_wallets: u64,
        expected: Decimal,
        found: Balances,
    },
    /// A number or a time out of range.
    #[error("out of range: {0}")]
    Range(String),
    /// A caller task panicked.
    #[error("a caller panicked: {0}")]
    Panicked(String),
    /// Bad options.
    #[error("{0}")]
    Invalid(String),
    /// A check of the REST run failed (a position that never reached the topic, a reply
    /// without a position, …).
    #[error("{0}")]
    Failed(String),
    /// What was being done when `source` happened.
    #[error("{context}: {source}")]
    Context { context: String, source: Box<Error> },
}

impl From<std::num::TryFromIntError> for Error {
    fn from(e: std::num::TryFromIntError) -> Self {
        Error::Range(e.to_string())
    }
}

/// `.context("…")` for results whose error converts into [`Error`].
pub(crate) trait Context<T> {
    fn context(self, context: impl Into<String>) -> Result<T, Error>;
}

impl<T, E: Into<Error>> Context<T> for Result<T, E> {
    fn context(self, context: impl Into<String>) -> Result<T, Error> {
        self.map_err(|e| Error::Context {
            context: context.into(),
            source: Box::new(e.into()),
        })
    }
}

/// Fails with [`Error::Failed`] unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err($crate::Error::Failed(format!($($arg)+)));
        }
    };
}

pub(crate) use ensure;
