//! The envelope every event travels in: who, when, why, where in the log, and the hash chain.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::command::{AggregateKind, Event};
use crate::ids::ClientId;

/// Who caused a command: a client, a partner shop, an operator, or the platform itself
/// (a saga). Stored verbatim on every event for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub kind: String,
    pub id: String,
}

impl Actor {
    pub fn client(id: ClientId) -> Self {
        Actor {
            kind: "client".into(),
            id: id.to_string(),
        }
    }
    pub fn system(name: &str) -> Self {
        Actor {
            kind: "system".into(),
            id: name.into(),
        }
    }
}

/// Metadata of one event. `partition`/`sequence` is the event's position in the log
/// (sequence is dense per partition, assigned at commit); `prev_hash`/`hash` chain the
/// client's events in timeline order (hex SHA-256, the first event chains to 64 zeros).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    pub client_id: ClientId,
    pub aggregate_type: AggregateKind,
    pub aggregate_id: Uuid,
    pub aggregate_version: u64,
    pub partition: u32,
    pub sequence: u64,
    pub command_id: String,
    pub correlation_id: String,
    pub actor: Actor,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub prev_hash: String,
    pub hash: String,
}

/// The hash a client's first event chains to.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The chained hash of an event: hex SHA-256 over the previous hash and the canonical JSON of
/// the envelope (without `hash`) and the event. Auditors recompute it from the log.
///
/// Errors: the envelope or the event does not serialise (never for the platform's types).
pub fn chain_hash(envelope: &Envelope, event: &Event) -> Result<String, serde_json::Error> {
    let mut unhashed = envelope.clone();
    unhashed.hash = String::new();
    let body = serde_json::to_vec(&(&unhashed, event))?;
    let mut hasher = Sha256::new();
    hasher.update(envelope.prev_hash.as_bytes());
    hasher.update(&body);
    Ok(hex::encode(hasher.finalize()))
}
