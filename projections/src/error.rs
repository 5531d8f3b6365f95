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
}
