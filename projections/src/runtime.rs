//! The projection runtime: consume, apply a batch with its checkpoints in one transaction,
//! then commit the consumer offsets (an optimisation only; the checkpoints are the truth).
//! Events are applied in sequence order per partition and never past a gap
//! ([`apply_in_order`]); records that are not events go to the dead-letter table
//! ([`crate::dead_letters`]).

use etr_domain::{Envelope, Event};
use etr_infra::avro::EventCodec;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use sqlx::{PgConnection, PgPool};
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use crate::error::Error;

/// A read model: how one event changes it. Called inside the batch's transaction, only for
/// events past the projection's checkpoint, in partition order.
pub trait Projection: Send + Sync {
    /// The projection's name: its checkpoints' key, its consumer group's suffix
    /// (`<topic>.projection.<name>`) and its dead letters' consumer (`projection.<name>`).
    fn name(&self) -> &'static str;
    /// The tables the projection writes (besides its checkpoints), for rebuilds.
    fn tables(&self) -> &'static [&'static str];
    /// In a blue/green switch, before the copy in schema `staging` replaces the live tables:
    /// announce what the copy applied beyond the live checkpoints (`live`, up to `copied`),
    /// which the live projector will skip from now on. Nothing by default.
    fn announce_skipped<'a>(
        &'a self,
        _tx: &'a mut PgConnection,
        _staging: &'a str,
        _live: &'a BTreeMap<i32, i64>,
        _copied: &'a BTreeMap<i32, i64>,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'a {
        async { Ok(()) }
    }
    /// Applies one event (the next of its partition) inside the batch's transaction.
    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        envelope: &'a Envelope,
        event: &'a Event,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'a;
}

/// Loads a read model's folded state (a JSONB `state` column) by id; `None` before its
/// first event.
pub async fn load_state<T: serde::de::DeserializeOwned>(
    tx: &mut PgConnection,
    sql: &str,
    id: uuid::Uuid,
) -> Result<Option<T>, Error> {
    let json: Option<serde_json::Value> = sqlx::query_scalar(sql)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    Ok(json.map(serde_json::from_value).transpose()?)
}

/// What one call of [`apply_in_order`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Events applied by this call.
    pub applied: usize,
    /// The projection's checkpoints before the call: per partition, the last sequence applied.
    pub before: BTreeMap<u32, u64>,
    /// The projection's checkpoints after the call (every partition it has applied events of).
    pub checkpoints: BTreeMap<u32, u64>,
    /// The partitions of which events were held back, each with the sequence it is missing
    /// (its checkpoint + 1).
    pub gaps: BTreeMap<u32, u64>,
}

impl Applied {
    /// The last sequence applied in `partition` after the call (0 before its first event).
    pub fn checkpoint(&self, partition: u32) -> u64 {
        self.checkpoints.get(&partition).copied().unwrap_or(0)
    }

    /// The last sequence applied in `partition` before the call.
    pub fn checkpoint_before(&self, partition: u32) -> u64 {
        self.before.get(&partition).copied().unwrap_or(0)
    }
}

/// Applies `events` (any order, any partitions, copies allowed) in one transaction together
/// with the checkpoints, never past a gap: per partition, the events from checkpoint + 1 on
/// are applied in sequence order as long as the sequences are contiguous; an event beyond a
/// missing sequence is held back (neither applied nor checkpointed; the caller keeps it and
/// hands it in again once the missing one is there). Events at or below the checkpoint (a
/// re-delivery or a relay re-publish) and second copies of a sequence are skipped.
///
/// Errors: Postgres, or the projection's own.
pub async fn apply_in_order<P: Projection>(
    pool: &PgPool,
    projection: &P,
    events: &[(Envelope, Event)],
) -> Result<Applied, Error> {
    let mut by_partition: BTreeMap<u32, BTreeMap<u64, &(Envelope, Event)>> = BTreeMap::new();
    for e in events {
        by_partition
            .entry(e.0.partition)
            .or_default()
            .entry(e.0.sequence)
            .or_insert(e);
    }
    let mut tx = pool.begin().await?;
    // One batch at a time per projection and checkpoint table (the live one, or a rebuild's
    // copy); a blue/green switch takes the live one too.
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtext(('projection_checkpoints'::regclass)::oid::text || '/' || $1))",
    )
        .bind(projection.name())
        .execute(&mut *tx)
        .await?;
    let rows: Vec<(i32, i64)> = sqlx::query_as(
        "SELECT partition, sequence FROM projection_checkpoints WHERE projection = $1 FOR UPDATE",
    )
    .bind(projection.name())
    .fetch_all(&mut *tx)
    .await?;
    let before: BTreeMap<u32, u64> = rows
        .into_iter()
        .map(|(p, s)| (u32::try_from(p).unwrap_or(0), u64::try_from(s).unwrap_or(0)))
        .collect();
    let mut checkpoints = before.clone();
    let mut applied = 0;
    let mut gaps = BTreeMap::new();
    for (partition, events) in &by_partition {
        let first = checkpoints.get(partition).copied().unwrap_or(0);
        let mut last = first;
        for (sequence, (envelope, event)) in events.range(first + 1..) {
            if *sequence != last + 1 {
                tracing::debug!(
                    projection = projection.name(),
                    partition,
                    missing = last + 1,
                    next = sequence,
                    "holding events back past a gap"
                );
                gaps.insert(*partition, last + 1);
                break;
            }
            projection.apply(&mut tx, envelope, event).await?;
            last = *sequence;
            applied += 1;
        }
        if last > first {
            checkpoints.insert(*partition, last);
            sqlx::query(
                "INSERT INTO projection_checkpoints (projection, partition, sequence) VALUES ($1, $2, $3) \
                 ON CONFLICT (projection, partition) DO UPDATE SET sequence = EXCLUDED.sequence, updated_at = clock_timestamp()",
            )
            .bind(projection.name())
            .bind(i32::try_from(*partition).unwrap_or(i32::MAX))
            .bind(i64::try_from(last).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(Applied {
        applied,
        before,
        checkpoints,
        gaps,
    })
}

/// [`apply_in_order`], returning how many events were applied (the rest were at or below a
/// checkpoint, or held back past a gap).
pub async fn apply_batch<P: Projection>(
    pool: &PgPool,
    projection: &P,
    events: &[(Envelope, Event)],
) -> Result<usize, Error> {
    Ok(apply_in_order(pool, projection, events).await?.applied)
}

/// How many held-back events a projector keeps per partition. Past it the partition's held
/// events are dropped and read again from the broker once its gap is filled.
pub const HOLD_LIMIT: usize = 10_000;

/// How often a projector holding events back tries them again when nothing new arrives (the
/// gap may be filled by another process: an operator retrying a dead letter).
pub const RETRY_EVERY: Duration = Duration::from_secs(1);

const MAX_BATCH: usize = 500;

/// Consumes the topic in the projection's consumer group and applies it batch by batch.
///
/// **Gaps.** Events are applied through [`apply_in_order`], so never past a gap: an event
/// whose sequence is beyond its partition's checkpoint + 1 is held back in memory, and every
/// batch (and every [`RETRY_EVERY`] while anything is held, even without new records) hands
/// the held events in again, so they are applied, in sequence order, as soon as the missing
/// one is there — whether it arrives on the topic (a relay re-send sits at a higher offset
/// than the events after it) or another process applies it (a dead letter retried).
///
/// **Offsets.** The checkpoints are the truth; the consumer offsets only say where a
/// restarted (or rebalanced) consumer starts reading. They are committed up to the records
/// read, but never past the earliest record of a partition still held back, so a restart
/// reads every held event again. Undecodable records are committed past once they are in
/// the dead-letter table.
///
/// **Memory.** At most [`HOLD_LIMIT`] events are held per partition. Past it the partition's
/// held events are dropped (their offsets are not committed) and the projector reads on
/// looking only for the missing sequence; once its checkpoint moves it seeks back to the
/// earliest dropped record and reads from there again. Reading on, not pausing: the missing
/// event may sit further on in the same partition.
///
/// **Bad records.** A record that is not an event (no payload, no magic byte, an unknown
/// schema id, a truncated body, an envelope naming another partition) goes to the
/// dead-letter table ([`crate::dead_letters`]) under the consumer name
/// `projection.<name>`, and the projector goes on. Its sequence is unknown: if it was the
/// next event of its partition, that partition's later events stay held until the dead
/// letter is retried successfully (never apply past a gap); other partitions flow.
///
/// `run` returns an error only when the broker or Postgres fails (it is then restarted).
pub struct Projector<P> {
    pool: PgPool,
    codec: EventCodec,
    consumer: StreamConsumer,
    topic: String,
    projection: P,
    hold_limit: usize,
    retry_every: Duration,
}

/// A record as read from the broker.
struct Record {
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
}

impl Record {
    fn of(message: &rdkafka::message::BorrowedMessage<'_>) -> Record {
        Record {
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
        }
    }
}

/// Whether the envelope names the Kafka partition its record is on (the sequence is per
/// partition; a record elsewhere is a dead letter).
pub(crate) fn on_partition(envelope: &Envelope, partition: i32) -> bool {
    i64::from(envelope.partition) == i64::from(partition)
}

/// An event held back behind a gap of its partition.
struct HeldEvent {
    offset: i64,
    envelope: Envelope,
    event: Event,
}

/// Held events that were dropped over the hold limit: where to read again from once the
/// partition's checkpoint has moved past `checkpoint`.
struct Rewind {
    offset: i64,
    checkpoint: u64,
}

/// What the projector keeps of one partition it consumes.
#[derive(Default)]
struct PartitionState {
    /// Events held back behind a gap, by sequence.
    held: BTreeMap<u64, HeldEvent>,
    rewind: Option<Rewind>,
    /// The offset after the last record read.
    next: Option<i64>,
    /// The offset last committed.
    committed: Option<i64>,
    /// The missing sequence last logged (a gap is logged when it opens or moves).
    reported: Option<u64>,
}

impl PartitionState {
    fn waiting(&self) -> bool {
        !self.held.is_empty() || self.rewind.is_some()
    }

    /// The offset a restart must read from: after the last record read, but never past a
    /// record held back or dropped over the hold limit.
    fn safe_offset(&self) -> Option<i64> {
        let floor = self
            .rewind
            .as_ref()
            .map(|r| r.offset)
            .into_iter()
            .chain(self.held.values().map(|h| h.offset))
            .min();
        match (self.next, floor) {
            (Some(next), Some(floor)) => Some(next.min(floor)),
            (next, None) => next,
            (None, floor) => floor,
        }
    }
}

impl<P: Projection> Projector<P> {
    /// Reads every partition of `topic` itself (manual assignment, no group membership), from
    /// the offsets last committed under the group id `<topic>.projection.<name>` (the start
    /// when none). Group membership was dropped because a broker's group under quick member
    /// churn (processes killed and restarted every second) was seen to leave partitions
    /// assigned to no live member for minutes. Two processes running the same projection both
    /// read everything; the batch lock and the checkpoints apply each event once.
    pub fn new(
        pool: PgPool,
        codec: EventCodec,
        bootstrap: &str,
        topic: &str,
        projection: P,
    ) -> Result<Self, Error> {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set(
                "group.id",
                format!("{topic}.projection.{}", projection.name()),
            )
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "20")
            .create()?;
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        let count = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map_or(0, |t| t.partitions().len());
        if count == 0 {
            return Err(Error::Rebuild(format!(
                "topic {topic} has no partitions yet"
            )));
        }
        let mut all = TopicPartitionList::new();
        for p in 0..count {
            all.add_partition(topic, i32::try_from(p).unwrap_or(i32::MAX));
        }
        let committed = consumer
            .committed_offsets(all.clone(), Duration::from_secs(10))
            .unwrap_or(all);
        let mut start = TopicPartitionList::new();
        for e in committed.elements() {
            let offset = match e.offset() {
                Offset::Offset(o) if o >= 0 => Offset::Offset(o),
                _ => Offset::Beginning,
            };
            start.add_partition_offset(topic, e.partition(), offset)?;
        }
        consumer.assign(&start)?;
        Ok(Projector {
            pool,
            codec,
            consumer,
            topic: topic.to_owned(),
            projection,
            hold_limit: HOLD_LIMIT,
            retry_every: RETRY_EVERY,
        })
    }

    /// Holds at most `limit` events back per partition (default [`HOLD_LIMIT`]).
    pub fn with_hold_limit(mut self, limit: usize) -> Self {
        self.hold_limit = limit;
        self
    }

    /// The name the projector's dead letters are recorded under: `projection.<name>`.
    pub fn consumer_name(&self) -> String {
        crate::dead_letters::projection_consumer(self.projection.name())
    }

    /// Consumes until the broker or Postgres fails; see the type's documentation.
    pub async fn run(mut self) -> Result<(), Error> {
        tracing::info!(projection = self.projection.name(), "projector consuming");
        let mut partitions: BTreeMap<i32, PartitionState> = BTreeMap::new();
        loop {
            let mut records = Vec::new();
            if partitions.values().any(PartitionState::waiting) {
                if let Ok(m) = tokio::time::timeout(self.retry_every, self.consumer.recv()).await {
                    records.push(Record::of(&m?));
                }
            } else {
                records.push(Record::of(&self.consumer.recv().await?));
            }
            while !records.is_empty() && records.len() < MAX_BATCH {
                match tokio::time::timeout(Duration::from_millis(5), self.consumer.recv()).await {
                    Ok(m) => records.push(Record::of(&m?)),
                    Err(_) => break,
                }
            }
            self.step(records, &mut partitions).await?;
        }
    }

    /// Decodes `records` (dead-lettering what is not an event), applies them with the held
    /// events, keeps what is still held, and commits the offsets that are safe.
    async fn step(
        &mut self,
        records: Vec<Record>,
        partitions: &mut BTreeMap<i32, PartitionState>,
    ) -> Result<(), Error> {
        self.forget_revoked(partitions);
        let mut candidates: Vec<(Envelope, Event)> = Vec::new();
        let mut positions: Vec<(i32, i64)> = Vec::new();
        for (partition, state) in partitions.iter_mut() {
            for held in std::mem::take(&mut state.held).into_values() {
                candidates.push((held.envelope, held.event));
                positions.push((*partition, held.offset));
            }
        }
        let mut letters = Vec::new();
        let mut refresh_codec = false;
        for record in records {
            partitions.entry(record.partition).or_default().next = Some(record.offset + 1);
            let reason = match self.codec.decode_record(record.payload.as_deref()).await {
                Ok((envelope, event)) if on_partition(&envelope, record.partition) => {
                    candidates.push((envelope, event));
                    positions.push((record.partition, record.offset));
                    continue;
                }
                Ok((envelope, _)) => format!(
                    "the envelope places sequence {} in partition {}, the record is on partition {}",
                    envelope.sequence, envelope.partition, record.partition
                ),
                Err(e @ etr_infra::avro::DecodeError::RegistryUnavailable { .. }) => {
                    // Not the record's fault: stop here (nothing of this step is applied or
                    // committed) and let the supervisor start the projector again later.
                    return Err(Error::Decode {
                        topic: self.topic.clone(),
                        partition: record.partition,
                        offset: record.offset,
                        source: e,
                    });
                }
                Err(e) => {
                    // The registry client caches a failed lookup; a schema registered later
                    // must be found by the next record that uses it.
                    refresh_codec |= matches!(e, etr_infra::avro::DecodeError::Schema { .. });
                    e.to_string()
                }
            };
            letters.push(crate::dead_letters::Letter {
                consumer: self.consumer_name(),
                topic: self.topic.clone(),
                partition: record.partition,
                offset: record.offset,
                key: record.key,
                payload: record.payload,
                reason,
            });
        }
        if refresh_codec {
            self.codec = self.codec.fresh();
        }
        if !letters.is_empty() {
            crate::dead_letters::record(&self.pool, &letters).await?;
            for letter in &letters {
                tracing::warn!(
                    projection = self.projection.name(),
                    topic = %letter.topic,
                    partition = letter.partition,
                    offset = letter.offset,
                    reason = %letter.reason,
                    "record dead-lettered"
                );
            }
        }
        let outcome = apply_in_order(&self.pool, &self.projection, &candidates).await?;
        for ((envelope, event), (partition, offset)) in candidates.into_iter().zip(positions) {
            if envelope.sequence <= outcome.checkpoint(envelope.partition) {
                continue;
            }
            let state = partitions.entry(partition).or_default();
            if state.rewind.is_some() {
                // Dropped over the hold limit: read again once the gap is filled.
                continue;
            }
            let sequence = envelope.sequence;
            let held = HeldEvent {
                offset,
                envelope,
                event,
            };
            match state.held.get(&sequence) {
                Some(kept) if kept.offset <= offset => {}
                _ => {
                    state.held.insert(sequence, held);
                }
            }
        }
        for (partition, state) in partitions.iter_mut() {
            let checkpoint = outcome.checkpoint(u32::try_from(*partition).unwrap_or(u32::MAX));
            self.rewind_or_drop(*partition, state, checkpoint);
            let missing = state.waiting().then_some(checkpoint + 1);
            if missing != state.reported {
                match missing {
                    Some(missing) => tracing::warn!(
                        projection = self.projection.name(),
                        partition,
                        missing,
                        held = state.held.len(),
                        "holding events back until the missing sequence is applied"
                    ),
                    None => tracing::info!(
                        projection = self.projection.name(),
                        partition,
                        checkpoint,
                        "gap filled"
                    ),
                }
                state.reported = missing;
            }
        }
        self.commit(partitions);
        Ok(())
    }

    /// Over the hold limit, drops a partition's held events (remembering where to read them
    /// again); once its checkpoint has moved, seeks back there.
    fn rewind_or_drop(&self, partition: i32, state: &mut PartitionState, checkpoint: u64) {
        if let Some(rewind) = &state.rewind {
            if checkpoint <= rewind.checkpoint {
                return;
            }
            let offset = rewind.offset;
            match self.consumer.seek(
                &self.topic,
                partition,
                Offset::Offset(offset),
                Duration::from_secs(5),
            ) {
                Ok(()) => {
                    tracing::info!(
                        projection = self.projection.name(),
                        partition,
                        offset,
                        "gap moved: reading the dropped events again"
                    );
                    state.rewind = None;
                    state.next = Some(offset);
                }
                // Tried again with the next batch; the committed offset stays at `offset`.
                Err(e) => tracing::warn!(
                    projection = self.projection.name(),
                    partition,
                    offset,
                    error = %e,
                    "seek failed"
                ),
            }
        } else if state.held.len() > self.hold_limit {
            let Some(offset) = state.held.values().map(|h| h.offset).min() else {
                return;
            };
            tracing::warn!(
                projection = self.projection.name(),
                partition,
                held = state.held.len(),
                missing = checkpoint + 1,
                "too many events held back: dropping them to read again once the gap is filled"
            );
            state.held.clear();
            state.rewind = Some(Rewind { offset, checkpoint });
        }
    }

    /// Forgets the partitions the group took away (another member reads them from the
    /// committed offsets, which are never past a held event).
    fn forget_revoked(&self, partitions: &mut BTreeMap<i32, PartitionState>) {
        let Ok(assignment) = self.consumer.assignment() else {
            return;
        };
        let assigned: Vec<i32> = assignment
            .elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition())
            .collect();
        partitions.retain(|p, _| assigned.contains(p));
    }

    /// Commits, per partition, the offset a restart must read from (an optimisation: the
    /// checkpoints skip whatever is read twice).
    fn commit(&self, partitions: &mut BTreeMap<i32, PartitionState>) {
        let mut tpl = TopicPartitionList::new();
        for (partition, state) in partitions.iter_mut() {
            let Some(offset) = state.safe_offset() else {
                continue;
            };
            if state.committed == Some(offset) {
                continue;
            }
            if tpl
                .add_partition_offset(&self.topic, *partition, Offset::Offset(offset))
                .is_ok()
            {
                state.committed = Some(offset);
            }
        }
        if tpl.count() == 0 {
            return;
        }
        if let Err(e) = self.consumer.commit(&tpl, CommitMode::Async) {
            tracing::debug!(error = %e, "offset commit failed; checkpoints keep the truth");
        }
    }
}
