//! Keeping documents in an object store.

use etr_documents::{agreement_key, sha256_hex, verify_hash, DocumentStore, Error};
use uuid::Uuid;

async fn round_trip(store: &DocumentStore) -> (String, String) {
    let bytes = b"%PDF-1.7 test document".to_vec();
    let sha256 = sha256_hex(&bytes);
    let application = Uuid::parse_str("7f2c1a9e-3b4d-4c5e-9f60-718293a4b5c6").unwrap();
    let key = agreement_key(application, &sha256);
    assert_eq!(
        key,
        format!("agreements/7f2c1a9e-3b4d-4c5e-9f60-718293a4b5c6/{sha256}.pdf")
    );
    let location = store.put(&key, bytes.clone()).await.unwrap();
    assert!(location.ends_with(&key), "{location}");
    let read = store.get(&key).await.unwrap();
    assert_eq!(read, bytes);
    assert!(verify_hash(&read, &sha256));

    match store.get("agreements/none/missing.pdf").await {
        Err(Error::Storage(object_store::Error::NotFound { .. })) => {}
        other => panic!("expected not found, got {other:?}"),
    }
    (key, location)
}

#[tokio::test]
async fn in_memory_round_trip() {
    let store = DocumentStore::in_memory();
    let (_, location) = round_trip(&store).await;
    assert!(location.starts_with("memory:///agreements/"));
}

#[tokio::test]
async fn local_file_system_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("documents");
    let store = DocumentStore::local(&root).unwrap();
    let (key, location) = round_trip(&store).await;
    let file = root.join(&key);
    assert_eq!(std::fs::read(&file).unwrap(), b"%PDF-1.7 test document");
    assert!(location.starts_with("file://"), "{location}");

    // Another store over the same directory sees the document.
    let reopened = DocumentStore::local(&root).unwrap();
    assert_eq!(reopened.get(&key).await.unwrap(), b"%PDF-1.7 test document");
}

#[tokio::test]
async fn keys_that_are_not_object_paths_are_refused() {
    let store = DocumentStore::in_memory();
    assert!(matches!(
        store.put("agreements/../escape.pdf", b"x".to_vec()).await,
        Err(Error::InvalidKey { .. })
    ));
}
