//! The command handler: routes every command to the writer of its client's partition
//! ([`crate::writer`]), which decides it in order against authoritative state and commits it
//! with the rest of its batch in one Postgres statement.
//!
//! What a caller gets back is the command's [`Outcome`] — the first one, exactly, when the
//! command id was seen before — or an [`Error`] when nothing was committed (the caller may
//! retry with the same id).

use etr_domain::envelope::Envelope;
use etr_domain::ids::partition_of;
use etr_domain::{Actor, AggregateRef, Command, Event, State};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot, Notify};
use uuid::Uuid;

use crate::committer;
use crate::error::Error;
use crate::writer::{PartitionWriter, Request, WriterConfig};

/// Business time for commands; the only place the command side reads a clock.
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// Who and why, for the envelope and idempotency.
#[derive(Debug, Clone)]
pub struct Meta {
    /// The command id: [`etr_domain::ids::client_command_id`] for a request
    /// (`<client id>/<Idempotency-Key>`), [`etr_domain::ids::platform_command_id`] for a step
    /// the platform takes itself; the two namespaces never meet.
    pub command_id: String,
    pub correlation_id: String,
    pub actor: Actor,
    /// Fingerprint of the request, to refuse a reused key with a different request.
    pub request_hash: String,
}

/// The fingerprint of a request: SHA-256 over the method, the route template, every path
/// parameter and the body, each length-prefixed so that no two different requests share it.
pub fn request_fingerprint(method: &str, route: &str, path_params: &[&str], body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    let mut part = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    };
    part(method.as_bytes());
    part(route.as_bytes());
    for p in path_params {
        part(p.as_bytes());
    }
    part(body);
    hex::encode(hasher.finalize())
}

/// A position in the log: readers wait until they have passed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Position {
    pub partition: u32,
    pub sequence: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WrittenEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub aggregate_type: String,
    pub aggregate_id: Uuid,
    pub aggregate_version: u64,
    pub sequence: u64,
}

/// The first outcome of a command, stored with its command record and returned again,
/// unchanged, for a repeated command id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Accepted {
        command_id: String,
        events: Vec<WrittenEvent>,
        /// The log position of the last event written.
        position: Position,
        /// The command's aggregates as the command left them.
        states: Vec<(AggregateRef, State)>,
    },
    Rejected {
        command_id: String,
        code: String,
        message: String,
    },
}

impl Outcome {
    /// The state of one aggregate as the command left it (accepted commands only).
    pub fn state(&self, target: &AggregateRef) -> Option<&State> {
        match self {
            Outcome::Accepted { states, .. } => {
                states.iter().find(|(r, _)| r == target).map(|(_, s)| s)
            }
            Outcome::Rejected { .. } => None,
        }
    }
}

/// What `handle` returns: the outcome and whether it is a replay of an earlier one.
#[derive(Debug, Clone)]
pub struct Handled {
    pub outcome: Outcome,
    pub replayed: bool,
}

/// How the handler's partition writers behave; see [`WriterConfig`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// Identifies this process as a writer; the address other processes forward commands to
    /// (the command API's advertised address). A process restarted with the same id takes
    /// its partitions back at once; another id waits for the lease to expire.
    pub writer_id: String,
    /// How long a lease lasts without renewal.
    pub lease: Duration,
    /// The most commands one batch commits.
    pub max_batch: usize,
    /// Aggregate states kept per partition writer.
    pub cache_capacity: usize,
    /// Commit statements in flight at once, each carrying the batches of several partitions
    /// ([`crate::committer`]).
    pub commit_pipelines: usize,
    /// The most commands one commit statement carries.
    pub max_commit: usize,
    /// The client group catalogue commands are decided under ([`crate::groups`]).
    pub groups: crate::groups::Groups,
}

impl Settings {
    pub fn new(writer_id: impl Into<String>) -> Self {
        Settings {
            writer_id: writer_id.into(),
            lease: Duration::from_secs(5),
            max_batch: 1_000,
            cache_capacity: 50_000,
            commit_pipelines: 2,
            max_commit: 4_000,
            groups: crate::groups::Groups::default(),
        }
    }
}

/// Routes commands to the partition writers of this process (one task per partition).
pub struct Handler {
    pool: PgPool,
    partitions: u32,
    writers: Vec<mpsc::Sender<Request>>,
}

impl Handler {
    /// Starts one writer task per partition and the process's committer. `committed` is
    /// notified after every commit (the relay of the same process listens).
    pub fn new(
        pool: PgPool,
        partitions: u32,
        clock: Arc<dyn Clock>,
        committed: Arc<Notify>,
        settings: Settings,
    ) -> Handler {
        let committer = committer::start(
            pool.clone(),
            committer::Settings {
                pipelines: settings.commit_pipelines,
                max_commands: settings.max_commit,
                lease_secs: settings.lease.as_secs_f64(),
            },
        );
        let writers = (0..partitions)
            .map(|partition| {
                let (tx, rx) = mpsc::channel(settings.max_batch * 4);
                let writer = PartitionWriter::new(WriterConfig {
                    pool: pool.clone(),
                    partition,
                    clock: clock.clone(),
                    committed: committed.clone(),
                    writer_id: settings.writer_id.clone(),
                    lease: settings.lease,
                    max_batch: settings.max_batch,
                    cache_capacity: settings.cache_capacity,
                    committer: committer.clone(),
                    groups: settings.groups.clone(),
                });
                tokio::spawn(writer.run(rx));
                tx
            })
            .collect();
        Handler {
            pool,
            partitions,
            writers,
        }
    }

    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// Creates the partition head rows (idempotent).
    pub async fn prepare(pool: &PgPool, partitions: u32) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO partition_heads (partition, sequence) SELECT p, 0 FROM generate_series(0, $1 - 1) p ON CONFLICT DO NOTHING",
        )
        .bind(i32::try_from(partitions).unwrap_or(i32::MAX))
        .execute(pool)
        .await?;
        Ok(())
    }

    /// Decides and commits one command through its partition's writer.
    ///
    /// Errors: [`Error::IdempotencyKeyReused`] (the id was recorded for another request),
    /// [`Error::NotOwner`] (another process writes the partition; forward or retry),
    /// [`Error::Postgres`] and others (nothing committed for certain; retry with the same id).
    pub async fn handle(&self, meta: Meta, command: Command) -> Result<Handled, Error> {
        let partition = partition_of(command.client_id(), self.partitions);
        let writer = self
            .writers
            .get(partition as usize)
            .ok_or_else(|| Error::Internal(format!("no writer for partition {partition}")))?;
        let (reply, answer) = oneshot::channel();
        writer
            .send(Request {
                meta,
                command,
                reply,
            })
            .await
            .map_err(|_| Error::Internal(format!("writer of partition {partition} stopped")))?;
        answer
            .await
            .map_err(|_| Error::Internal(format!("writer of partition {partition} stopped")))?
    }

    /// The recorded outcome of a command id, if it was decided.
    pub async fn recorded_outcome(&self, command_id: &str) -> Result<Option<Outcome>, Error> {
        let row: Option<serde_json::Value> =
            sqlx::query_scalar("SELECT outcome FROM command_records WHERE command_id = $1")
                .bind(command_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(serde_json::from_value).transpose()?)
    }

    /// The committed state of one aggregate (from the snapshot table; `None` before its first
    /// event). For readers that need the command side's view, such as a request waiting for
    /// a payment's final status.
    pub async fn committed_state(&self, target: AggregateRef) -> Result<Option<State>, Error> {
        let row: Option<serde_json::Value> = sqlx::query_scalar(
            "SELECT state FROM snapshots WHERE aggregate_type = $1 AND aggregate_id = $2",
        )
        .bind(target.kind.as_str())
        .bind(target.id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(serde_json::from_value).transpose()?)
    }

    /// The committed states of every aggregate of one kind of a client (from the snapshot
    /// table), e.g. the wallets a buyer may pay from.
    pub async fn committed_states_of(
        &self,
        client: etr_domain::ClientId,
        kind: etr_domain::AggregateKind,
    ) -> Result<Vec<State>, Error> {
        let rows: Vec<serde_json::Value> = sqlx::query_scalar(
            "SELECT state FROM snapshots WHERE client_id = $1 AND aggregate_type = $2 ORDER BY aggregate_id",
        )
        .bind(client.0)
        .bind(kind.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(serde_json::from_value)
            .collect::<Result<_, _>>()?)
    }
}

/// The chained hash of an event: hex SHA-256 over the previous hash and the canonical JSON of
/// the envelope (without `hash`) and the event ([`etr_domain::envelope::chain_hash`], which
/// the partition writer's decision uses). Auditors recompute it from the log.
pub fn chain_hash(envelope: &Envelope, event: &Event) -> Result<String, Error> {
    Ok(etr_domain::envelope::chain_hash(envelope, event)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recorded outcome is read back for every repeated command id, also when the states it
    /// carries have optional times and dates not set (a payment not reserved, an application
    /// without an expiry): inside the outcome's tagged representation a `null` reaches them
    /// as a unit value.
    #[test]
    fn a_recorded_outcome_reads_back_with_unset_optional_times() {
        let payment = Uuid::from_u128(1);
        let application = Uuid::from_u128(2);
        let outcome = Outcome::Accepted {
            command_id: "client/key".into(),
            events: vec![],
            position: Position {
                partition: 0,
                sequence: 1,
            },
            states: vec![
                (
                    AggregateRef::payment(payment),
                    State::Payment(etr_domain::payment::Payment::default()),
                ),
                (
                    AggregateRef::application(application),
                    State::Application(Box::default()),
                ),
            ],
        };
        let stored = serde_json::to_value(&outcome).expect("an outcome serialises");
        let back: Outcome =
            serde_json::from_value(stored.clone()).unwrap_or_else(|e| panic!("{e}: {stored}"));
        assert_eq!(back, outcome);
    }
}
