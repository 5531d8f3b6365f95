/// Errors of the command side. Business refusals are not errors: they are
/// [`crate::handler::Outcome::Rejected`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("serialisation: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Infra(#[from] etr_infra::Error),
    #[error("Idempotency-Key `{0}` was already used for a different request")]
    IdempotencyKeyReused(String),
    /// Another process holds the partition's writer lease (`holder`, its advertised
    /// address, when known). Nothing was written; forward the command there or retry.
    #[error("partition {partition} is written by another process ({})", holder.as_deref().unwrap_or("unknown"))]
    NotOwner {
        partition: u32,
        holder: Option<String>,
    },
    /// The batch could not be committed; nothing of it is visible. Retry with the same id.
    #[error("the command could not be committed: {0}")]
    Unavailable(String),
    #[error("internal: {0}")]
    Internal(String),
    /// Stored configuration (e.g. a client group) that does not parse.
    #[error("configuration: {0}")]
    Config(String),
}
