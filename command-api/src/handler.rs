//! The command handler: load state ▶ decide ▶ commit, in one Postgres transaction per command.
//!
//! The commit writes, atomically: the command record (idempotency), the snapshots of every
//! touched aggregate with an optimistic version check, the client's hash-chain head, the
//! partition's sequence head and the outbox events. A version conflict reloads the states
//! from Postgres and decides again, a bounded number of times.

use etr_domain::command::States;
use etr_domain::envelope::GENESIS_HASH;
use etr_domain::ids::partition_of;
use etr_domain::{decide, evolve, Actor, AggregateRef, Command, Context, Envelope, Event, State};
use moka::future::Cache;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::sync::Arc;
use time::OffsetDateTime;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::error::Error;

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
    /// The command id: the `Idempotency-Key`, or a saga's deterministic id.
    pub command_id: String,
    pub correlation_id: String,
    pub actor: Actor,
    /// Hash of the request, to refuse a reused key with a different request.
    pub request_hash: String,
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

/// The first outcome of a command, returned again for a repeated command id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Accepted {
        command_id: String,
        events: Vec<WrittenEvent>,
        /// The log position of the last event written.
        position: Position,
    },
    Rejected {
        command_id: String,
        code: String,
        message: String,
    },
}

/// What `handle` returns: the outcome, the states after it (for the response), and whether
/// it was a replay of an earlier outcome.
pub struct Handled {
    pub outcome: Outcome,
    pub states: BTreeMap<AggregateRef, State>,
    pub replayed: bool,
}

type Snapshot = Arc<(u64, State)>;

pub struct Handler {
    pool: PgPool,
    partitions: u32,
    cache: Cache<AggregateRef, Snapshot>,
    clock: Arc<dyn Clock>,
    committed: Arc<Notify>,
}

const MAX_ATTEMPTS: usize = 8;

impl Handler {
    pub fn new(
        pool: PgPool,
        partitions: u32,
        clock: Arc<dyn Clock>,
        committed: Arc<Notify>,
    ) -> Handler {
        Handler {
            pool,
            partitions,
            cache: Cache::builder().max_capacity(200_000).build(),
            clock,
            committed,
        }
    }

    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// Creates the partition head rows (idempotent).
    pub async fn prepare(&self) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO partition_heads (partition, sequence) SELECT p, 0 FROM generate_series(0, $1 - 1) p ON CONFLICT DO NOTHING",
        )
        .bind(i32::try_from(self.partitions).unwrap_or(i32::MAX))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Reads the current state of one aggregate (cache, then snapshot table).
    pub async fn load(&self, target: AggregateRef) -> Result<(u64, State), Error> {
        if let Some(s) = self.cache.get(&target).await {
            return Ok((s.0, s.1.clone()));
        }
        let row: Option<(i64, serde_json::Value)> = sqlx::query_as(
            "SELECT version, state FROM snapshots WHERE aggregate_type = $1 AND aggregate_id = $2",
        )
        .bind(target.kind.as_str())
        .bind(target.id)
        .fetch_optional(&self.pool)
        .await?;
        let snap = match row {
            Some((v, json)) => (u64::try_from(v).unwrap_or(0), serde_json::from_value(json)?),
            None => (0, State::initial(target)),
        };
        self.cache.insert(target, Arc::new(snap.clone())).await;
        Ok(snap)
    }

    async fn stored_outcome(
        &self,
        command_id: &str,
        request_hash: &str,
    ) -> Result<Option<Outcome>, Error> {
        let row: Option<(String, serde_json::Value)> = sqlx::query_as(
            "SELECT request_hash, outcome FROM command_records WHERE command_id = $1",
        )
        .bind(command_id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => Ok(None),
            Some((hash, _)) if hash != request_hash => {
                Err(Error::IdempotencyKeyReused(command_id.to_owned()))
            }
            Some((_, outcome)) => Ok(Some(serde_json::from_value(outcome)?)),
        }
    }

    pub async fn handle(&self, meta: &Meta, command: &Command) -> Result<Handled, Error> {
        let targets = command.targets();
        if let Some(outcome) = self
            .stored_outcome(&meta.command_id, &meta.request_hash)
            .await?
        {
            let mut states = BTreeMap::new();
            for t in &targets {
                states.insert(*t, self.load(*t).await?.1);
            }
            return Ok(Handled {
                outcome,
                states,
                replayed: true,
            });
        }
        // Microsecond precision: what the log (Avro timestamp-micros) and Postgres keep, so
        // hashes recomputed from the log match.
        let now = self.clock.now();
        let now = now
            .replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
            .unwrap_or(now);
        let context = Context {
            now,
            actor: meta.actor.clone(),
        };
        for _attempt in 0..MAX_ATTEMPTS {
            let mut loaded: BTreeMap<AggregateRef, (u64, State)> = BTreeMap::new();
            for t in &targets {
                loaded.insert(*t, self.load(*t).await?);
            }
            let states: States = loaded.iter().map(|(k, (_, s))| (*k, s.clone())).collect();
            match decide(&states, command, &context) {
                Err(refusal) => {
                    let outcome = Outcome::Rejected {
                        command_id: meta.command_id.clone(),
                        code: refusal.code().to_owned(),
                        message: refusal.to_string(),
                    };
                    return self.record_rejection(meta, command, outcome, states).await;
                }
                Ok(events) => match self
                    .commit(meta, command, &context, &loaded, events)
                    .await?
                {
                    Commit::Done(outcome, states) => {
                        self.committed.notify_waiters();
                        self.committed.notify_one();
                        return Ok(Handled {
                            outcome,
                            states,
                            replayed: false,
                        });
                    }
                    Commit::Conflict => {
                        for t in &targets {
                            self.cache.invalidate(t).await;
                        }
                    }
                    Commit::Duplicate => {
                        let outcome = self
                            .stored_outcome(&meta.command_id, &meta.request_hash)
                            .await?
                            .ok_or_else(|| Error::Internal("command record vanished".into()))?;
                        return Ok(Handled {
                            outcome,
                            states,
                            replayed: true,
                        });
                    }
                },
            }
        }
        Err(Error::Contention)
    }

    async fn record_rejection(
        &self,
        meta: &Meta,
        command: &Command,
        outcome: Outcome,
        states: States,
    ) -> Result<Handled, Error> {
        let inserted = sqlx::query(
            "INSERT INTO command_records (command_id, client_id, command_type, request_hash, accepted, outcome) VALUES ($1, $2, $3, $4, false, $5) ON CONFLICT DO NOTHING",
        )
        .bind(&meta.command_id)
        .bind(command.client_id().0)
        .bind(command_type(command))
        .bind(&meta.request_hash)
        .bind(serde_json::to_value(&outcome)?)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if inserted == 0 {
            let stored = self
                .stored_outcome(&meta.command_id, &meta.request_hash)
                .await?
                .ok_or_else(|| Error::Internal("command record vanished".into()))?;
            return Ok(Handled {
                outcome: stored,
                states,
                replayed: true,
            });
        }
        Ok(Handled {
            outcome,
            states,
            replayed: false,
        })
    }

    async fn commit(
        &self,
        meta: &Meta,
        command: &Command,
        context: &Context,
        loaded: &BTreeMap<AggregateRef, (u64, State)>,
        events: Vec<(AggregateRef, Event)>,
    ) -> Result<Commit, Error> {
        let client = command.client_id();
        let partition = partition_of(client, self.partitions);
        let mut tx = self.pool.begin().await?;

        // 1. Claim the command id; a concurrent duplicate waits here and then finds it taken.
        let claimed = sqlx::query(
            "INSERT INTO command_records (command_id, client_id, command_type, request_hash, accepted, outcome) VALUES ($1, $2, $3, $4, true, '{}') ON CONFLICT DO NOTHING",
        )
        .bind(&meta.command_id)
        .bind(client.0)
        .bind(command_type(command))
        .bind(&meta.request_hash)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed == 0 {
            tx.rollback().await?;
            return Ok(Commit::Duplicate);
        }

        // 2. New states and versions, then snapshots with the optimistic version check.
        let mut after: BTreeMap<AggregateRef, (u64, State)> = loaded.clone();
        let mut versions = Vec::with_capacity(events.len());
        for (target, event) in &events {
            let entry = after
                .entry(*target)
                .or_insert_with(|| (0, State::initial(*target)));
            let state = std::mem::replace(&mut entry.1, State::initial(*target));
            entry.1 = evolve(state, client, event);
            entry.0 += 1;
            versions.push(entry.0);
        }
        let last_at = context.now;
        for (target, (version, state)) in &after {
            let before = loaded.get(target).map_or(0, |(v, _)| *v);
            if *version == before {
                continue;
            }
            let json = serde_json::to_value(state)?;
            let rows = if before == 0 {
                sqlx::query(
                    "INSERT INTO snapshots (aggregate_type, aggregate_id, client_id, version, state, last_event_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                )
                .bind(target.kind.as_str())
                .bind(target.id)
                .bind(client.0)
                .bind(to_i64(*version))
                .bind(&json)
                .bind(last_at)
                .execute(&mut *tx)
                .await?
                .rows_affected()
            } else {
                sqlx::query(
                    "UPDATE snapshots SET version = $3, state = $4, last_event_at = $5 WHERE aggregate_type = $1 AND aggregate_id = $2 AND version = $6",
                )
                .bind(target.kind.as_str())
                .bind(target.id)
                .bind(to_i64(*version))
                .bind(&json)
                .bind(last_at)
                .bind(to_i64(before))
                .execute(&mut *tx)
                .await?
                .rows_affected()
            };
            if rows == 0 {
                tx.rollback().await?;
                return Ok(Commit::Conflict);
            }
        }

        // 3. The client's hash-chain head.
        let head: Option<(String, i64)> = sqlx::query_as(
            "SELECT head_hash, events FROM client_chain_heads WHERE client_id = $1 FOR UPDATE",
        )
        .bind(client.0)
        .fetch_optional(&mut *tx)
        .await?;
        let (mut prev_hash, chain_len) = head.unwrap_or_else(|| (GENESIS_HASH.to_owned(), 0));

        // 4. Sequence numbers: locking the partition head orders commits within the partition.
        let n = i64::try_from(events.len()).unwrap_or(i64::MAX);
        let last_seq: i64 = sqlx::query_scalar(
            "UPDATE partition_heads SET sequence = sequence + $2 WHERE partition = $1 RETURNING sequence",
        )
        .bind(to_i32(partition))
        .bind(n)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::Internal(format!("partition head {partition} missing")))?;
        let first_seq = u64::try_from(last_seq - n + 1).unwrap_or(1);

        // 5. Envelopes, hashes, outbox rows.
        let mut written = Vec::with_capacity(events.len());
        let (
            mut partitions,
            mut sequences,
            mut ids,
            mut clients,
            mut types,
            mut envelopes,
            mut payloads,
        ) = (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        for (i, ((target, event), version)) in events.iter().zip(&versions).enumerate() {
            let sequence = first_seq + i as u64;
            let event_id = etr_domain::ids::derived_id(
                Uuid::new_v5(&Uuid::NAMESPACE_OID, meta.command_id.as_bytes()),
                &format!("event-{i}"),
            );
            let mut envelope = Envelope {
                event_id,
                event_type: event.name().to_owned(),
                schema_version: etr_schemas::SCHEMA_VERSION,
                client_id: client,
                aggregate_type: target.kind,
                aggregate_id: target.id,
                aggregate_version: *version,
                partition,
                sequence,
                command_id: meta.command_id.clone(),
                correlation_id: meta.correlation_id.clone(),
                actor: meta.actor.clone(),
                occurred_at: context.now,
                prev_hash: prev_hash.clone(),
                hash: String::new(),
            };
            envelope.hash = chain_hash(&envelope, event)?;
            prev_hash = envelope.hash.clone();
            written.push(WrittenEvent {
                event_id,
                event_type: envelope.event_type.clone(),
                aggregate_type: target.kind.as_str().to_owned(),
                aggregate_id: target.id,
                aggregate_version: *version,
                sequence,
            });
            partitions.push(to_i32(partition));
            sequences.push(to_i64(sequence));
            ids.push(event_id);
            clients.push(client.0);
            types.push(envelope.event_type.clone());
            envelopes.push(serde_json::to_value(&envelope)?);
            payloads.push(serde_json::to_value(event)?);
        }
        let outcome = Outcome::Accepted {
            command_id: meta.command_id.clone(),
            events: written,
            position: Position {
                partition,
                sequence: u64::try_from(last_seq).unwrap_or(0),
            },
        };
        // 6. Outbox rows, the chain head and the outcome in one statement (the rows they
        //    touch are already locked or new).
        sqlx::query(
            "WITH written AS (INSERT INTO outbox (partition, sequence, event_id, client_id, event_type, envelope, event) \
               SELECT * FROM UNNEST($1::int[], $2::bigint[], $3::uuid[], $4::uuid[], $5::text[], $6::jsonb[], $7::jsonb[])), \
             chained AS (INSERT INTO client_chain_heads (client_id, head_hash, events) VALUES ($8, $9, $10) \
               ON CONFLICT (client_id) DO UPDATE SET head_hash = EXCLUDED.head_hash, events = EXCLUDED.events) \
             UPDATE command_records SET outcome = $12 WHERE command_id = $11",
        )
        .bind(&partitions)
        .bind(&sequences)
        .bind(&ids)
        .bind(&clients)
        .bind(&types)
        .bind(&envelopes)
        .bind(&payloads)
        .bind(client.0)
        .bind(&prev_hash)
        .bind(chain_len + n)
        .bind(&meta.command_id)
        .bind(serde_json::to_value(&outcome)?)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;

        let mut states = BTreeMap::new();
        for (target, snap) in after {
            states.insert(target, snap.1.clone());
            self.cache.insert(target, Arc::new(snap)).await;
        }
        Ok(Commit::Done(outcome, states))
    }
}

enum Commit {
    Done(Outcome, BTreeMap<AggregateRef, State>),
    Conflict,
    Duplicate,
}

fn command_type(command: &Command) -> &'static str {
    match command {
        Command::OpenWallet { .. } => "OpenWallet",
        Command::TopUpWallet { .. } => "TopUpWallet",
        Command::CloseWallet { .. } => "CloseWallet",
        Command::StartPayment { .. } => "StartPayment",
        Command::ExecutePayment { .. } => "ExecutePayment",
        Command::CancelPayment { .. } => "CancelPayment",
        Command::TransferBetweenWallets { .. } => "TransferBetweenWallets",
        Command::Application { .. } => "Application",
        Command::Loan { .. } => "Loan",
    }
}

/// The chained hash of an event: hex SHA-256 over the previous hash and the canonical JSON of
/// the envelope (without `hash`) and the event. Auditors recompute it from the log.
pub fn chain_hash(envelope: &Envelope, event: &Event) -> Result<String, Error> {
    let mut unhashed = envelope.clone();
    unhashed.hash = String::new();
    let body = serde_json::to_vec(&(&unhashed, event))?;
    let mut hasher = Sha256::new();
    hasher.update(envelope.prev_hash.as_bytes());
    hasher.update(&body);
    Ok(hex::encode(hasher.finalize()))
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}
