//! Storage of generated and signed documents.

use std::path::Path;
use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use uuid::Uuid;

use crate::Error;

/// Key under which the agreement of an application is kept:
/// `agreements/<application id>/<sha256>.pdf`.
///
/// Keyed by the document's hash, a re-rendered agreement with other terms
/// never overwrites the one the client signed.
pub fn agreement_key(application_id: Uuid, sha256: &str) -> String {
    format!("agreements/{application_id}/{sha256}.pdf")
}

/// A document store over any [`ObjectStore`]: a local directory by default,
/// memory in tests, or a cloud bucket when the deployment builds one.
#[derive(Debug, Clone)]
pub struct DocumentStore {
    store: Arc<dyn ObjectStore>,
    /// Printed in front of a key to form the location `put` returns.
    location_prefix: String,
}

impl DocumentStore {
    /// Documents as files under `dir`, which is created if missing.
    pub fn local(dir: impl AsRef<Path>) -> Result<Self, Error> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|err| {
            Error::Storage(object_store::Error::Generic {
                store: "LocalFileSystem",
                source: Box::new(err),
            })
        })?;
        let store = LocalFileSystem::new_with_prefix(dir)?;
        let root = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        Ok(Self {
            store: Arc::new(store),
            location_prefix: format!("file://{}/", root.display()),
        })
    }

    /// Documents held in memory, gone when the store is dropped.
    pub fn in_memory() -> Self {
        Self {
            store: Arc::new(InMemory::new()),
            location_prefix: "memory:///".to_owned(),
        }
    }

    /// A store over an already configured object store; `location_prefix`
    /// is put in front of keys to form locations (e.g. `s3://bucket/`).
    pub fn with_store(store: Arc<dyn ObjectStore>, location_prefix: impl Into<String>) -> Self {
        Self {
            store,
            location_prefix: location_prefix.into(),
        }
    }

    /// Stores `bytes` under `key` (replacing what was there) and returns the
    /// document's location.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<String, Error> {
        let path = object_path(key)?;
        self.store.put(&path, PutPayload::from(bytes)).await?;
        Ok(format!("{}{}", self.location_prefix, path))
    }

    /// The bytes stored under `key`; [`Error::Storage`] with
    /// [`object_store::Error::NotFound`] when there are none.
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, Error> {
        let path = object_path(key)?;
        let bytes = self.store.get(&path).await?.bytes().await?;
        Ok(bytes.to_vec())
    }
}

fn object_path(key: &str) -> Result<ObjectPath, Error> {
    ObjectPath::parse(key).map_err(|err| Error::InvalidKey {
        key: key.to_owned(),
        message: err.to_string(),
    })
}
