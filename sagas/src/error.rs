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
    #[error(transparent)]
    Infra(#[from] etr_infra::Error),
}

/// A runner error inside a tracker's projection transaction, as the projection runtime
/// reports it (Postgres and JSON errors keep their kind; anything else is reported as
/// data that could not be handled).
pub(crate) fn to_projection_error(e: Error) -> etr_projections::Error {
    match e {
        Error::Postgres(e) => etr_projections::Error::from(e),
        Error::Json(e) => etr_projections::Error::from(e),
        Error::Projections(e) => e,
        Error::Infra(etr_infra::Error::Postgres(e)) => etr_projections::Error::from(e),
        other => etr_projections::Error::from(serde_json::Error::io(std::io::Error::other(
            other.to_string(),
        ))),
    }
}
