//! Errors of the read side.

use etr_infra::avro::DecodeError;

use crate::log::Gap;

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
    /// The log ends while a partition still misses a sequence that later events follow.
    #[error("the log ends with a gap: {0}")]
    GapAtEnd(Gap),
    /// More than 100,000 events wait behind missing sequences.
    #[error("too many events held back behind a gap: {0}")]
    TooManyHeld(Gap),
    /// No record arrived for 30 s before the end of what was being read.
    #[error("timed out reading {reading}")]
    Timeout { reading: String },
    /// A record of a partition the topic is not configured with.
    #[error("partition {0} beyond the configured count")]
    UnknownPartition(i32),
    /// The topic has another number of partitions than configured.
    #[error("topic {topic} has {found} partitions, expected {expected} (ETR_PARTITIONS)")]
    PartitionCount {
        topic: String,
        found: usize,
        expected: u32,
    },
    /// An aggregate's events in the log skip or repeat a version.
    #[error("{aggregate} jumps from version {from} to {to}")]
    VersionJump {
        aggregate: String,
        from: u64,
        to: u64,
    },
    /// Committed events the relay has not published yet: the log is short of them.
    #[error("{0} committed events are not published yet; run the relay first")]
    Unpublished(i64),
    /// A number or a duration out of the range it is stored in.
    #[error("out of range: {0}")]
    Range(String),
    /// A task of this crate stopped without an answer (it panicked).
    #[error("{task} stopped: {source}")]
    Task {
        task: &'static str,
        source: tokio::task::JoinError,
    },
}
