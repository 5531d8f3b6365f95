//! The partition writer: the one process that writes a partition at a time (DESIGN.md,
//! "Write path v2").
//!
//! A writer holds a **lease with a fencing epoch** on its partition's head row. It keeps the
//! partition's aggregate states and clients' chain heads in a bounded cache that is
//! authoritative, because nobody else writes the partition (a miss loads the snapshot row);
//! a batch is decided against a pinned copy of what it reads, so the cache dropping entries
//! while the misses load cannot make it read a committed aggregate as new.
//! It takes everything queued (up to `max_batch`), decides the commands **in order**, each
//! against the state its predecessors in the batch left, and commits the batch — accepted and
//! refused commands alike — in **one SQL statement** of array (`UNNEST`) inserts: command
//! records, snapshots, chain heads, outbox rows, guarded by the fencing update of the
//! partition head (`WHERE epoch = mine AND sequence = head I saw`). Postgres fsyncs once per
//! batch.
//!
//! The decision itself — replays of recorded command ids, each command against the state its
//! predecessors left, sequence numbers, event ids, hash chains — is the pure
//! [`etr_domain::partition::decide_batch`], which the deterministic simulator
//! (`etr-simulation`) runs too; this module loads what it reads and commits what it decided.
//!
//! Each caller gets its own outcome. A failed batch commit fails every command in it and
//! leaves nothing visible; the writer then drops its cache and takes its lease again (which
//! reloads the head), because it can no longer be sure what was committed.

use etr_domain::partition::{
    decide_batch, Batch as PartitionBatch, Cache, ChainHead, Decision, Pinned, Submission, Verdict,
};
use etr_domain::{AggregateRef, ClientId, Command, State};
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, Notify};
use uuid::Uuid;

use crate::committer::{Batch, Fence, Rows};
use crate::error::Error;
use crate::handler::{Clock, Handled, Meta, Outcome, Position, WrittenEvent};

/// One command waiting for its partition's writer.
pub struct Request {
    pub meta: Meta,
    pub command: Command,
    pub reply: oneshot::Sender<Result<Handled, Error>>,
}

pub struct WriterConfig {
    pub pool: PgPool,
    pub partition: u32,
    pub clock: Arc<dyn Clock>,
    pub committed: Arc<Notify>,
    pub writer_id: String,
    pub lease: Duration,
    pub max_batch: usize,
    pub cache_capacity: usize,
    /// The process's committer ([`crate::committer`]), which commits this writer's batches.
    pub committer: mpsc::Sender<Batch>,
    /// The client group catalogue, read once per batch.
    pub groups: crate::groups::Groups,
}

/// The lease this writer holds.
#[derive(Debug, Clone, Copy)]
struct Lease {
    epoch: i64,
    /// The partition's last sequence number, as this writer committed it.
    head: u64,
    renewed: Instant,
}

pub struct PartitionWriter {
    config: WriterConfig,
    lease: Option<Lease>,
    /// Aggregate states and chain heads, authoritative while the lease is held.
    cache: Cache,
}

/// The outcome recorded for a command decided now (and answered to its caller).
fn outcome_of(command_id: &str, partition: u32, verdict: &Verdict) -> Outcome {
    match verdict {
        Verdict::Rejected { code, message } => Outcome::Rejected {
            command_id: command_id.to_owned(),
            code: code.clone(),
            message: message.clone(),
        },
        Verdict::Accepted {
            events,
            sequence,
            states,
        } => Outcome::Accepted {
            command_id: command_id.to_owned(),
            events: events
                .iter()
                .map(|(envelope, _)| WrittenEvent {
                    event_id: envelope.event_id,
                    event_type: envelope.event_type.clone(),
                    aggregate_type: envelope.aggregate_type.as_str().to_owned(),
                    aggregate_id: envelope.aggregate_id,
                    aggregate_version: envelope.aggregate_version,
                    sequence: envelope.sequence,
                })
                .collect(),
            position: Position {
                partition,
                sequence: *sequence,
            },
            states: states.clone(),
        },
    }
}

impl PartitionWriter {
    pub fn new(config: WriterConfig) -> Self {
        let capacity = config.cache_capacity;
        PartitionWriter {
            config,
            lease: None,
            cache: Cache::new(capacity),
        }
    }

    /// Serves the partition's queue until every sender is gone.
    pub async fn run(mut self, mut queue: mpsc::Receiver<Request>) {
        let renew_every = self.config.lease / 3;
        loop {
            let first = tokio::select! {
                r = queue.recv() => match r { Some(r) => r, None => return },
                _ = tokio::time::sleep(renew_every) => {
                    self.renew().await;
                    continue;
                }
            };
            let mut batch = vec![first];
            while batch.len() < self.config.max_batch {
                match queue.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            self.serve(batch).await;
        }
    }

    fn partition_i32(&self) -> i32 {
        i32::try_from(self.config.partition).unwrap_or(i32::MAX)
    }

    /// Renews a lease that is a third through its term; drops it when it was taken.
    async fn renew(&mut self) {
        let Some(lease) = self.lease else { return };
        if lease.renewed.elapsed() < self.config.lease / 3 {
            return;
        }
        let renewed: Result<Option<i32>, sqlx::Error> = sqlx::query_scalar(
            "UPDATE partition_heads SET lease_expires_at = clock_timestamp() + make_interval(secs => $3) \
             WHERE partition = $1 AND epoch = $2 RETURNING 1",
        )
        .bind(self.partition_i32())
        .bind(lease.epoch)
        .bind(self.config.lease.as_secs_f64())
        .fetch_optional(&self.config.pool)
        .await;
        match renewed {
            Ok(Some(_)) => {
                if let Some(l) = self.lease.as_mut() {
                    l.renewed = Instant::now();
                }
            }
            Ok(None) => {
                tracing::warn!(
                    partition = self.config.partition,
                    "partition lease taken by another writer"
                );
                self.drop_lease();
            }
            Err(e) => {
                tracing::warn!(partition = self.config.partition, error = %e, "lease renewal failed")
            }
        }
    }

    fn drop_lease(&mut self) {
        self.lease = None;
        self.cache.clear();
    }

    /// Takes the partition's lease when it is free, expired or already this writer's (a
    /// restarted process with the same id); bumps the epoch, which fences every earlier
    /// holder. Returns the current holder when another writer holds it.
    async fn acquire(&mut self) -> Result<Result<Lease, Option<String>>, Error> {
        if let Some(lease) = self.lease {
            if lease.renewed.elapsed() < self.config.lease * 2 / 3 {
                return Ok(Ok(lease));
            }
        }
        self.drop_lease();
        let row: Option<(i64, i64)> = sqlx::query_as(
            "UPDATE partition_heads SET writer_id = $2, epoch = epoch + 1, \
                 lease_expires_at = clock_timestamp() + make_interval(secs => $3) \
             WHERE partition = $1 AND (writer_id IS NULL OR writer_id = $2 OR lease_expires_at < clock_timestamp()) \
             RETURNING epoch, sequence",
        )
        .bind(self.partition_i32())
        .bind(&self.config.writer_id)
        .bind(self.config.lease.as_secs_f64())
        .fetch_optional(&self.config.pool)
        .await?;
        match row {
            Some((epoch, head)) => {
                let lease = Lease {
                    epoch,
                    head: u64::try_from(head).unwrap_or(0),
                    renewed: Instant::now(),
                };
                tracing::info!(
                    partition = self.config.partition,
                    epoch,
                    "partition lease taken"
                );
                self.lease = Some(lease);
                Ok(Ok(lease))
            }
            None => {
                let holder: Option<Option<String>> = sqlx::query_scalar(
                    "SELECT writer_id FROM partition_heads WHERE partition = $1",
                )
                .bind(self.partition_i32())
                .fetch_optional(&self.config.pool)
                .await?;
                Ok(Err(holder.flatten()))
            }
        }
    }

    /// Decides and commits a batch. A batch fenced off (the lease moved, or the head moved
    /// under a stale view) is tried again from the database, a bounded number of times: when
    /// this process gets the lease back the commands commit, otherwise they are answered
    /// `NotOwner` with the holder (to forward to).
    async fn serve(&mut self, batch: Vec<Request>) {
        const ATTEMPTS: usize = 3;
        let mut last_error = None;
        for _ in 0..ATTEMPTS {
            let lease = match self.acquire().await {
                Ok(Ok(lease)) => lease,
                Ok(Err(holder)) => {
                    last_error = Some(Error::NotOwner {
                        partition: self.config.partition,
                        holder,
                    });
                    break;
                }
                Err(e) => {
                    last_error = Some(Error::Unavailable(e.to_string()));
                    break;
                }
            };
            // Optimistic first: no lookup of the command ids (the statement refuses a batch
            // with a recorded id, EF002); then once more with the recorded outcomes.
            let mut result = self.commit_batch(lease, &batch, false).await;
            if matches!(&result, Err(Error::Postgres(sqlx::Error::Database(d))) if d.code().as_deref() == Some("EF002"))
            {
                result = self.commit_batch(lease, &batch, true).await;
            }
            match result {
                Ok(answers) => {
                    for (r, answer) in batch.into_iter().zip(answers) {
                        let _ = r.reply.send(answer);
                    }
                    return;
                }
                Err(e) => {
                    // Nothing of the batch is certain: start again from the database.
                    tracing::warn!(partition = self.config.partition, error = %e, "batch not committed");
                    self.drop_lease();
                    let fenced = matches!(&e, Error::Postgres(sqlx::Error::Database(d)) if d.code().as_deref() == Some("EF001"));
                    if !fenced {
                        last_error = Some(Error::Unavailable(e.to_string()));
                        break;
                    }
                    last_error = Some(Error::NotOwner {
                        partition: self.config.partition,
                        holder: None,
                    });
                }
            }
        }
        let error = last_error.unwrap_or_else(|| Error::Unavailable("not committed".into()));
        for r in batch {
            let _ = r.reply.send(Err(match &error {
                Error::NotOwner { partition, holder } => Error::NotOwner {
                    partition: *partition,
                    holder: holder.clone(),
                },
                other => Error::Unavailable(other.to_string()),
            }));
        }
    }

    /// Pins what the batch reads ([`Cache::pin`]): the cached entries, and the misses loaded
    /// from the snapshot and chain-head rows (then cached too); returns it with the recorded
    /// outcomes of the batch's command ids.
    async fn prefetch(
        &mut self,
        batch: &[Request],
        look_up_records: bool,
    ) -> Result<(Pinned, HashMap<String, (String, serde_json::Value)>), Error> {
        let ids: Vec<String> = batch.iter().map(|r| r.meta.command_id.clone()).collect();
        let mut pinned = self.cache.pin(batch.iter().map(|r| &r.command));
        let (kinds, aggregate_ids): (Vec<String>, Vec<Uuid>) = pinned
            .missing_states()
            .map(|t| (t.kind.as_str().to_owned(), t.id))
            .unzip();
        let clients: Vec<Uuid> = pinned.missing_chains().map(|c| c.0).collect();
        let pool = &self.config.pool;
        let records = async {
            if !look_up_records {
                return Ok(Vec::new());
            }
            sqlx::query_as::<_, (String, String, serde_json::Value)>(
                "SELECT command_id, request_hash, outcome FROM command_records WHERE command_id = ANY($1)",
            )
            .bind(&ids)
            .fetch_all(pool)
            .await
        };
        let snapshots = async {
            if kinds.is_empty() {
                return Ok(Vec::new());
            }
            // One primary-key probe per wanted aggregate: a LATERAL subquery the planner
            // cannot flatten (LIMIT), since a plain join may be planned as a scan of the whole
            // table, which grows with every new aggregate.
            sqlx::query_as::<_, (String, Uuid, i64, serde_json::Value)>(
                "SELECT s.aggregate_type, s.aggregate_id, s.version, s.state \
                 FROM UNNEST($1::text[], $2::uuid[]) AS t(kind, id), LATERAL ( \
                     SELECT * FROM snapshots WHERE aggregate_type = t.kind AND aggregate_id = t.id LIMIT 1) s",
            )
            .bind(&kinds)
            .bind(&aggregate_ids)
            .fetch_all(pool)
            .await
        };
        let chains = async {
            if clients.is_empty() {
                return Ok(Vec::new());
            }
            sqlx::query_as::<_, (Uuid, String, i64)>(
                "SELECT client_id, head_hash, events FROM client_chain_heads WHERE client_id = ANY($1)",
            )
            .bind(&clients)
            .fetch_all(pool)
            .await
        };
        let (records, snapshots, chains) = tokio::try_join!(records, snapshots, chains)?;
        for (kind, id, version, json) in snapshots {
            let Some(kind) = etr_domain::AggregateKind::parse(&kind) else {
                continue;
            };
            let state: State = serde_json::from_value(json)?;
            pinned.load_state(
                AggregateRef { kind, id },
                (u64::try_from(version).unwrap_or(0), state),
            );
        }
        for (client, hash, events) in chains {
            pinned.load_chain(
                ClientId(client),
                ChainHead {
                    hash,
                    events: u64::try_from(events).unwrap_or(0),
                },
            );
        }
        self.cache.keep_loaded(&pinned);
        let records = records
            .into_iter()
            .map(|(id, hash, outcome)| (id, (hash, outcome)))
            .collect();
        Ok((pinned, records))
    }

    /// Decides the batch in order ([`etr_domain::partition::decide_batch`], the writer's whole
    /// decision) and commits it; returns each command's answer.
    async fn commit_batch(
        &mut self,
        lease: Lease,
        batch: &[Request],
        look_up_records: bool,
    ) -> Result<Vec<Result<Handled, Error>>, Error> {
        let (mut pinned, recorded) = self.prefetch(batch, look_up_records).await?;
        // Parsed before anything is committed: a record that does not parse fails the batch.
        let recorded: HashMap<String, (String, Outcome)> = recorded
            .into_iter()
            .map(|(id, (hash, outcome))| Ok((id, (hash, serde_json::from_value(outcome)?))))
            .collect::<Result<_, serde_json::Error>>()?;
        for (id, (hash, _)) in &recorded {
            pinned.record(id.clone(), hash.clone());
        }
        let partition = self.config.partition;
        let groups = self.config.groups.current();
        let submissions: Vec<Submission<'_>> = batch
            .iter()
            .map(|r| Submission {
                command_id: &r.meta.command_id,
                request_hash: &r.meta.request_hash,
                correlation_id: &r.meta.correlation_id,
                actor: &r.meta.actor,
                command: &r.command,
            })
            .collect();
        let clock = self.config.clock.clone();
        let decided = decide_batch(
            &PartitionBatch {
                partition,
                head: lease.head,
                schema_version: etr_schemas::SCHEMA_VERSION,
                groups: &groups,
                submissions: &submissions,
            },
            &mut pinned,
            &mut || clock.now(),
        )?;

        // The answers and the rows, in the batch's order.
        let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(batch.len());
        let mut answers: Vec<Result<Handled, Error>> = Vec::with_capacity(batch.len());
        let mut rows = Rows::default();
        for (request, decision) in batch.iter().zip(&decided.decisions) {
            let meta = &request.meta;
            let (answer, written) = match decision {
                Decision::Replay => match recorded.get(&meta.command_id) {
                    Some((_, outcome)) => (
                        Ok(Handled {
                            outcome: outcome.clone(),
                            replayed: true,
                        }),
                        None,
                    ),
                    None => (
                        Err(Error::Internal(format!(
                            "no record of {} to replay",
                            meta.command_id
                        ))),
                        None,
                    ),
                },
                Decision::ReplayOf(first) => match outcomes.get(*first).cloned().flatten() {
                    Some(outcome) => (
                        Ok(Handled {
                            outcome,
                            replayed: true,
                        }),
                        None,
                    ),
                    None => (
                        Err(Error::Internal(format!(
                            "no outcome of {} to replay",
                            meta.command_id
                        ))),
                        None,
                    ),
                },
                Decision::KeyReused => (
                    Err(Error::IdempotencyKeyReused(meta.command_id.clone())),
                    None,
                ),
                Decision::Recorded(verdict) => {
                    let outcome = outcome_of(&meta.command_id, partition, verdict);
                    if let Verdict::Accepted { events, .. } = verdict {
                        for (envelope, event) in events {
                            rows.out_partitions
                                .push(i32::try_from(partition).unwrap_or(i32::MAX));
                            rows.out_sequences.push(to_i64(envelope.sequence));
                            rows.out_ids.push(envelope.event_id);
                            rows.out_clients.push(envelope.client_id.0);
                            rows.out_types.push(envelope.event_type.clone());
                            rows.out_envelopes.push(serde_json::to_string(envelope)?);
                            rows.out_events.push(serde_json::to_string(event)?);
                        }
                    }
                    rows.record_ids.push(meta.command_id.clone());
                    rows.record_clients.push(request.command.client_id().0);
                    rows.record_types.push(request.command.name().to_owned());
                    rows.record_hashes.push(meta.request_hash.clone());
                    rows.record_accepted
                        .push(matches!(outcome, Outcome::Accepted { .. }));
                    rows.record_outcomes.push(serde_json::to_string(&outcome)?);
                    (
                        Ok(Handled {
                            outcome: outcome.clone(),
                            replayed: false,
                        }),
                        Some(outcome),
                    )
                }
            };
            outcomes.push(written);
            answers.push(answer);
        }

        if !rows.record_ids.is_empty() {
            let head = decided.head;
            self.write(
                lease,
                head,
                rows,
                &decided.states,
                &decided.touched,
                &decided.chains,
            )
            .await?;
            self.cache.commit(&decided);
            if let Some(l) = self.lease.as_mut() {
                l.head = head;
                l.renewed = Instant::now();
            }
            if head > lease.head {
                self.config.committed.notify_one();
            }
        }
        Ok(answers)
    }

    /// Hands the batch's rows to the committer and waits until they are committed (with
    /// the batches of other partitions, in one statement). Any failure commits none of it.
    async fn write(
        &self,
        lease: Lease,
        head: u64,
        mut rows: Rows,
        states: &BTreeMap<AggregateRef, (u64, State)>,
        touched: &BTreeMap<AggregateRef, (ClientId, time::OffsetDateTime)>,
        chains: &BTreeMap<ClientId, ChainHead>,
    ) -> Result<(), Error> {
        for (t, (client, at)) in touched {
            let Some((version, state)) = states.get(t) else {
                continue;
            };
            rows.snapshot_kinds.push(t.kind.as_str().to_owned());
            rows.snapshot_ids.push(t.id);
            rows.snapshot_clients.push(client.0);
            rows.snapshot_versions.push(to_i64(*version));
            rows.snapshot_states.push(serde_json::to_string(state)?);
            rows.snapshot_at.push(*at);
        }
        for (client, head) in chains {
            rows.chain_clients.push(client.0);
            rows.chain_hashes.push(head.hash.clone());
            rows.chain_lengths.push(to_i64(head.events));
        }
        let (reply, committed) = oneshot::channel();
        let batch = Batch {
            fence: Fence {
                partition: self.partition_i32(),
                epoch: lease.epoch,
                head: to_i64(lease.head),
                new_head: to_i64(head),
            },
            rows,
            reply,
        };
        let stopped = || Error::Internal("the committer stopped".into());
        self.config
            .committer
            .send(batch)
            .await
            .map_err(|_| stopped())?;
        committed.await.map_err(|_| stopped())?
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
