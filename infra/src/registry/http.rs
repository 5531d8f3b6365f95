//! The Confluent REST surface over [`Registry`].
//!
//! Requests may be sent as `application/vnd.schemaregistry.v1+json`, `application/json` or
//! without a content type; the body is always read as JSON. Responses are
//! `application/vnd.schemaregistry.v1+json`. Subjects are percent-decoded path segments, so a
//! subject holding a `/` travels as `%2F`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::compat::CompatibilityLevel;
use super::error::RegistryError;
use super::store::{Registry, SchemaReference, SchemaSubmission, SubjectVersion, VersionSelector};

/// The media type Confluent's registry answers with.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

type Result<T, E = RegistryError> = std::result::Result<T, E>;

pub(crate) fn router(registry: Registry) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/schemas/types", get(schema_types))
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/schemas/ids/{id}/schema", get(raw_schema_by_id))
        .route("/schemas/ids/{id}/subjects", get(subjects_by_id))
        .route("/schemas/ids/{id}/versions", get(versions_by_id))
        .route("/subjects", get(list_subjects))
        .route("/subjects/{subject}", post(lookup).delete(delete_subject))
        .route(
            "/subjects/{subject}/versions",
            get(list_versions).post(register),
        )
        .route(
            "/subjects/{subject}/versions/{version}",
            get(get_version).delete(delete_version),
        )
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(raw_version_schema),
        )
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(compatibility_with_subject),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(compatibility_with_version),
        )
        .route("/config", get(get_global_config).put(put_global_config))
        .route(
            "/config/{subject}",
            get(get_subject_config)
                .put(put_subject_config)
                .delete(delete_subject_config),
        )
        .fallback(no_such_endpoint)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(registry)
}

/// A JSON response with the registry media type.
pub(crate) fn registry_json<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => raw(status, bytes),
        Err(e) => {
            tracing::error!(error = %e, "cannot serialize a registry response");
            raw(
                StatusCode::INTERNAL_SERVER_ERROR,
                br#"{"error_code":50001,"message":"cannot serialize the response"}"#.to_vec(),
            )
        }
    }
}

fn raw(status: StatusCode, body: impl Into<axum::body::Body>) -> Response {
    let mut response = (status, body.into()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

fn ok<T: Serialize + ?Sized>(body: &T) -> Response {
    registry_json(StatusCode::OK, body)
}

/// Path parameters; a malformed one is a Confluent-style 400 instead of axum's plain text.
struct SrPath<T>(T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for SrPath<T> {
    type Rejection = RegistryError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| SrPath(t))
            .map_err(|e| RegistryError::BadRequest(e.body_text()))
    }
}

/// The boolean query flags the endpoints understand (`deleted`, `permanent`,
/// `defaultToGlobal`); each is on only when given as `true`. Other parameters are ignored.
#[derive(Debug, Default, Clone, Copy)]
struct Flags {
    deleted: bool,
    permanent: bool,
    default_to_global: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for Flags {
    type Rejection = RegistryError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self> {
        let Query(params) = Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
            .map_err(|e| RegistryError::BadRequest(e.body_text()))?;
        let on = |key: &str| {
            params
                .get(key)
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        };
        Ok(Flags {
            deleted: on("deleted"),
            permanent: on("permanent"),
            default_to_global: on("defaultToGlobal"),
        })
    }
}

/// A JSON body, whatever the content type says.
struct SrBody<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for SrBody<T> {
    type Rejection = RegistryError;

    async fn from_request(req: Request, state: &S) -> Result<Self> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| RegistryError::BadRequest(e.body_text()))?;
        serde_json::from_slice(&bytes)
            .map(SrBody)
            .map_err(|e| RegistryError::BadRequest(format!("invalid JSON body: {e}")))
    }
}

/// Body of register, lookup and compatibility requests.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaRequest {
    schema: Option<String>,
    schema_type: Option<String>,
    references: Option<Vec<SchemaReference>>,
}

impl SchemaRequest {
    fn into_submission(self) -> Result<SchemaSubmission> {
        let schema = self
            .schema
            .ok_or_else(|| RegistryError::InvalidSchema("empty schema".to_owned()))?;
        Ok(SchemaSubmission {
            schema,
            schema_type: self.schema_type,
            references: self.references.unwrap_or_default(),
        })
    }
}

/// Body of `PUT /config`; Confluent calls the field `compatibility`, some clients send
/// `compatibilityLevel`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigRequest {
    #[serde(alias = "compatibilityLevel")]
    compatibility: Option<String>,
}

impl ConfigRequest {
    fn level(self) -> Result<CompatibilityLevel> {
        match self.compatibility {
            Some(level) => level.parse(),
            None => Err(RegistryError::InvalidCompatibilityLevel(String::new())),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VersionResponse<'a> {
    subject: &'a str,
    version: i32,
    id: i32,
    schema_type: &'a str,
    schema: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    references: &'a [SchemaReference],
}

impl<'a> From<&'a SubjectVersion> for VersionResponse<'a> {
    fn from(v: &'a SubjectVersion) -> Self {
        VersionResponse {
            subject: &v.subject,
            version: v.version,
            id: v.id,
            schema_type: &v.schema_type,
            schema: &v.schema,
            references: &v.references,
        }
    }
}

fn parse_id(id: &str) -> Result<i32> {
    id.parse::<i32>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| RegistryError::SchemaNotFound(format!("Schema {id} not found")))
}

async fn root() -> Response {
    ok(&serde_json::json!({}))
}

async fn schema_types() -> Response {
    ok(&["AVRO"])
}

/// `GET /schemas/ids/{id}` → `{"schema", "schemaType", "references"?}`. `?deleted=true` is
/// accepted; soft-deleted schemas are returned either way.
async fn schema_by_id(State(r): State<Registry>, SrPath(id): SrPath<String>) -> Result<Response> {
    let schema = r.schema_by_id(parse_id(&id)?).await?;
    let mut body = serde_json::json!({ "schema": schema.schema, "schemaType": schema.schema_type });
    if !schema.references.is_empty() {
        body["references"] = serde_json::json!(schema.references);
    }
    Ok(ok(&body))
}

/// `GET /schemas/ids/{id}/schema` → the schema text itself.
async fn raw_schema_by_id(
    State(r): State<Registry>,
    SrPath(id): SrPath<String>,
) -> Result<Response> {
    let schema = r.schema_by_id(parse_id(&id)?).await?;
    Ok(raw(StatusCode::OK, schema.schema))
}

async fn subjects_by_id(
    State(r): State<Registry>,
    SrPath(id): SrPath<String>,
    flags: Flags,
) -> Result<Response> {
    Ok(ok(&r
        .subjects_for_id(parse_id(&id)?, flags.deleted)
        .await?))
}

async fn versions_by_id(
    State(r): State<Registry>,
    SrPath(id): SrPath<String>,
    flags: Flags,
) -> Result<Response> {
    let pairs = r.versions_for_id(parse_id(&id)?, flags.deleted).await?;
    let body: Vec<_> = pairs
        .into_iter()
        .map(|(subject, version)| serde_json::json!({ "subject": subject, "version": version }))
        .collect();
    Ok(ok(&body))
}

async fn list_subjects(State(r): State<Registry>, flags: Flags) -> Result<Response> {
    Ok(ok(&r.subjects(flags.deleted).await?))
}

/// `POST /subjects/{subject}/versions` → `{"id": N}`.
async fn register(
    State(r): State<Registry>,
    SrPath(subject): SrPath<String>,
    SrBody(body): SrBody<SchemaRequest>,
) -> Result<Response> {
    let id = r.register(&subject, &body.into_submission()?).await?;
    Ok(ok(&serde_json::json!({ "id": id })))
}

/// `POST /subjects/{subject}` → the version holding this schema.
async fn lookup(
    State(r): State<Registry>,
    SrPath(subject): SrPath<String>,
    flags: Flags,
    SrBody(body): SrBody<SchemaRequest>,
) -> Result<Response> {
    let found = r
        .lookup(&subject, &body.into_submission()?, flags.deleted)
        .await?;
    Ok(ok(&VersionResponse::from(&found)))
}

async fn delete_subject(
    State(r): State<Registry>,
    SrPath(subject): SrPath<String>,
    flags: Flags,
) -> Result<Response> {
    Ok(ok(&r.delete_subject(&subject, flags.permanent).await?))
}

async fn list_versions(
    State(r): State<Registry>,
    SrPath(subject): SrPath<String>,
    flags: Flags,
) -> Result<Response> {
    Ok(ok(&r.versions(&subject, flags.deleted).await?))
}

async fn get_version(
    State(r): State<Registry>,
    SrPath((subject, version)): SrPath<(String, String)>,
    flags: Flags,
) -> Result<Response> {
    let found = r.version(&subject, version.parse()?, flags.deleted).await?;
    Ok(ok(&VersionResponse::from(&found)))
}

async fn delete_version(
    State(r): State<Registry>,
    SrPath((subject, version)): SrPath<(String, String)>,
    flags: Flags,
) -> Result<Response> {
    let deleted = r
        .delete_version(&subject, version.parse()?, flags.permanent)
        .await?;
    Ok(ok(&deleted))
}

async fn raw_version_schema(
    State(r): State<Registry>,
    SrPath((subject, version)): SrPath<(String, String)>,
    flags: Flags,
) -> Result<Response> {
    let found = r.version(&subject, version.parse()?, flags.deleted).await?;
    Ok(raw(StatusCode::OK, found.schema))
}

fn compatibility_response(messages: Vec<String>) -> Response {
    if messages.is_empty() {
        ok(&serde_json::json!({ "is_compatible": true }))
    } else {
        ok(&serde_json::json!({ "is_compatible": false, "messages": messages }))
    }
}

/// `POST /compatibility/subjects/{subject}/versions`: against the versions the subject's
/// level asks for.
async fn compatibility_with_subject(
    State(r): State<Registry>,
    SrPath(subject): SrPath<String>,
    SrBody(body): SrBody<SchemaRequest>,
) -> Result<Response> {
    let messages = r
        .test_compatibility(&subject, None, &body.into_submission()?)
        .await?;
    Ok(compatibility_response(messages))
}

/// `POST /compatibility/subjects/{subject}/versions/{version|latest}`.
async fn compatibility_with_version(
    State(r): State<Registry>,
    SrPath((subject, version)): SrPath<(String, String)>,
    SrBody(body): SrBody<SchemaRequest>,
) -> Result<Response> {
    let selector: VersionSelector = version.parse()?;
    let messages = r
        .test_compatibility(&subject, Some(selector), &body.into_submission()?)
        .await?;
    Ok(compatibility_response(messages))
}

fn level_response(level: CompatibilityLevel) -> Response {
    ok(&serde_json::json!({ "compatibilityLevel": level.as_str() }))
}

async fn get_global_config(State(r): State<Registry>) -> Result<Response> {
    Ok(level_response(r.global_compatibility().await?))
}

async fn put_global_config(
    State(r): State<Registry>,
    SrBody(body): SrBody<ConfigRequest>,
) -> Result<Response> {
    let level = body.level()?;
    r.set_global_compatibility(level).await?;
    Ok(ok(&serde_json::json!({ "compatibility": level.as_str() })))
}

/// `GET /config/{subject}`: the subject's own level; 40408 when it has none, unless
/// `?defaultToGlobal=true` asks for the level that actually applies.
async fn get_subject_config(
    State(r): State<Registry>,
    SrPath(subject): SrPath<String>,
    flags: Flags,
) -> Result<Response> {
    if flags.default_to_global {
        return Ok(level_response(r.effective_compatibility(&subject).await?));
    }
    match r.subject_compatibility(&subject).await? {
        Some(level) => Ok(level_response(level)),
        None => Err(RegistryError::SubjectConfigNotFound(subject)),
    }
}

async fn put_subject_config(
    State(r): State<Registry>,
    SrPath(subject): SrPath<String>,
    SrBody(body): SrBody<ConfigRequest>,
) -> Result<Response> {
    let level = body.level()?;
    r.set_subject_compatibility(&subject, level).await?;
    Ok(ok(&serde_json::json!({ "compatibility": level.as_str() })))
}

async fn delete_subject_config(
    State(r): State<Registry>,
    SrPath(subject): SrPath<String>,
) -> Result<Response> {
    Ok(level_response(
        r.delete_subject_compatibility(&subject).await?,
    ))
}

async fn no_such_endpoint() -> RegistryError {
    RegistryError::NoSuchEndpoint
}

async fn method_not_allowed() -> RegistryError {
    RegistryError::MethodNotAllowed
}
