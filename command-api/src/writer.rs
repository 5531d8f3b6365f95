//! The partition writer: the one process that writes a partition at a time (DESIGN.md,
//! "Write path v2").
//!
//! A writer holds a **lease with a fencing epoch** on its partition's head row. It keeps the
//! partition's aggregate states and clients' chain heads in a bounded cache that is
//! authoritative, because nobody else writes the partition (a miss loads the snapshot row).
//! It takes everything queued (up to `max_batch`), decides the commands **in order**, each
//! against the state its predecessors in the batch left, and commits the batch — accepted and
//! refused commands alike — in **one SQL statement** of array (`UNNEST`) inserts: command
//! records, snapshots, chain heads, outbox rows, guarded by the fencing update of the
//! partition head (`WHERE epoch = mine AND sequence = head I saw`). Postgres fsyncs once per
//! batch.
//!
//! Each caller gets its own outcome. A failed batch commit fails every command in it and
//! leaves nothing visible; the writer then drops its cache and takes its lease again (which
//! reloads the head), because it can no longer be sure what was committed.

use etr_domain::envelope::GENESIS_HASH;
use etr_domain::ids::derived_id;
use etr_domain::{decide, evolve, AggregateRef, ClientId, Command, Context, Envelope, State};
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, Notify};
use uuid::Uuid;

use crate::committer::{Batch, Fence, Rows};
use crate::error::Error;
use crate::handler::{chain_hash, Clock, Handled, Meta, Outcome, Position, WrittenEvent};

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

/// A bounded map whose least recently used half is dropped when it is full.
struct Bounded<K, V> {
    map: HashMap<K, (V, u64)>,
    capacity: usize,
    tick: u64,
}

impl<K: std::hash::Hash + Eq + Clone, V: Clone> Bounded<K, V> {
    fn new(capacity: usize) -> Self {
        Bounded {
            map: HashMap::new(),
            capacity: capacity.max(16),
            tick: 0,
        }
    }
    fn get(&mut self, k: &K) -> Option<V> {
        self.tick += 1;
        let tick = self.tick;
        self.map.get_mut(k).map(|(v, used)| {
            *used = tick;
            v.clone()
        })
    }
    fn contains(&self, k: &K) -> bool {
        self.map.contains_key(k)
    }
    fn insert(&mut self, k: K, v: V) {
        self.tick += 1;
        if self.map.len() >= self.capacity && !self.map.contains_key(&k) {
            let mut ticks: Vec<u64> = self.map.values().map(|(_, t)| *t).collect();
            let mid = ticks.len() / 2;
            let (_, cut, _) = ticks.select_nth_unstable(mid);
            let cut = *cut;
            self.map.retain(|_, (_, t)| *t > cut);
        }
        self.map.insert(k, (v, self.tick));
    }
    fn clear(&mut self) {
        self.map.clear();
    }
}

pub struct PartitionWriter {
    config: WriterConfig,
    lease: Option<Lease>,
    states: Bounded<AggregateRef, (u64, State)>,
    chains: Bounded<ClientId, (String, u64)>,
}

/// A command of the batch once decided.
enum Decided {
    /// Answered without writing: a replay of a recorded outcome, or an error.
    Answer(Result<Handled, Error>),
    /// Written with the batch: its outcome, recorded as the first one.
    Write(Outcome),
}

impl PartitionWriter {
    pub fn new(config: WriterConfig) -> Self {
        let capacity = config.cache_capacity;
        PartitionWriter {
            config,
            lease: None,
            states: Bounded::new(capacity),
            chains: Bounded::new(capacity),
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
        self.states.clear();
        self.chains.clear();
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

    /// Loads into the caches what the batch needs and is not cached; returns the recorded
    /// outcomes of the batch's command ids.
    async fn prefetch(
        &mut self,
        batch: &[Request],
        look_up_records: bool,
    ) -> Result<HashMap<String, (String, serde_json::Value)>, Error> {
        let ids: Vec<String> = batch.iter().map(|r| r.meta.command_id.clone()).collect();
        let mut kinds = Vec::new();
        let mut aggregate_ids = Vec::new();
        let mut clients = Vec::new();
        for r in batch {
            for t in r.command.targets() {
                if !self.states.contains(&t) {
                    kinds.push(t.kind.as_str().to_owned());
                    aggregate_ids.push(t.id);
                }
            }
            let client = r.command.client_id();
            if !self.chains.contains(&client) {
                clients.push(client.0);
            }
        }
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
        let mut found = std::collections::HashSet::new();
        for (kind, id, version, json) in snapshots {
            let Some(kind) = etr_domain::AggregateKind::parse(&kind) else {
                continue;
            };
            let target = AggregateRef { kind, id };
            found.insert(target);
            let state: State = serde_json::from_value(json)?;
            self.states
                .insert(target, (u64::try_from(version).unwrap_or(0), state));
        }
        for (kind, id) in kinds.iter().zip(&aggregate_ids) {
            if let Some(kind) = etr_domain::AggregateKind::parse(kind) {
                let target = AggregateRef { kind, id: *id };
                if !found.contains(&target) {
                    self.states.insert(target, (0, State::initial(target)));
                }
            }
        }
        let mut chained = std::collections::HashSet::new();
        for (client, hash, events) in chains {
            chained.insert(client);
            self.chains
                .insert(ClientId(client), (hash, u64::try_from(events).unwrap_or(0)));
        }
        for client in clients {
            if !chained.contains(&client) {
                self.chains
                    .insert(ClientId(client), (GENESIS_HASH.to_owned(), 0));
            }
        }
        Ok(records
            .into_iter()
            .map(|(id, hash, outcome)| (id, (hash, outcome)))
            .collect())
    }

    /// Decides the batch in order and commits it; returns each command's answer.
    async fn commit_batch(
        &mut self,
        lease: Lease,
        batch: &[Request],
        look_up_records: bool,
    ) -> Result<Vec<Result<Handled, Error>>, Error> {
        let recorded = self.prefetch(batch, look_up_records).await?;
        let partition = self.config.partition;
        // What the batch changes, over the caches; merged into them only after the commit.
        let mut states: HashMap<AggregateRef, (u64, State)> = HashMap::new();
        let mut chains: HashMap<ClientId, (String, u64)> = HashMap::new();
        // The aggregates the batch's events changed: their client and their last event's time.
        let mut touched: HashMap<AggregateRef, (ClientId, time::OffsetDateTime)> = HashMap::new();
        let mut batch_outcomes: HashMap<&str, (&str, Outcome)> = HashMap::new();
        let mut decided = Vec::with_capacity(batch.len());
        let mut rows = Rows::default();
        let mut head = lease.head;

        let groups = self.config.groups.current();
        for request in batch {
            let meta = &request.meta;
            // A command id seen before (earlier batch, or earlier in this one) answers with
            // the first outcome, exactly; with another request behind it, it is refused.
            let earlier = match recorded.get(&meta.command_id) {
                Some((hash, outcome)) => {
                    Some((hash.as_str(), serde_json::from_value(outcome.clone())?))
                }
                None => batch_outcomes
                    .get(meta.command_id.as_str())
                    .map(|(hash, o)| (*hash, o.clone())),
            };
            if let Some((hash, outcome)) = earlier {
                decided.push(Decided::Answer(if hash == meta.request_hash {
                    Ok(Handled {
                        outcome,
                        replayed: true,
                    })
                } else {
                    Err(Error::IdempotencyKeyReused(meta.command_id.clone()))
                }));
                continue;
            }
            let command = &request.command;
            let client = command.client_id();
            let now = self.config.clock.now();
            // Microsecond precision: what the log (Avro timestamp-micros) and Postgres keep,
            // so hashes recomputed from the log match.
            let now = now
                .replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
                .unwrap_or(now);
            let context = Context {
                now,
                actor: meta.actor.clone(),
                groups: groups.clone(),
            };
            let targets = command.targets();
            let mut current: BTreeMap<AggregateRef, (u64, State)> = BTreeMap::new();
            for t in &targets {
                let s = match states.get(t) {
                    Some(s) => s.clone(),
                    None => self
                        .states
                        .get(t)
                        .unwrap_or_else(|| (0, State::initial(*t))),
                };
                current.insert(*t, s);
            }
            let view: etr_domain::command::States =
                current.iter().map(|(k, (_, s))| (*k, s.clone())).collect();
            let outcome = match decide(&view, command, &context) {
                Err(refusal) => Outcome::Rejected {
                    command_id: meta.command_id.clone(),
                    code: refusal.code().to_owned(),
                    message: refusal.to_string(),
                },
                Ok(events) => {
                    let (mut prev_hash, mut chain_len) = match chains.get(&client) {
                        Some(c) => c.clone(),
                        None => self
                            .chains
                            .get(&client)
                            .unwrap_or_else(|| (GENESIS_HASH.to_owned(), 0)),
                    };
                    let command_uuid =
                        Uuid::new_v5(&Uuid::NAMESPACE_OID, meta.command_id.as_bytes());
                    let mut written = Vec::with_capacity(events.len());
                    for (i, (target, event)) in events.iter().enumerate() {
                        let entry = current
                            .entry(*target)
                            .or_insert_with(|| (0, State::initial(*target)));
                        let state = std::mem::replace(&mut entry.1, State::initial(*target));
                        entry.1 = evolve(state, client, event);
                        entry.0 += 1;
                        touched.insert(*target, (client, now));
                        head += 1;
                        let event_id = derived_id(command_uuid, &format!("event-{i}"));
                        let mut envelope = Envelope {
                            event_id,
                            event_type: event.name().to_owned(),
                            schema_version: etr_schemas::SCHEMA_VERSION,
                            client_id: client,
                            aggregate_type: target.kind,
                            aggregate_id: target.id,
                            aggregate_version: entry.0,
                            partition,
                            sequence: head,
                            command_id: meta.command_id.clone(),
                            correlation_id: meta.correlation_id.clone(),
                            actor: meta.actor.clone(),
                            occurred_at: now,
                            prev_hash: prev_hash.clone(),
                            hash: String::new(),
                        };
                        envelope.hash = chain_hash(&envelope, event)?;
                        prev_hash = envelope.hash.clone();
                        chain_len += 1;
                        written.push(WrittenEvent {
                            event_id,
                            event_type: envelope.event_type.clone(),
                            aggregate_type: target.kind.as_str().to_owned(),
                            aggregate_id: target.id,
                            aggregate_version: entry.0,
                            sequence: head,
                        });
                        rows.out_partitions
                            .push(i32::try_from(partition).unwrap_or(i32::MAX));
                        rows.out_sequences.push(to_i64(head));
                        rows.out_ids.push(event_id);
                        rows.out_clients.push(client.0);
                        rows.out_types.push(envelope.event_type.clone());
                        rows.out_envelopes.push(serde_json::to_string(&envelope)?);
                        rows.out_events.push(serde_json::to_string(event)?);
                    }
                    chains.insert(client, (prev_hash, chain_len));
                    for (t, s) in &current {
                        states.insert(*t, s.clone());
                    }
                    Outcome::Accepted {
                        command_id: meta.command_id.clone(),
                        events: written,
                        position: Position {
                            partition,
                            sequence: head,
                        },
                        states: current.into_iter().map(|(t, (_, s))| (t, s)).collect(),
                    }
                }
            };
            rows.record_ids.push(meta.command_id.clone());
            rows.record_clients.push(client.0);
            rows.record_types.push(command.name().to_owned());
            rows.record_hashes.push(meta.request_hash.clone());
            rows.record_accepted
                .push(matches!(outcome, Outcome::Accepted { .. }));
            rows.record_outcomes.push(serde_json::to_string(&outcome)?);
            batch_outcomes.insert(&meta.command_id, (&meta.request_hash, outcome.clone()));
            decided.push(Decided::Write(outcome));
        }

        if !rows.record_ids.is_empty() {
            self.write(lease, head, rows, &states, &touched, &chains)
                .await?;
            for (t, s) in states {
                self.states.insert(t, s);
            }
            for (c, h) in chains {
                self.chains.insert(c, h);
            }
            if let Some(l) = self.lease.as_mut() {
                l.head = head;
                l.renewed = Instant::now();
            }
            if head > lease.head {
                self.config.committed.notify_one();
            }
        }
        Ok(decided
            .into_iter()
            .map(|d| match d {
                Decided::Answer(a) => a,
                Decided::Write(outcome) => Ok(Handled {
                    outcome,
                    replayed: false,
                }),
            })
            .collect())
    }

    /// Hands the batch's rows to the committer and waits until they are committed (with
    /// the batches of other partitions, in one statement). Any failure commits none of it.
    async fn write(
        &self,
        lease: Lease,
        head: u64,
        mut rows: Rows,
        states: &HashMap<AggregateRef, (u64, State)>,
        touched: &HashMap<AggregateRef, (ClientId, time::OffsetDateTime)>,
        chains: &HashMap<ClientId, (String, u64)>,
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
        for (client, (hash, len)) in chains {
            rows.chain_clients.push(client.0);
            rows.chain_hashes.push(hash.clone());
            rows.chain_lengths.push(to_i64(*len));
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
