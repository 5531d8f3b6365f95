//! Registry errors and their Confluent wire form: `{"error_code": N, "message": "..."}` with the
//! HTTP status Confluent clients expect for that code (404 for 404xx, 409, 422 for 422xx, 500
//! for 500xx) — except a failure of Postgres itself, which is answered 503: it is transient
//! (a restart, a lost connection), and registry clients retry a 503 without caching it, where
//! they would keep a 500 as the answer for good.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::http::registry_json;

/// Why the registry refused or failed a request. Every variant maps to one Confluent
/// `error_code`; [`RegistryError::error_code`] and [`RegistryError::status`] give the pair.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// 40401: the subject has no (visible) versions.
    #[error("Subject '{0}' not found.")]
    SubjectNotFound(String),
    /// 40402: the subject exists but not that version.
    #[error("Version {version} not found for subject '{subject}'.")]
    VersionNotFound { subject: String, version: String },
    /// 40403: no such schema id, or the schema is not registered under the subject.
    #[error("{0}")]
    SchemaNotFound(String),
    /// 40404: soft-deleting a subject that is already soft-deleted.
    #[error("Subject '{0}' was soft deleted. Set permanent=true to delete permanently")]
    SubjectSoftDeleted(String),
    /// 40405: a permanent delete of a subject that was not soft-deleted first.
    #[error("Subject '{0}' was not deleted first before being permanently deleted")]
    SubjectNotSoftDeleted(String),
    /// 40406: soft-deleting a version that is already soft-deleted.
    #[error("Subject '{subject}' Version {version} was soft deleted. Set permanent=true to delete permanently")]
    VersionSoftDeleted { subject: String, version: i32 },
    /// 40407: a permanent delete of a version that was not soft-deleted first.
    #[error("Subject '{subject}' Version {version} was not deleted first before being permanently deleted")]
    VersionNotSoftDeleted { subject: String, version: i32 },
    /// 40408: the subject has no compatibility level of its own.
    #[error("Subject '{0}' does not have subject-level compatibility configured")]
    SubjectConfigNotFound(String),
    /// 409: the schema breaks the compatibility level of the subject.
    #[error("Schema being registered is incompatible with an earlier schema for subject '{subject}', details: {}", messages.join("; "))]
    Incompatible {
        subject: String,
        messages: Vec<String>,
    },
    /// 42201: not a valid schema (unparseable, unsupported type, unresolvable reference).
    #[error("Invalid schema: {0}")]
    InvalidSchema(String),
    /// 42202: the version is neither a positive integer, `latest` nor `-1`.
    #[error("The specified version '{0}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"")]
    InvalidVersion(String),
    /// 42203: not one of the seven compatibility levels.
    #[error("Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive (got '{0}')")]
    InvalidCompatibilityLevel(String),
    /// 42208: an empty, over-long or control-character subject.
    #[error("The specified subject is not a valid subject: {0}")]
    InvalidSubject(String),
    /// 400: the body is not the JSON the endpoint expects, or a path/query is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 404 (no such endpoint).
    #[error("HTTP 404 Not Found")]
    NoSuchEndpoint,
    /// 405 (endpoint exists, method does not).
    #[error("HTTP 405 Method Not Allowed")]
    MethodNotAllowed,
    /// 50001 with HTTP 503: Postgres failed (retry later).
    #[error("Error in the backend data store: {0}")]
    Store(#[from] sqlx::Error),
    /// 50001: a stored schema no longer parses, or another internal inconsistency.
    #[error("Error in the backend data store: {0}")]
    Internal(String),
}

impl RegistryError {
    /// The Confluent `error_code` of the body.
    pub fn error_code(&self) -> u32 {
        match self {
            RegistryError::SubjectNotFound(_) => 40401,
            RegistryError::VersionNotFound { .. } => 40402,
            RegistryError::SchemaNotFound(_) => 40403,
            RegistryError::SubjectSoftDeleted(_) => 40404,
            RegistryError::SubjectNotSoftDeleted(_) => 40405,
            RegistryError::VersionSoftDeleted { .. } => 40406,
            RegistryError::VersionNotSoftDeleted { .. } => 40407,
            RegistryError::SubjectConfigNotFound(_) => 40408,
            RegistryError::Incompatible { .. } => 409,
            RegistryError::InvalidSchema(_) => 42201,
            RegistryError::InvalidVersion(_) => 42202,
            RegistryError::InvalidCompatibilityLevel(_) => 42203,
            RegistryError::InvalidSubject(_) => 42208,
            RegistryError::BadRequest(_) => 400,
            RegistryError::NoSuchEndpoint => 404,
            RegistryError::MethodNotAllowed => 405,
            RegistryError::Store(_) | RegistryError::Internal(_) => 50001,
        }
    }

    /// The HTTP status that goes with [`RegistryError::error_code`]; 503 for a failure of
    /// the backend store (see the module's note).
    pub fn status(&self) -> StatusCode {
        if matches!(self, RegistryError::Store(_)) {
            return StatusCode::SERVICE_UNAVAILABLE;
        }
        match self.error_code() {
            400 => StatusCode::BAD_REQUEST,
            404 | 40401..=40499 => StatusCode::NOT_FOUND,
            405 => StatusCode::METHOD_NOT_ALLOWED,
            409 => StatusCode::CONFLICT,
            42201..=42299 => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The incompatibility details of a 409, empty for every other error.
    pub fn messages(&self) -> &[String] {
        match self {
            RegistryError::Incompatible { messages, .. } => messages,
            _ => &[],
        }
    }
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "schema registry request failed");
        }
        // Store errors are logged in full but answered without Postgres internals.
        let message = match &self {
            RegistryError::Store(_) => "Error in the backend data store".to_owned(),
            other => other.to_string(),
        };
        let body = serde_json::json!({ "error_code": self.error_code(), "message": message });
        registry_json(status, &body)
    }
}

impl From<RegistryError> for crate::Error {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Store(e) => crate::Error::Postgres(e),
            other => crate::Error::SchemaRegistry(format!("{} ({})", other, other.error_code())),
        }
    }
}
