//! Confluent-compatible schema registry endpoint (Postgres-backed).
//!
//! The platform's events are Avro in the Confluent wire format (magic byte 0, 4-byte schema id,
//! Avro body), so producers and consumers need a registry that hands out schema ids. In the
//! default run this module is that registry; with `SCHEMA_REGISTRY_URL` pointing elsewhere a
//! real Confluent / Apicurio / Karapace registry replaces it and nothing else changes, because
//! this one speaks the same REST API (the part `schema_registry_converter` and the Confluent
//! clients use).
//!
//! Product rules:
//! - **Subjects** follow the TopicRecordName strategy, e.g. `etr.events-etr.wallet.WalletOpened`:
//!   each event type of the topic evolves on its own. A subject is a list of versions 1, 2, ...
//! - **Ids** are global: the same schema (ignoring whitespace and key order, but not defaults or
//!   docs) under two subjects has one id; ids are never reused, not even after a delete.
//!   Registering a schema that is already a live version of the subject returns its id and
//!   creates nothing.
//! - **Compatibility** is enforced on registration; the default level is `BACKWARD` (consumers
//!   on the new schema can read everything written with the latest version, e.g. a new field
//!   needs a default). The level can be changed globally or per subject (`/config`). An
//!   incompatible schema is refused with HTTP 409 and nothing is stored.
//! - **Deletes** are soft by default: the versions disappear from listings, but their ids stay
//!   resolvable so old messages can still be decoded; a permanent delete needs a soft one first.
//! - Only Avro schemas are accepted; references to other subjects' schemas are supported.
//! - Errors use Confluent's body `{"error_code": N, "message": "..."}` (see [`RegistryError`]).
//!
//! Endpoints: `GET /`, `GET /schemas/types`, `GET /schemas/ids/{id}` (+ `/schema`,
//! `/subjects`, `/versions`), `GET /subjects`, `POST|DELETE /subjects/{subject}`,
//! `GET|POST /subjects/{subject}/versions`, `GET|DELETE /subjects/{subject}/versions/{v}`,
//! `GET /subjects/{subject}/versions/{v}/schema`, `POST /compatibility/subjects/{subject}/versions`
//! (+ `/{v}`), `GET|PUT /config`, `GET|PUT|DELETE /config/{subject}`.

mod compat;
mod error;
mod http;
mod schema;
mod store;

use sqlx::PgPool;

pub use compat::CompatibilityLevel;
pub use error::RegistryError;
pub use http::CONTENT_TYPE;
pub use store::{
    Registry, SchemaReference, SchemaSubmission, StoredSchema, SubjectVersion, VersionSelector,
};

/// The registry's HTTP routes on `pool` (whose database must be migrated with
/// [`crate::pg::MIGRATOR`]). Mount it at the root: Confluent clients expect `/subjects/...`.
pub fn router(pool: PgPool) -> axum::Router {
    http::router(Registry::new(pool))
}

/// Serves the registry on `listener` until the server fails.
pub async fn serve(pool: PgPool, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "schema registry listening");
    }
    axum::serve(listener, router(pool)).await
}
