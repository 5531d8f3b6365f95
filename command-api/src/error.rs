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
    #[error("too many concurrent changes to the same aggregate; retry")]
    Contention,
    #[error("internal: {0}")]
    Internal(String),
}
