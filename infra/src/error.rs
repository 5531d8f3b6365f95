/// Errors of the infrastructure layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("schema registry: {0}")]
    SchemaRegistry(String),
    #[error("avro: {0}")]
    Avro(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("personal data of client {0} was erased")]
    Erased(uuid::Uuid),
    /// Encryption of personal data, or the report crypto's keys.
    #[error("crypto: {0}")]
    Crypto(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// A named thing (a watch list, a list entry, a load) does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A request refused before anything was written (a malformed or conflicting value).
    #[error("refused: {0}")]
    Invalid(String),
    /// Dictionaries the domain refused ([`etr_domain::dictionaries::Dictionaries::parse`]):
    /// nothing was written.
    #[error(transparent)]
    Dictionary(#[from] etr_domain::dictionaries::DictionaryError),
    /// Advertising input the domain refused ([`etr_domain::advertising::AdError`]), or a
    /// place, campaign or banner that does not exist: nothing was written.
    #[error(transparent)]
    Advertising(#[from] etr_domain::advertising::AdError),
    /// An external system that did not answer (nothing was written).
    #[error("{system} unavailable: {reason}")]
    Unavailable {
        system: &'static str,
        reason: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
