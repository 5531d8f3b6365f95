//! Reading the log: `etr tail`, `etr rebuild-snapshots` and `etr replay`.

use anyhow::Context as _;
use etr_domain::{evolve, AggregateRef, Envelope, Event, State};
use etr_infra::avro::EventCodec;
use etr_infra::config::Settings;
use etr_infra::kafka;
use rdkafka::consumer::Consumer;
use rdkafka::Message;
use std::collections::BTreeMap;
use std::time::Duration;
use time::OffsetDateTime;

/// How many events [`read_log`] holds back behind gaps before it gives up.
const HOLD_LIMIT: usize = 100_000;

/// Reads the whole log (and, with `follow`, waits for more), decoding every record and
/// handing each event to `f` exactly once and, per partition, in sequence order: a record
/// whose sequence was handed out already (a relay re-publish) is skipped, and an event beyond
/// a missing sequence (the relay re-sent the missing one later, so it sits at a higher
/// offset) is held back until the missing one is read. A partition is expected to start at
/// sequence 1 (at the first retained record when the broker deleted earlier ones).
///
/// Errors: a gap still open at the end of the log (without `follow`) or with more than
/// 100,000 events held back, naming the partition and the missing sequence; a record that
/// is not an event, with its topic, partition and offset (`etr_projections::Error::Decode`:
/// the readers fold the whole log and never skip silently); the broker, or `f`.
pub async fn read_log(
    settings: &Settings,
    codec: &EventCodec,
    follow: bool,
    mut f: impl FnMut(i32, i64, Envelope, Event) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
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
    let gap = |next_seq: &[Option<u64>], held: &[BTreeMap<u64, (i64, Envelope, Event)>]| {
        held.iter()
            .zip(next_seq)
            .enumerate()
            .find_map(|(partition, (events, next))| {
                let (first, (offset, _, _)) = events.iter().next()?;
                Some(format!(
                    "partition {partition}: sequence {} is missing from the log ({} later event(s) held back, the first sequence {first} at offset {offset})",
                    next.unwrap_or(1),
                    events.len()
                ))
            })
    };
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
                anyhow::bail!(
                    "timed out reading the log (positions {positions:?}, ends {highs:?}){}",
                    gap(&next_seq, &held).map_or(String::new(), |g| format!("; {g}"))
                )
            }
        };
        let partition = msg.partition();
        let offset = msg.offset();
        let idx = usize::try_from(partition).context("negative partition")?;
        let (envelope, event) = codec.decode_record(msg.payload()).await.map_err(|source| {
            etr_projections::Error::Decode {
                topic: settings.topic.clone(),
                partition,
                offset,
                source,
            }
        })?;
        if let Some(slot) = positions.get_mut(idx) {
            *slot = offset + 1;
        }
        let (Some(next), Some(waiting)) = (next_seq.get_mut(idx), held.get_mut(idx)) else {
            anyhow::bail!("partition {partition} beyond the configured count");
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
                let open = gap(&next_seq, &held).unwrap_or_default();
                anyhow::bail!("too many events held back behind a gap: {open}");
            }
        }
        if !follow && done(&positions) {
            consumer.unassign()?;
            if let Some(open) = gap(&next_seq, &held) {
                anyhow::bail!("the log ends with a gap: {open}");
            }
            return Ok(());
        }
    }
}

pub async fn tail(
    settings: &Settings,
    follow: bool,
    client: Option<uuid::Uuid>,
) -> anyhow::Result<()> {
    let registry = etr_platform::reader_registry(settings).await?;
    let codec = EventCodec::new(&registry, &settings.topic)?;
    read_log(
        settings,
        &codec,
        follow,
        |partition, offset, envelope, event| {
            if client.is_some_and(|c| c != envelope.client_id.0) {
                return Ok(());
            }
            let line = serde_json::json!({
                "partition": partition,
                "offset": offset,
                "envelope": envelope,
                "event": event,
            });
            println!("{line}");
            Ok(())
        },
    )
    .await
}

struct Rebuilt {
    client: uuid::Uuid,
    version: u64,
    state: State,
    last_event_at: OffsetDateTime,
}

/// Folds the log into aggregate states exactly as the command handler would.
async fn fold_log(settings: &Settings) -> anyhow::Result<BTreeMap<AggregateRef, Rebuilt>> {
    let registry = etr_platform::reader_registry(settings).await?;
    let codec = EventCodec::new(&registry, &settings.topic)?;
    let mut states: BTreeMap<AggregateRef, Rebuilt> = BTreeMap::new();
    read_log(settings, &codec, false, |_, _, envelope, event| {
        let target = AggregateRef {
            kind: envelope.aggregate_type,
            id: envelope.aggregate_id,
        };
        let entry = states.entry(target).or_insert_with(|| Rebuilt {
            client: envelope.client_id.0,
            version: 0,
            state: State::initial(target),
            last_event_at: envelope.occurred_at,
        });
        anyhow::ensure!(
            envelope.aggregate_version == entry.version + 1,
            "{} {} jumps from version {} to {}",
            target.kind,
            target.id,
            entry.version,
            envelope.aggregate_version
        );
        let state = std::mem::replace(&mut entry.state, State::initial(target));
        entry.state = evolve(state, envelope.client_id, &event);
        entry.version = envelope.aggregate_version;
        entry.last_event_at = envelope.occurred_at;
        Ok(())
    })
    .await?;
    Ok(states)
}

/// Rebuilds `snapshots` from the log into `snapshots_rebuilt` and compares the two.
/// Returns the number of differing rows.
pub async fn rebuild_snapshots(settings: &Settings, replace: bool) -> anyhow::Result<()> {
    let pool = etr_platform::database(settings).await?;
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        .fetch_one(&pool)
        .await?;
    if pending > 0 {
        anyhow::bail!("{pending} committed events are not published yet; run the relay first");
    }
    let states = fold_log(settings).await?;
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
        .bind(i64::try_from(r.version)?)
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
    println!(
        "{}",
        serde_json::json!({"aggregates": states.len(), "differing_rows": differing, "replaced": differing > 0 && replace})
    );
    if differing > 0 && !replace {
        anyhow::bail!("the snapshot table differs from the log in {differing} rows");
    }
    Ok(())
}

fn parse_time(flag: &str, value: Option<String>) -> anyhow::Result<Option<OffsetDateTime>> {
    value
        .map(|v| {
            OffsetDateTime::parse(&v, &time::format_description::well_known::Rfc3339).with_context(
                || format!("{flag} must be an RFC 3339 time, e.g. 2026-11-24T00:00:00Z"),
            )
        })
        .transpose()
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
    pub async fn open(
        settings: &Settings,
        from: Option<OffsetDateTime>,
        to: Option<OffsetDateTime>,
        slack: Duration,
    ) -> anyhow::Result<WindowReader> {
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
        anyhow::ensure!(
            known == usize::try_from(settings.partitions)?,
            "topic {topic} has {known} partitions, expected {} (ETR_PARTITIONS)",
            settings.partitions
        );
        let slack = time::Duration::try_from(slack)?;
        let partitions = i32::try_from(settings.partitions)?;
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
                let idx = usize::try_from(element.partition())?;
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
                    let idx = usize::try_from(p)?;
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
    pub async fn next_batch(
        &mut self,
        codec: &EventCodec,
        max: usize,
    ) -> anyhow::Result<Vec<(Envelope, Event)>> {
        let mut batch = Vec::new();
        while batch.len() < max && self.open.iter().any(|o| *o) {
            let msg = tokio::time::timeout(Duration::from_secs(30), self.consumer.recv())
                .await
                .map_err(|_| {
                    anyhow::anyhow!("timed out reading the log (ends {:?})", self.ends)
                })??;
            let idx = usize::try_from(msg.partition()).context("negative partition")?;
            let offset = msg.offset();
            let end = *self
                .ends
                .get(idx)
                .context("partition beyond the configured count")?;
            if !self.open.get(idx).copied().unwrap_or(false) {
                continue;
            }
            if offset >= end {
                // Appended after the replay started.
                self.close(idx);
                continue;
            }
            self.records += 1;
            let payload = msg.payload().context("record without payload")?;
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
                .context("partition beyond the configured count")?;
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
) -> anyhow::Result<BTreeMap<i32, i64>> {
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
            .context("timed out reading the last records of the log")??;
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
pub struct Replayed {
    /// Events of the window loaded into `dp`.
    pub events: usize,
    /// Records read from the broker (the window, plus what the seek could not skip).
    pub records: u64,
}

/// Streams a time window of the log into `dp`: the reader seeks each partition to the window
/// and hands batches to a loader task while it reads on, so memory stays bounded by a few
/// batches.
pub async fn replay_into_data_platform(
    settings: &Settings,
    pool: &sqlx::PgPool,
    codec: &EventCodec,
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
    clock_slack: Duration,
) -> anyhow::Result<Replayed> {
    use etr_projections::data_platform;
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
            Ok::<usize, etr_projections::Error>(loaded)
        }
    });
    let read: anyhow::Result<()> = async {
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
    let events = loader.await.context("the loader task")??;
    read?;
    Ok(Replayed {
        events,
        records: reader.records,
    })
}

/// `etr replay --into data-platform`: the log (optionally a time window of it) into `dp`;
/// with `parquet`, the fact tables are then written to that directory as Parquet files.
pub async fn replay(
    settings: &Settings,
    into: &str,
    from: Option<String>,
    to: Option<String>,
    parquet: Option<std::path::PathBuf>,
    clock_slack: Duration,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        into == "data-platform",
        "unknown replay target `{into}` (known: data-platform)"
    );
    let (from, to) = (parse_time("--from", from)?, parse_time("--to", to)?);
    if let (Some(f), Some(t)) = (from, to) {
        anyhow::ensure!(f < t, "--from must be before --to");
    }
    let pool = etr_platform::database(settings).await?;
    let registry = etr_platform::reader_registry(settings).await?;
    let codec = EventCodec::new(&registry, &settings.topic)?;
    let started = std::time::Instant::now();
    let replayed =
        replay_into_data_platform(settings, &pool, &codec, from, to, clock_slack).await?;
    let millis = started.elapsed().as_millis().max(1);
    let per_second = u128::try_from(replayed.events).unwrap_or(0) * 1_000 / millis;
    let files = match parquet {
        Some(dir) => etr_projections::data_platform::write_parquet(&pool, &dir)
            .await?
            .into_iter()
            .map(|f| serde_json::json!({"table": f.table, "file": f.path, "rows": f.rows}))
            .collect(),
        None => Vec::new(),
    };
    println!(
        "{}",
        serde_json::json!({"into": "data-platform", "events": replayed.events, "records_read": replayed.records,
                           "millis": millis, "events_per_second": per_second, "parquet": files})
    );
    Ok(())
}
