/// Errors of the process managers' runner.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("serialisation: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Projections(#[from] etr_projections::Error),
    /// The command side did not take a command (not committed; the step is retried).
    #[error("command not taken: {0}")]
    CommandNotTaken(String),
}
