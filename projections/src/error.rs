//! Errors of the read side.

use etr_infra::avro::DecodeError;

/// Errors of the projections crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error(transparent)]
    Infra(#[from] etr_infra::Error),
    #[error("read model state: {0}")]
    Json(#[from] serde_json::Error),
    #[error("rebuild: {0}")]
    Rebuild(String),
    /// A record of the log that is not an event, with its position so it can be found again.
    #[error("record {topic}/{partition}@{offset}: {source}")]
    Decode {
        topic: String,
        partition: i32,
        offset: i64,
        source: DecodeError,
    },
    /// A dead letter that does not exist (`etr dead-letters retry <id>`).
    #[error("no dead letter with id {0}")]
    NoDeadLetter(i64),
}
