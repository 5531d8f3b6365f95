//! The registry's state in Postgres (tables `schema_registry_schemas`, `schema_registry_versions`,
//! `schema_registry_config`) and the operations behind every endpoint.
//!
//! Writes to a subject (register, delete) run in one transaction holding a transaction-scoped
//! advisory lock on the subject, so two concurrent registrations under one subject are serialized:
//! the second one sees the first one's version and either reuses it (same schema) or is checked
//! against it and gets the next version number. The primary key `(subject, version)` backs this up.

use std::collections::HashSet;
use std::str::FromStr;

use apache_avro::Schema;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};

use super::compat::{self, CompatibilityLevel};
use super::error::RegistryError;
use super::schema::{self, ParsedSchema};

/// First key of the two-key advisory locks taken on subjects ("SR"); the second key is
/// `hashtext(subject)`. Two-key locks never collide with the single-bigint locks of other modules.
const LOCK_NAMESPACE: i32 = 0x5352;

/// Longest accepted subject, in bytes (index entries must stay well below Postgres' limit).
const MAX_SUBJECT_BYTES: usize = 1024;

/// How many schemas one schema may import, transitively.
const MAX_REFERENCES: usize = 256;

/// A schema imported by another one: the Avro full name it is imported by, and where it is
/// registered. `version` -1 in a request means "the latest version"; stored references always
/// carry the concrete version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SchemaReference {
    pub name: String,
    pub subject: String,
    pub version: i32,
}

/// What a client submits to register, look up or check a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaSubmission {
    /// The schema text (Avro JSON).
    pub schema: String,
    /// `AVRO` or absent; other types are refused with 42201.
    pub schema_type: Option<String>,
    /// Schemas this one imports.
    pub references: Vec<SchemaReference>,
}

impl SchemaSubmission {
    /// An Avro schema without references.
    pub fn avro(schema: impl Into<String>) -> SchemaSubmission {
        SchemaSubmission {
            schema: schema.into(),
            schema_type: None,
            references: Vec::new(),
        }
    }
}

/// One version of a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectVersion {
    pub subject: String,
    pub version: i32,
    /// The global schema id.
    pub id: i32,
    pub schema_type: String,
    /// The schema text as registered.
    pub schema: String,
    pub references: Vec<SchemaReference>,
    /// Soft-deleted (only returned when deleted versions were asked for).
    pub deleted: bool,
}

/// A schema by its global id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSchema {
    pub id: i32,
    pub schema_type: String,
    pub schema: String,
    pub references: Vec<SchemaReference>,
}

/// Which version of a subject a request means: a number, or `latest` (also spelled `-1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSelector {
    Latest,
    Number(i32),
}

impl VersionSelector {
    fn number(self) -> Option<i32> {
        match self {
            VersionSelector::Latest => None,
            VersionSelector::Number(n) => Some(n),
        }
    }
}

impl FromStr for VersionSelector {
    type Err = RegistryError;

    /// `latest`, `-1`, or 1..=2^31-1; anything else is a 42202.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("latest") {
            return Ok(VersionSelector::Latest);
        }
        match s.parse::<i32>() {
            Ok(-1) => Ok(VersionSelector::Latest),
            Ok(n) if n >= 1 => Ok(VersionSelector::Number(n)),
            _ => Err(RegistryError::InvalidVersion(s.to_owned())),
        }
    }
}

/// Refuses subjects that are empty, over-long or contain control characters (42208).
pub(crate) fn validate_subject(subject: &str) -> Result<(), RegistryError> {
    if subject.trim().is_empty() {
        return Err(RegistryError::InvalidSubject("empty subject".to_owned()));
    }
    if subject.len() > MAX_SUBJECT_BYTES {
        return Err(RegistryError::InvalidSubject(format!(
            "subject longer than {MAX_SUBJECT_BYTES} bytes"
        )));
    }
    if subject.chars().any(char::is_control) {
        return Err(RegistryError::InvalidSubject(
            "subject contains control characters".to_owned(),
        ));
    }
    Ok(())
}

type VersionRow = (i32, i32, bool, String, String, Json<Vec<SchemaReference>>);

fn to_subject_version(subject: &str, row: VersionRow) -> SubjectVersion {
    let (version, id, deleted, schema_type, schema, Json(references)) = row;
    SubjectVersion {
        subject: subject.to_owned(),
        version,
        id,
        schema_type,
        schema,
        references,
        deleted,
    }
}

/// The Postgres-backed registry. Cheap to clone (it holds a pool).
#[derive(Debug, Clone)]
pub struct Registry {
    pool: PgPool,
}

impl Registry {
    /// A registry on `pool`; the tables come from the crate's migrations.
    pub fn new(pool: PgPool) -> Registry {
        Registry { pool }
    }

    /// Registers `submission` under `subject` and returns its global id.
    ///
    /// - Already a live version of the subject: the existing id, nothing changes.
    /// - Otherwise it must satisfy the subject's compatibility level against the live versions
    ///   (409 if not); it then becomes the next version. The same schema already registered under
    ///   another subject keeps its id; a new schema gets a new id.
    pub async fn register(
        &self,
        subject: &str,
        submission: &SchemaSubmission,
    ) -> Result<i32, RegistryError> {
        validate_subject(subject)?;
        let schema_type = schema::schema_type(submission.schema_type.as_deref())?;
        let mut tx = self.pool.begin().await?;
        lock_subject(&mut tx, subject).await?;
        let (references, parsed) = parse_submission(&mut tx, submission).await?;

        if let Some(id) = live_version_of(&mut tx, subject, schema_type, &parsed)
            .await?
            .map(|v| v.1)
        {
            tx.commit().await?;
            return Ok(id);
        }

        let level = effective_compatibility(&mut tx, subject).await?;
        if level != CompatibilityLevel::None {
            let previous = previous_schemas(&mut tx, subject, level.is_transitive()).await?;
            let messages = compat::check(level, &parsed.resolved, &previous);
            if !messages.is_empty() {
                return Err(RegistryError::Incompatible {
                    subject: subject.to_owned(),
                    messages,
                });
            }
        }

        let id = schema_id_for(
            &mut tx,
            schema_type,
            &submission.schema,
            &parsed,
            &references,
        )
        .await?;
        let next: i32 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM schema_registry_versions WHERE subject = $1",
        )
        .bind(subject)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO schema_registry_versions (subject, version, schema_id) VALUES ($1, $2, $3)",
        )
        .bind(subject)
        .bind(next)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(subject, version = next, id, "schema registered");
        Ok(id)
    }

    /// The version of `subject` holding exactly this schema: 40401 when the subject has no
    /// (visible) versions, 40403 when none of them is this schema.
    pub async fn lookup(
        &self,
        subject: &str,
        submission: &SchemaSubmission,
        include_deleted: bool,
    ) -> Result<SubjectVersion, RegistryError> {
        validate_subject(subject)?;
        let mut conn = self.pool.acquire().await?;
        ensure_subject(&mut conn, subject, include_deleted).await?;
        let schema_type = schema::schema_type(submission.schema_type.as_deref())?;
        let (_, parsed) = parse_submission(&mut conn, submission).await?;
        let row: Option<VersionRow> = sqlx::query_as(
            "SELECT v.version, v.schema_id, v.deleted, s.schema_type, s.schema_text, s.refs
               FROM schema_registry_versions v
               JOIN schema_registry_schemas s ON s.id = v.schema_id
              WHERE v.subject = $1 AND ($2 OR NOT v.deleted)
                AND s.schema_type = $3 AND s.fingerprint = $4
              ORDER BY v.deleted, v.version
              LIMIT 1",
        )
        .bind(subject)
        .bind(include_deleted)
        .bind(schema_type)
        .bind(&parsed.fingerprint)
        .fetch_optional(&mut *conn)
        .await?;
        row.map(|r| to_subject_version(subject, r))
            .ok_or_else(|| RegistryError::SchemaNotFound("Schema not found".to_owned()))
    }

    /// The schema with global id `id`. Soft-deleted versions do not hide it (consumers must
    /// still decode old messages); only when every version using it was permanently deleted
    /// is it gone (40403).
    pub async fn schema_by_id(&self, id: i32) -> Result<StoredSchema, RegistryError> {
        let row: Option<(String, String, Json<Vec<SchemaReference>>)> = sqlx::query_as(
            "SELECT s.schema_type, s.schema_text, s.refs
               FROM schema_registry_schemas s
              WHERE s.id = $1
                AND EXISTS (SELECT 1 FROM schema_registry_versions v WHERE v.schema_id = s.id)",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let (schema_type, schema, Json(references)) = row.ok_or_else(|| schema_not_found(id))?;
        Ok(StoredSchema {
            id,
            schema_type,
            schema,
            references,
        })
    }

    /// Subjects having a version with schema `id` (soft-deleted ones only if asked), sorted.
    pub async fn subjects_for_id(
        &self,
        id: i32,
        include_deleted: bool,
    ) -> Result<Vec<String>, RegistryError> {
        let subjects: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT subject FROM schema_registry_versions
              WHERE schema_id = $1 AND ($2 OR NOT deleted) ORDER BY subject",
        )
        .bind(id)
        .bind(include_deleted)
        .fetch_all(&self.pool)
        .await?;
        if subjects.is_empty() {
            return Err(schema_not_found(id));
        }
        Ok(subjects)
    }

    /// `(subject, version)` pairs holding schema `id`, sorted.
    pub async fn versions_for_id(
        &self,
        id: i32,
        include_deleted: bool,
    ) -> Result<Vec<(String, i32)>, RegistryError> {
        let rows: Vec<(String, i32)> = sqlx::query_as(
            "SELECT subject, version FROM schema_registry_versions
              WHERE schema_id = $1 AND ($2 OR NOT deleted) ORDER BY subject, version",
        )
        .bind(id)
        .bind(include_deleted)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            return Err(schema_not_found(id));
        }
        Ok(rows)
    }

    /// Every subject with at least one live version (or any version if `include_deleted`), sorted.
    pub async fn subjects(&self, include_deleted: bool) -> Result<Vec<String>, RegistryError> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT subject FROM schema_registry_versions
              WHERE $1 OR NOT deleted ORDER BY subject",
        )
        .bind(include_deleted)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The version numbers of `subject`, ascending; 40401 when there are none.
    pub async fn versions(
        &self,
        subject: &str,
        include_deleted: bool,
    ) -> Result<Vec<i32>, RegistryError> {
        validate_subject(subject)?;
        let versions: Vec<i32> = sqlx::query_scalar(
            "SELECT version FROM schema_registry_versions
              WHERE subject = $1 AND ($2 OR NOT deleted) ORDER BY version",
        )
        .bind(subject)
        .bind(include_deleted)
        .fetch_all(&self.pool)
        .await?;
        if versions.is_empty() {
            return Err(RegistryError::SubjectNotFound(subject.to_owned()));
        }
        Ok(versions)
    }

    /// One version of `subject` (`latest` = highest live one). 40401 when the subject has no
    /// visible versions, 40402 when it has but not this one.
    pub async fn version(
        &self,
        subject: &str,
        selector: VersionSelector,
        include_deleted: bool,
    ) -> Result<SubjectVersion, RegistryError> {
        validate_subject(subject)?;
        let mut conn = self.pool.acquire().await?;
        fetch_version(&mut conn, subject, selector, include_deleted).await
    }

    /// Whether `submission` could be registered under `subject` as far as compatibility goes,
    /// as a list of problems (empty = compatible). With a version number, only that version is
    /// checked; with `latest` or no version, the live versions the subject's level asks for.
    /// A subject without versions accepts anything.
    pub async fn test_compatibility(
        &self,
        subject: &str,
        selector: Option<VersionSelector>,
        submission: &SchemaSubmission,
    ) -> Result<Vec<String>, RegistryError> {
        validate_subject(subject)?;
        schema::schema_type(submission.schema_type.as_deref())?;
        let mut conn = self.pool.acquire().await?;
        let (_, parsed) = parse_submission(&mut conn, submission).await?;
        let level = effective_compatibility(&mut conn, subject).await?;
        let previous = match selector {
            Some(VersionSelector::Number(n)) => {
                let one =
                    fetch_version(&mut conn, subject, VersionSelector::Number(n), false).await?;
                let schema = parse_stored(&mut conn, &one.schema, &one.references).await?;
                vec![(one.version, schema)]
            }
            Some(VersionSelector::Latest) | None => {
                previous_schemas(&mut conn, subject, level.is_transitive()).await?
            }
        };
        Ok(compat::check(level, &parsed.resolved, &previous))
    }

    /// The global compatibility level (BACKWARD unless changed).
    pub async fn global_compatibility(&self) -> Result<CompatibilityLevel, RegistryError> {
        let mut conn = self.pool.acquire().await?;
        Ok(configured(&mut conn, "")
            .await?
            .unwrap_or(CompatibilityLevel::Backward))
    }

    /// Sets the global compatibility level; subjects without their own level follow it.
    pub async fn set_global_compatibility(
        &self,
        level: CompatibilityLevel,
    ) -> Result<(), RegistryError> {
        upsert_config(&self.pool, "", level).await
    }

    /// The level configured for `subject` itself, if any.
    pub async fn subject_compatibility(
        &self,
        subject: &str,
    ) -> Result<Option<CompatibilityLevel>, RegistryError> {
        validate_subject(subject)?;
        let mut conn = self.pool.acquire().await?;
        configured(&mut conn, subject).await
    }

    /// Gives `subject` its own level (the subject need not have versions yet).
    pub async fn set_subject_compatibility(
        &self,
        subject: &str,
        level: CompatibilityLevel,
    ) -> Result<(), RegistryError> {
        validate_subject(subject)?;
        upsert_config(&self.pool, subject, level).await
    }

    /// Removes the subject's own level (it follows the global one again) and returns it;
    /// 40408 when it had none.
    pub async fn delete_subject_compatibility(
        &self,
        subject: &str,
    ) -> Result<CompatibilityLevel, RegistryError> {
        validate_subject(subject)?;
        let old: Option<String> = sqlx::query_scalar(
            "DELETE FROM schema_registry_config WHERE subject = $1 RETURNING compatibility",
        )
        .bind(subject)
        .fetch_optional(&self.pool)
        .await?;
        match old {
            Some(level) => level.parse(),
            None => Err(RegistryError::SubjectConfigNotFound(subject.to_owned())),
        }
    }

    /// The level that applies to `subject`: its own, else the global one.
    pub async fn effective_compatibility(
        &self,
        subject: &str,
    ) -> Result<CompatibilityLevel, RegistryError> {
        validate_subject(subject)?;
        let mut conn = self.pool.acquire().await?;
        effective_compatibility(&mut conn, subject).await
    }

    /// Deletes a subject and returns the versions deleted.
    ///
    /// Soft (default): live versions are marked deleted; their ids stay resolvable and the
    /// version numbers are not reused. 40404 if already soft-deleted.
    /// Permanent: only after a soft delete (40405 otherwise); removes the versions and the
    /// subject's own compatibility level. Schema ids are never reused.
    pub async fn delete_subject(
        &self,
        subject: &str,
        permanent: bool,
    ) -> Result<Vec<i32>, RegistryError> {
        validate_subject(subject)?;
        let mut tx = self.pool.begin().await?;
        lock_subject(&mut tx, subject).await?;
        let rows: Vec<(i32, bool)> = sqlx::query_as(
            "SELECT version, deleted FROM schema_registry_versions
              WHERE subject = $1 ORDER BY version",
        )
        .bind(subject)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Err(RegistryError::SubjectNotFound(subject.to_owned()));
        }
        let live: Vec<i32> = rows.iter().filter(|r| !r.1).map(|r| r.0).collect();
        let deleted = if permanent {
            if !live.is_empty() {
                return Err(RegistryError::SubjectNotSoftDeleted(subject.to_owned()));
            }
            sqlx::query("DELETE FROM schema_registry_versions WHERE subject = $1")
                .bind(subject)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM schema_registry_config WHERE subject = $1")
                .bind(subject)
                .execute(&mut *tx)
                .await?;
            rows.into_iter().map(|r| r.0).collect()
        } else {
            if live.is_empty() {
                return Err(RegistryError::SubjectSoftDeleted(subject.to_owned()));
            }
            sqlx::query(
                "UPDATE schema_registry_versions SET deleted = true
                  WHERE subject = $1 AND NOT deleted",
            )
            .bind(subject)
            .execute(&mut *tx)
            .await?;
            live
        };
        tx.commit().await?;
        tracing::info!(subject, permanent, ?deleted, "subject deleted");
        Ok(deleted)
    }

    /// Deletes one version (soft by default; permanent only after a soft delete) and returns
    /// its number. `latest` is the highest live version (for a permanent delete: the highest).
    pub async fn delete_version(
        &self,
        subject: &str,
        selector: VersionSelector,
        permanent: bool,
    ) -> Result<i32, RegistryError> {
        validate_subject(subject)?;
        let mut tx = self.pool.begin().await?;
        lock_subject(&mut tx, subject).await?;
        ensure_subject(&mut tx, subject, true).await?;
        let row: Option<(i32, bool)> = sqlx::query_as(
            "SELECT version, deleted FROM schema_registry_versions
              WHERE subject = $1 AND ($2 OR NOT deleted)
                AND ($3::integer IS NULL OR version = $3)
              ORDER BY version DESC LIMIT 1",
        )
        .bind(subject)
        .bind(permanent || selector != VersionSelector::Latest)
        .bind(selector.number())
        .fetch_optional(&mut *tx)
        .await?;
        let (version, deleted) = row.ok_or_else(|| version_not_found(subject, selector))?;
        match (permanent, deleted) {
            (false, true) => {
                return Err(RegistryError::VersionSoftDeleted {
                    subject: subject.to_owned(),
                    version,
                })
            }
            (true, false) => {
                return Err(RegistryError::VersionNotSoftDeleted {
                    subject: subject.to_owned(),
                    version,
                })
            }
            (false, false) => {
                sqlx::query(
                    "UPDATE schema_registry_versions SET deleted = true
                      WHERE subject = $1 AND version = $2",
                )
                .bind(subject)
                .bind(version)
                .execute(&mut *tx)
                .await?;
            }
            (true, true) => {
                sqlx::query(
                    "DELETE FROM schema_registry_versions WHERE subject = $1 AND version = $2",
                )
                .bind(subject)
                .bind(version)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        tracing::info!(subject, version, permanent, "version deleted");
        Ok(version)
    }
}

async fn fetch_version(
    conn: &mut PgConnection,
    subject: &str,
    selector: VersionSelector,
    include_deleted: bool,
) -> Result<SubjectVersion, RegistryError> {
    let row: Option<VersionRow> = sqlx::query_as(
        "SELECT v.version, v.schema_id, v.deleted, s.schema_type, s.schema_text, s.refs
           FROM schema_registry_versions v
           JOIN schema_registry_schemas s ON s.id = v.schema_id
          WHERE v.subject = $1 AND ($2 OR NOT v.deleted)
            AND ($3::integer IS NULL OR v.version = $3)
          ORDER BY v.version DESC
          LIMIT 1",
    )
    .bind(subject)
    .bind(include_deleted)
    .bind(selector.number())
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(row) => Ok(to_subject_version(subject, row)),
        None => {
            ensure_subject(conn, subject, include_deleted).await?;
            Err(version_not_found(subject, selector))
        }
    }
}

fn schema_not_found(id: i32) -> RegistryError {
    RegistryError::SchemaNotFound(format!("Schema {id} not found"))
}

fn version_not_found(subject: &str, selector: VersionSelector) -> RegistryError {
    RegistryError::VersionNotFound {
        subject: subject.to_owned(),
        version: match selector {
            VersionSelector::Latest => "latest".to_owned(),
            VersionSelector::Number(n) => n.to_string(),
        },
    }
}

async fn lock_subject(conn: &mut PgConnection, subject: &str) -> Result<(), RegistryError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(LOCK_NAMESPACE)
        .bind(subject)
        .execute(conn)
        .await?;
    Ok(())
}

/// 40401 unless `subject` has a version (a live one unless `include_deleted`).
async fn ensure_subject(
    conn: &mut PgConnection,
    subject: &str,
    include_deleted: bool,
) -> Result<(), RegistryError> {
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM schema_registry_versions
                         WHERE subject = $1 AND ($2 OR NOT deleted))",
    )
    .bind(subject)
    .bind(include_deleted)
    .fetch_one(conn)
    .await?;
    if exists {
        Ok(())
    } else {
        Err(RegistryError::SubjectNotFound(subject.to_owned()))
    }
}

/// Resolves the submission's references to concrete versions and parses it with the texts of
/// everything it imports. Unknown references are a 42201, like an unknown type name.
async fn parse_submission(
    conn: &mut PgConnection,
    submission: &SchemaSubmission,
) -> Result<(Vec<SchemaReference>, ParsedSchema), RegistryError> {
    let mut references = Vec::with_capacity(submission.references.len());
    for r in &submission.references {
        if r.name.trim().is_empty() {
            return Err(RegistryError::InvalidSchema(
                "a reference has an empty name".to_owned(),
            ));
        }
        validate_subject(&r.subject)
            .map_err(|e| RegistryError::InvalidSchema(format!("reference '{}': {e}", r.name)))?;
        let version = match r.version {
            -1 => {
                let latest: Option<i32> = sqlx::query_scalar(
                    "SELECT MAX(version) FROM schema_registry_versions
                      WHERE subject = $1 AND NOT deleted",
                )
                .bind(&r.subject)
                .fetch_one(&mut *conn)
                .await?;
                latest.ok_or_else(|| missing_reference(r))?
            }
            n if n >= 1 => n,
            _ => return Err(missing_reference(r)),
        };
        references.push(SchemaReference {
            name: r.name.clone(),
            subject: r.subject.clone(),
            version,
        });
    }
    let referenced = referenced_texts(conn, &references).await?;
    let parsed = schema::parse(&submission.schema, &referenced, &references)?;
    Ok((references, parsed))
}

fn missing_reference(r: &SchemaReference) -> RegistryError {
    RegistryError::InvalidSchema(format!(
        "reference '{}' to subject '{}' version {} not found",
        r.name, r.subject, r.version
    ))
}

/// The texts of every schema reachable through `references` (each once, cycles cut).
/// Soft-deleted versions still resolve, so existing schemas keep parsing.
async fn referenced_texts(
    conn: &mut PgConnection,
    references: &[SchemaReference],
) -> Result<Vec<String>, RegistryError> {
    let mut pending: Vec<SchemaReference> = references.iter().rev().cloned().collect();
    let mut seen: HashSet<(String, i32)> = HashSet::new();
    let mut texts = Vec::new();
    while let Some(r) = pending.pop() {
        if !seen.insert((r.subject.clone(), r.version)) {
            continue;
        }
        if seen.len() > MAX_REFERENCES {
            return Err(RegistryError::InvalidSchema(format!(
                "more than {MAX_REFERENCES} referenced schemas"
            )));
        }
        let row: Option<(String, Json<Vec<SchemaReference>>)> = sqlx::query_as(
            "SELECT s.schema_text, s.refs
               FROM schema_registry_versions v
               JOIN schema_registry_schemas s ON s.id = v.schema_id
              WHERE v.subject = $1 AND v.version = $2",
        )
        .bind(&r.subject)
        .bind(r.version)
        .fetch_optional(&mut *conn)
        .await?;
        let (text, Json(nested)) = row.ok_or_else(|| missing_reference(&r))?;
        texts.push(text);
        pending.extend(nested.into_iter().rev());
    }
    Ok(texts)
}

/// Parses a schema already in the store; failing here is an internal error, not the client's.
async fn parse_stored(
    conn: &mut PgConnection,
    text: &str,
    references: &[SchemaReference],
) -> Result<Schema, RegistryError> {
    let referenced = referenced_texts(conn, references).await?;
    schema::parse(text, &referenced, references)
        .map(|p| p.resolved)
        .map_err(|e| RegistryError::Internal(format!("a stored schema no longer parses: {e}")))
}

/// `(version, id)` of the live version of `subject` that is exactly this schema.
async fn live_version_of(
    conn: &mut PgConnection,
    subject: &str,
    schema_type: &str,
    parsed: &ParsedSchema,
) -> Result<Option<(i32, i32)>, RegistryError> {
    Ok(sqlx::query_as(
        "SELECT v.version, v.schema_id
           FROM schema_registry_versions v
           JOIN schema_registry_schemas s ON s.id = v.schema_id
          WHERE v.subject = $1 AND NOT v.deleted
            AND s.schema_type = $2 AND s.fingerprint = $3
          ORDER BY v.version
          LIMIT 1",
    )
    .bind(subject)
    .bind(schema_type)
    .bind(&parsed.fingerprint)
    .fetch_optional(conn)
    .await?)
}

/// The live versions a compatibility check looks at, oldest first: all of them when
/// `transitive`, else only the latest.
async fn previous_schemas(
    conn: &mut PgConnection,
    subject: &str,
    transitive: bool,
) -> Result<Vec<(i32, Schema)>, RegistryError> {
    let rows: Vec<(i32, String, Json<Vec<SchemaReference>>)> = sqlx::query_as(
        "SELECT v.version, s.schema_text, s.refs
           FROM schema_registry_versions v
           JOIN schema_registry_schemas s ON s.id = v.schema_id
          WHERE v.subject = $1 AND NOT v.deleted
          ORDER BY v.version DESC
          LIMIT CASE WHEN $2 THEN NULL ELSE 1 END",
    )
    .bind(subject)
    .bind(transitive)
    .fetch_all(&mut *conn)
    .await?;
    let mut previous = Vec::with_capacity(rows.len());
    for (version, text, Json(references)) in rows.into_iter().rev() {
        previous.push((version, parse_stored(conn, &text, &references).await?));
    }
    Ok(previous)
}

/// The id of this schema: the existing one if any subject already registered it, else a new
/// one. Concurrent first registrations of one schema under different subjects agree on the id
/// (the loser of the unique-key race reads the winner's row).
async fn schema_id_for(
    conn: &mut PgConnection,
    schema_type: &str,
    text: &str,
    parsed: &ParsedSchema,
    references: &[SchemaReference],
) -> Result<i32, RegistryError> {
    let select =
        "SELECT id FROM schema_registry_schemas WHERE schema_type = $1 AND fingerprint = $2";
    let existing: Option<i32> = sqlx::query_scalar(select)
        .bind(schema_type)
        .bind(&parsed.fingerprint)
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(id) = existing {
        return Ok(id);
    }
    let inserted: Option<i32> = sqlx::query_scalar(
        "INSERT INTO schema_registry_schemas (schema_type, schema_text, canonical, fingerprint, refs)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT ON CONSTRAINT schema_registry_schemas_identity DO NOTHING
         RETURNING id",
    )
    .bind(schema_type)
    .bind(text)
    .bind(&parsed.canonical)
    .bind(&parsed.fingerprint)
    .bind(Json(references))
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(id) = inserted {
        return Ok(id);
    }
    sqlx::query_scalar(select)
        .bind(schema_type)
        .bind(&parsed.fingerprint)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| {
            RegistryError::Internal("schema row vanished during registration".to_owned())
        })
}

async fn configured(
    conn: &mut PgConnection,
    subject: &str,
) -> Result<Option<CompatibilityLevel>, RegistryError> {
    let level: Option<String> =
        sqlx::query_scalar("SELECT compatibility FROM schema_registry_config WHERE subject = $1")
            .bind(subject)
            .fetch_optional(conn)
            .await?;
    level.map(|l| l.parse()).transpose()
}

async fn effective_compatibility(
    conn: &mut PgConnection,
    subject: &str,
) -> Result<CompatibilityLevel, RegistryError> {
    if let Some(level) = configured(&mut *conn, subject).await? {
        return Ok(level);
    }
    Ok(configured(conn, "")
        .await?
        .unwrap_or(CompatibilityLevel::Backward))
}

async fn upsert_config(
    pool: &PgPool,
    subject: &str,
    level: CompatibilityLevel,
) -> Result<(), RegistryError> {
    sqlx::query(
        "INSERT INTO schema_registry_config (subject, compatibility) VALUES ($1, $2)
         ON CONFLICT (subject) DO UPDATE
            SET compatibility = EXCLUDED.compatibility, updated_at = now()",
    )
    .bind(subject)
    .bind(level.as_str())
    .execute(pool)
    .await?;
    Ok(())
}
