//! Reading the log itself, outside any projection's checkpoints: every event in sequence
//! order per partition ([`read_log`]; `etr tail`, `etr timeline`), the aggregate states it
//! folds into ([`fold_log`], [`rebuild_snapshots`]) and a time window of it streamed into the
//! data platform ([`WindowReader`], [`replay_into_data_platform`]; `etr replay`).

use etr_domain::{evolve, AggregateRef, Envelope, Event, State};
use etr_infra::avro::{DecodeError, EventCodec};
use etr_infra::config::Settings;
use etr_infra::kafka;
use rdkafka::consumer::Consumer;
use rdkafka::Message;
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::time::Duration;
use time::OffsetDateTime;

use crate::data_platform;
use crate::error::Error;

/// How many events [`read_log`] holds back behind gaps before it gives up.
const HOLD_LIMIT: usize = 100_000;

/// A missing sequence of a partition, with the events held back behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    pub partition: usize,
    /// The sequence that was not read.
    pub missing: u64,
    /// Events of the partition read past the missing sequence and held back.
    pub held: usize,
    /// The first held sequence and its offset.
    pub first: u64,
    pub first_offset: i64,
}

impl std::fmt::Display for Gap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "partition {}: sequence {} is missing from the log ({} later event(s) held back, the first sequence {} at offset {})",
            self.partition, self.missing, self.held, self.first, self.first_offset
        )
    }
}

/// The first partition with events held back behind a gap.
fn first_gap(
    next_seq: &[Option<u64>],
    held: &[BTreeMap<u64, (i64, Envelope, Event)>],
) -> Option<Gap> {
    held.iter()
        .zip(next_seq)
        .enumerate()
        .find_map(|(partition, (events, next))| {
            let (first, (offset, _, _)) = events.iter().next()?;
            Some(Gap {
                partition,
                missing: next.unwrap_or(1),
                held: events.len(),
                first: *first,
                first_offset: *offset,
            })
        })
}

/// Reads the whole log (and, with `follow`, waits for more), decoding every record and
/// handing each event to `f` exactly once and, per partition, in sequence order: a record
/// whose sequence was handed out already (a relay re-publish) is skipped, and an event beyond
/// a missing sequence (the relay re-sent the missing one later, so it sits at a higher
/// offset) is held back until the missing one is read. A partition is expected to start at
/// sequence 1 (at the first retained record when the broker deleted earlier ones).
///
/// Errors: a gap still open at the end of the log (without `follow`: [`Error::GapAtEnd`]) or
/// with more than 100,000 events held back ([`Error::TooManyHeld`]), naming the partition
/// and the missing sequence; no record for 30 s before the end (without `follow`:
/// [`Error::Timeout`]); a record that is not an event, with its topic, partition and offset
/// ([`Error::Decode`]: the readers fold the whole log and never skip silently); the broker,
/// or `f`.
pub async fn read_log(
    settings: &Settings,
    codec: &EventCodec,
    follow: bool,
    mut f: impl FnMut(i32, i64, Envelope, Event) -> Result<(), Error>,
) -> Result<(), Error> {
    let (consumer, highs) = kafka::reader_from_beginning(
        &settings.kafka_bootstrap,
        &settings.topic,
        settings.partitions,
    )?;
    let mut positions: Vec<i64> = vec![0; highs.len()];
    // Per partition: the next sequence to hand out (None before its first record), and the
    // events held back behind a gap, by sequence, with their offsets.
    let mut next_seq: Vec<Option<u64>> = vec![None; highs.len()];
    let mut held: Vec<BTreeMap<u64, (i64, Envelope, Event)>> =
        (0..highs.len()).map(|_| BTreeMap::new()).collect();
    let done = |positions: &[i64]| positions.iter().zip(&highs).all(|(p, h)| p >= h);
    if !follow && done(&positions) {
        return Ok(());
    }
    loop {
        let msg = match tokio::time::timeout(
            Duration::from_secs(if follow { 3600 } else { 30 }),
            consumer.recv(),
        )
        .await
        {
            Ok(m) => m?,
            Err(_) if follow => continue,
            Err(_) => {
                let gap = first_gap(&next_seq, &held).map_or(String::new(), |g| format!("; {g}"));
                return Err(Error::Timeout {
                    reading: format!("the log (positions {positions:?}, ends {highs:?}){gap}"),
                });
            }
        };
        let partition = msg.partition();
        let offset = msg.offset();
        let idx = usize::try_from(partition).map_err(|_| Error::UnknownPartition(partition))?;
        let (envelope, event) =
            codec
                .decode_record(msg.payload())
                .await
                .map_err(|source| Error::Decode {
                    topic: settings.topic.clone(),
                    partition,
                    offset,
                    source,
                })?;
        if let Some(slot) = positions.get_mut(idx) {
            *slot = offset + 1;
        }
        let (Some(next), Some(waiting)) = (next_seq.get_mut(idx), held.get_mut(idx)) else {
            return Err(Error::UnknownPartition(partition));
        };
        // A partition starts at sequence 1, or where the broker's retention left it.
        let expected = next.get_or_insert(if offset == 0 { 1 } else { envelope.sequence });
        if envelope.sequence == *expected {
            f(partition, offset, envelope, event)?;
            *expected += 1;
            while let Some((offset, envelope, event)) = waiting.remove(expected) {
                f(partition, offset, envelope, event)?;
                *expected += 1;
            }
        } else if envelope.sequence > *expected {
            waiting
                .entry(envelope.sequence)
                .or_insert((offset, envelope, event));
            if held.iter().map(BTreeMap::len).sum::<usize>() > HOLD_LIMIT {
                if let Some(open) = first_gap(&next_seq, &held) {
                    return Err(Error::TooManyHeld(open));
                }
            }
        }
        if !follow && done(&positions) {
            consumer.unassign()?;
            if let Some(open) = first_gap(&next_seq, &held) {
                return Err(Error::GapAtEnd(open));
            }
            return Ok(());
        }
    }
}

/// An aggregate's state folded from the log.
#[derive(Debug, Clone)]
pub struct Folded {
    pub client: uuid::Uuid,
    /// The version of its last event (its number of events).
    pub version: u64,
    pub state: State,
    pub last_event_at: OffsetDateTime,
}

/// Folds the whole log into aggregate states exactly as the command handler would.
///
/// Errors: those of [`read_log`]; an aggregate whose versions do not follow one another
/// ([`Error::VersionJump`]).
pub async fn fold_log(
    settings: &Settings,
    codec: &EventCodec,
) -> Result<BTreeMap<AggregateRef, Folded>, Error> {
    let mut states: BTreeMap<AggregateRef, Folded> = BTreeMap::new();
    read_log(settings, codec, false, |_, _, envelope, event| {
        let target = AggregateRef {
            kind: envelope.aggregate_type,
            id: envelope.aggregate_id,
        };
        let entry = states.entry(target).or_insert_with(|| Folded {
            client: envelope.client_id.0,
            version: 0,
            state: State::initial(target),
            last_event_at: envelope.occurred_at,
        });
        if envelope.aggregate_version != entry.version + 1 {
            return Err(Error::VersionJump {
                aggregate: format!("{} {}", target.kind, target.id),
                from: entry.version,
                to: envelope.aggregate_version,
            });
        }
        let state = std::mem::replace(&mut entry.state, State::initial(target));
        entry.state = evolve(state, envelope.client_id, &event);
        entry.version = envelope.aggregate_version;
        entry.last_event_at = envelope.occurred_at;
        Ok(())
    })
    .await?;
    Ok(states)
}

/// What [`rebuild_snapshots`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotsRebuilt {
    /// Aggregates folded from the log.
    pub aggregates: usize,
    /// Rows in one of `snapshots` and `snapshots_rebuilt` but not in the other.
    pub differing: i64,
    /// Whether `snapshots` was replaced by the rebuilt rows (asked for, and they differed).
    pub replaced: bool,
}

/// Rebuilds `snapshots` from the log into `snapshots_rebuilt` (created when missing) and
/// compares the two; with `replace`, the snapshot table takes the rebuilt rows when they
/// differ, in the same transaction.
///
/// Errors: committed events not yet published ([`Error::Unpublished`]: the log would be
/// short of them); those of [`fold_log`]; Postgres.
pub async fn rebuild_snapshots(
    pool: &PgPool,
    settings: &Settings,
    codec: &EventCodec,
    replace: bool,
) -> Result<SnapshotsRebuilt, Error> {
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        .fetch_one(pool)
        .await?;
    if pending > 0 {
        return Err(Error::Unpublished(pending));
    }
    let states = fold_log(settings, codec).await?;
    let mut tx = pool.begin().await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS snapshots_rebuilt (LIKE snapshots INCLUDING ALL)")
        .execute(&mut *tx)
        .await?;
    sqlx::query("TRUNCATE snapshots_rebuilt")
        .execute(&mut *tx)
        .await?;
    for (target, r) in &states {
        sqlx::query(
            "INSERT INTO snapshots_rebuilt (aggregate_type, aggregate_id, client_id, version, state, last_event_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(target.kind.as_str())
        .bind(target.id)
        .bind(r.client)
        .bind(i64::try_from(r.version).map_err(|_| Error::Range(format!("version {}", r.version)))?)
        .bind(serde_json::to_value(&r.state)?)
        .bind(r.last_event_at)
        .execute(&mut *tx)
        .await?;
    }
    let differing: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM ((SELECT * FROM snapshots EXCEPT SELECT * FROM snapshots_rebuilt) UNION ALL (SELECT * FROM snapshots_rebuilt EXCEPT SELECT * FROM snapshots)) d",
    )
    .fetch_one(&mut *tx)
    .await?;
    if differing > 0 && replace {
        sqlx::query("DELETE FROM snapshots")
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO snapshots SELECT * FROM snapshots_rebuilt")
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(SnapshotsRebuilt {
        aggregates: states.len(),
        differing,
        replaced: differing > 0 && replace,
    })
}

/// A time window of the log read partition by partition: each partition from the first record
/// whose broker timestamp is at or after `from − slack` (found with `offsets_for_times`), up
/// to its high watermark at the start, or until an event occurred at or after `to + slack`.
/// Records carry the time the relay published them, which is after the event occurred, so
/// the seek never skips an event of the window; the slack covers clock differences between
/// hosts and events committed in another order than they occurred. Events are then filtered
/// exactly by `occurred_at` (at or after `from`, before `to`), each handed out once: a record
/// whose sequence is at or below the last one seen in its partition (a relay re-publish) is
/// skipped.
pub struct WindowReader {
    consumer: rdkafka::consumer::StreamConsumer,
    topic: String,
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
    stop_at: Option<OffsetDateTime>,
    ends: Vec<i64>,
    open: Vec<bool>,
    last_seq: Vec<Option<u64>>,
    /// Records read from the broker so far (inside the window or not).
    pub records: u64,
}

impl WindowReader {
    /// Seeks every partition of the topic of `settings` to the window.
    ///
    /// Errors: the topic has another number of partitions than `settings` says
    /// ([`Error::PartitionCount`]); a slack or partition count out of range
    /// ([`Error::Range`]); the broker.
    pub async fn open(
        settings: &Settings,
        from: Option<OffsetDateTime>,
        to: Option<OffsetDateTime>,
        slack: Duration,
    ) -> Result<WindowReader, Error> {
        use rdkafka::config::ClientConfig;
        use rdkafka::{Offset, TopicPartitionList};
        let topic = settings.topic.clone();
        let consumer: rdkafka::consumer::StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &settings.kafka_bootstrap)
            .set("group.id", format!("etr-reader-{}", uuid::Uuid::new_v4()))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .set("auto.offset.reset", "earliest")
            .create()?;
        let timeout = Duration::from_secs(10);
        let md = consumer.fetch_metadata(Some(&topic), timeout)?;
        let known = md
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map_or(0, |t| t.partitions().len());
        let range = |what: &str| Error::Range(what.to_owned());
        if known != usize::try_from(settings.partitions).map_err(|_| range("partition count"))? {
            return Err(Error::PartitionCount {
                topic,
                found: known,
                expected: settings.partitions,
            });
        }
        let slack = time::Duration::try_from(slack).map_err(|_| range("clock slack"))?;
        let partitions =
            i32::try_from(settings.partitions).map_err(|_| range("partition count"))?;
        let (mut lows, mut ends) = (Vec::new(), Vec::new());
        for p in 0..partitions {
            let (low, high) = consumer.fetch_watermarks(&topic, p, timeout)?;
            lows.push(low);
            ends.push(high);
        }
        let mut starts = lows.clone();
        if let Some(from) = from {
            let millis = i64::try_from((from - slack).unix_timestamp_nanos() / 1_000_000)
                .unwrap_or(0)
                .max(0);
            let mut wanted = TopicPartitionList::new();
            for p in 0..partitions {
                wanted.add_partition_offset(&topic, p, Offset::Offset(millis))?;
            }
            let found = consumer.offsets_for_times(wanted, timeout)?;
            for element in found.elements() {
                let idx = usize::try_from(element.partition())
                    .map_err(|_| Error::UnknownPartition(element.partition()))?;
                let (Some(start), Some(&end)) = (starts.get_mut(idx), ends.get(idx)) else {
                    continue;
                };
                match (element.error(), element.offset()) {
                    (Ok(()), Offset::Offset(o)) => *start = o.max(*start),
                    // No record at or after the time: nothing of the window in this partition.
                    (Ok(()), Offset::End) => *start = end,
                    // Without a usable answer the partition is read whole and filtered.
                    _ => {}
                }
            }
            // Some brokers (Tansu 0.6) answer the first offset, not "none", when every record
            // is older than the time. When the answer is the start of a partition, its last
            // record tells which it is.
            let from_start: Vec<(i32, i64)> = (0..partitions)
                .zip(&lows)
                .zip(starts.iter().zip(&ends))
                .filter(|((_, low), (start, end))| start <= low && start < end)
                .map(|((p, _), (_, end))| (p, end - 1))
                .collect();
            for (p, stamp) in timestamps_at(settings, &from_start).await? {
                if stamp < millis {
                    let idx = usize::try_from(p).map_err(|_| Error::UnknownPartition(p))?;
                    if let (Some(start), Some(&end)) = (starts.get_mut(idx), ends.get(idx)) {
                        *start = end;
                    }
                }
            }
        }
        let mut assignment = TopicPartitionList::new();
        let mut open = Vec::new();
        for ((p, start), end) in (0..partitions).zip(&starts).zip(&ends) {
            open.push(start < end);
            if start < end {
                assignment.add_partition_offset(&topic, p, Offset::Offset(*start))?;
            }
        }
        if assignment.count() > 0 {
            consumer.assign(&assignment)?;
        }
        Ok(WindowReader {
            consumer,
            topic,
            from,
            to,
            stop_at: to.map(|t| t + slack),
            last_seq: vec![None; ends.len()],
            ends,
            open,
            records: 0,
        })
    }

    /// Stops reading partition `idx`.
    fn close(&mut self, idx: usize) {
        if let Some(open) = self.open.get_mut(idx) {
            *open = false;
        }
        let mut one = rdkafka::TopicPartitionList::new();
        if let Ok(p) = i32::try_from(idx) {
            // Pausing only saves fetching; records of a closed partition are ignored anyway.
            if one
                .add_partition_offset(&self.topic, p, rdkafka::Offset::Invalid)
                .is_ok()
            {
                let _ = self.consumer.pause(&one);
            }
        }
    }

    /// The next events of the window in log order per partition, up to `max`; empty when the
    /// window is exhausted.
    ///
    /// Errors: no record for 30 s ([`Error::Timeout`]); a record without payload
    /// ([`Error::Decode`], with its position); an undecodable record; the broker.
    pub async fn next_batch(
        &mut self,
        codec: &EventCodec,
        max: usize,
    ) -> Result<Vec<(Envelope, Event)>, Error> {
        let mut batch = Vec::new();
        while batch.len() < max && self.open.iter().any(|o| *o) {
            let msg = tokio::time::timeout(Duration::from_secs(30), self.consumer.recv())
                .await
                .map_err(|_| Error::Timeout {
                    reading: format!("the log (ends {:?})", self.ends),
                })??;
            let partition = msg.partition();
            let idx = usize::try_from(partition).map_err(|_| Error::UnknownPartition(partition))?;
            let offset = msg.offset();
            let end = *self
                .ends
                .get(idx)
                .ok_or(Error::UnknownPartition(partition))?;
            if !self.open.get(idx).copied().unwrap_or(false) {
                continue;
            }
            if offset >= end {
                // Appended after the replay started.
                self.close(idx);
                continue;
            }
            self.records += 1;
            let payload = msg.payload().ok_or_else(|| Error::Decode {
                topic: self.topic.clone(),
                partition,
                offset,
                source: DecodeError::NoPayload,
            })?;
            let (envelope, event) = codec.decode(payload).await?;
            drop(msg);
            if offset + 1 >= end {
                self.close(idx);
            }
            if self.stop_at.is_some_and(|s| envelope.occurred_at >= s) {
                self.close(idx);
                continue;
            }
            let seen = self
                .last_seq
                .get_mut(idx)
                .ok_or(Error::UnknownPartition(partition))?;
            if seen.is_some_and(|s| envelope.sequence <= s) {
                continue;
            }
            *seen = Some(envelope.sequence);
            let inside = self.from.is_none_or(|f| envelope.occurred_at >= f)
                && self.to.is_none_or(|t| envelope.occurred_at < t);
            if inside {
                batch.push((envelope, event));
            }
        }
        if !self.open.iter().any(|o| *o) {
            let _ = self.consumer.unassign();
        }
        Ok(batch)
    }
}

/// The broker timestamps (milliseconds) of the records at the given (partition, offset)s.
async fn timestamps_at(
    settings: &Settings,
    records: &[(i32, i64)],
) -> Result<BTreeMap<i32, i64>, Error> {
    use rdkafka::config::ClientConfig;
    use rdkafka::{Offset, TopicPartitionList};
    let mut found = BTreeMap::new();
    if records.is_empty() {
        return Ok(found);
    }
    let consumer: rdkafka::consumer::StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &settings.kafka_bootstrap)
        .set("group.id", format!("etr-reader-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    for (p, offset) in records {
        assignment.add_partition_offset(&settings.topic, *p, Offset::Offset(*offset))?;
    }
    consumer.assign(&assignment)?;
    while found.len() < records.len() {
        let msg = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .map_err(|_| Error::Timeout {
                reading: "the last records of the log".to_owned(),
            })??;
        let wanted = records.contains(&(msg.partition(), msg.offset()));
        if let (true, Some(stamp)) = (wanted, msg.timestamp().to_millis()) {
            found.insert(msg.partition(), stamp);
        } else if wanted {
            // A record without a timestamp cannot rule the partition out.
            found.insert(msg.partition(), i64::MAX);
        }
    }
    let _ = consumer.unassign();
    Ok(found)
}

/// What a replay into the data platform did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    /// Events of the window loaded into `dp`.
    pub events: usize,
    /// Records read from the broker (the window, plus what the seek could not skip).
    pub records: u64,
}

/// Streams a time window of the log into `dp`: the reader seeks each partition to the window
/// and hands batches to a loader task while it reads on, so memory stays bounded by a few
/// batches.
///
/// Errors: those of [`WindowReader`] and of [`data_platform::load`]; a loader task that
/// panicked ([`Error::Task`]).
pub async fn replay_into_data_platform(
    settings: &Settings,
    pool: &PgPool,
    codec: &EventCodec,
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
    clock_slack: Duration,
) -> Result<Replayed, Error> {
    let mut reader = WindowReader::open(settings, from, to, clock_slack).await?;
    let (batches, mut incoming) = tokio::sync::mpsc::channel::<Vec<(Envelope, Event)>>(2);
    let loader = tokio::spawn({
        let pool = pool.clone();
        async move {
            let mut loaded = 0usize;
            while let Some(batch) = incoming.recv().await {
                data_platform::load(&pool, &batch).await?;
                loaded += batch.len();
            }
            Ok::<usize, Error>(loaded)
        }
    });
    let read: Result<(), Error> = async {
        loop {
            let batch = reader.next_batch(codec, data_platform::BATCH).await?;
            // A closed channel means the loader failed; its error is reported below.
            if batch.is_empty() || batches.send(batch).await.is_err() {
                return Ok(());
            }
        }
    }
    .await;
    drop(batches);
    let events = loader.await.map_err(|source| Error::Task {
        task: "the data platform's loader",
        source,
    })??;
    read?;
    Ok(Replayed {
        events,
        records: reader.records,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_names_its_partition_and_the_missing_sequence() {
        let gap = Gap {
            partition: 3,
            missing: 7,
            held: 2,
            first: 8,
            first_offset: 41,
        };
        assert_eq!(
            Error::GapAtEnd(gap.clone()).to_string(),
            "the log ends with a gap: partition 3: sequence 7 is missing from the log (2 later event(s) held back, the first sequence 8 at offset 41)"
        );
        assert!(Error::TooManyHeld(gap)
            .to_string()
            .starts_with("too many events held back behind a gap: partition 3: sequence 7"));
    }

    #[test]
    fn no_events_held_back_means_no_gap() {
        let held: Vec<BTreeMap<u64, (i64, Envelope, Event)>> = vec![BTreeMap::new(); 4];
        assert_eq!(first_gap(&[Some(5), None, Some(1), None], &held), None);
    }
}
