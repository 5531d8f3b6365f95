//! The outbox relay: publishes committed events to the Kafka log in sequence order per
//! partition and records, per partition, how far the broker has acknowledged them.
//!
//! **One publisher, fenced.** The relay that publishes holds the lease row `relay_lease`,
//! which carries a fencing epoch. A relay takes the lease when nobody holds it, when it has
//! lapsed, or when it is held under the relay's own name (a restarted process); taking it
//! bumps the epoch. The holder checks the lease at the start of every pass and renews it once
//! a third of its term has gone. Every mark is written by one statement that first renews the
//! lease `WHERE epoch = <its epoch>`, and only while it has not lapsed. A relay whose lease
//! was taken or lapsed therefore marks nothing and stops publishing. It stands back for two
//! standby polls, so that a standby takes over, and then waits for the lease like any other
//! relay. If the lease is lost in the middle of a pass, both relays may send that pass's
//! events. They carry the same sequence numbers, and consumers skip anything at or below the
//! last sequence they applied per partition, so a re-send changes nothing downstream.
//!
//! **Watermarks.** `relay_watermarks` holds, per partition, the last sequence that the broker
//! acknowledged together with every sequence before it. A pass reads each partition's rows
//! above its watermark (at most [`BATCH`] of them, by primary key), encodes and sends them in
//! order (the idempotent producer keeps the order), and moves the watermark to the last
//! acknowledged sequence of the contiguous run. That is one row per partition and pass, never
//! one per event. A crash between the broker's ack and the mark publishes those events again
//! with the same sequence numbers.
//!
//! **Stalls stay in their partition.** A row that cannot be published (an event its schema
//! does not describe, an envelope that does not match its row, the registry unreachable, a
//! failed send) holds its own partition at that row. The row is never skipped, because a
//! partition's order is its clients' timelines. The relay logs it with partition, sequence
//! and reason, records it in `relay_watermarks` (`stalled_sequence`, `stall_reason`, and
//! `encode_failures`, which counts encode failures), and retries it with backoff (200 ms,
//! doubling up to 10 s). The other partitions keep publishing.
//!
//! **Pruning.** Beside publishing, the lease holder deletes rows that are at or below their
//! partition's watermark and were committed longer ago than the retention (default one hour,
//! `ETR_OUTBOX_RETENTION_SECS`). It deletes in chunks of [`PRUNE_CHUNK`] rows every 30 s. The
//! log, not the outbox, is the history: nothing reads published outbox rows.
//!
//! The command handler of its own process wakes the relay after a commit. Otherwise it polls
//! every 100 ms (commits do not `NOTIFY`, because Postgres serialises every committing
//! transaction that notifies), so nothing stays unpublished after a crash or when the command
//! API runs in another process.
//!
//! The rows live in `outbox_events`. `outbox` is a view over it that keeps the old
//! `published_at` column for existing readers, derived from the watermark. It is NULL exactly
//! for the events that are not published yet.

use etr_domain::{Envelope, Event};
use etr_infra::avro::EventCodec;
use futures::future::join_all;
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

use crate::error::Error;

/// Rows read per partition and pass.
pub const BATCH: i64 = 1_000;
/// Rows deleted per pruning statement.
pub const PRUNE_CHUNK: u32 = 5_000;
/// How long published events stay in the outbox unless configured otherwise.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(3_600);
/// How often the lease holder prunes the outbox unless configured otherwise.
pub const DEFAULT_PRUNE_INTERVAL: Duration = Duration::from_secs(30);
/// The term of the relay lease. A relay that dies is replaced within this time (at once when
/// it restarts under the same name).
pub const LEASE_TERM: Duration = Duration::from_secs(10);
/// How often a relay without the lease tries to take it.
const STANDBY_POLL: Duration = Duration::from_secs(1);
/// How often an idle lease holder looks for events nobody woke it for.
const IDLE_POLL: Duration = Duration::from_millis(100);
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Takes the lease when nobody holds it, it lapsed, or it is held under this relay's name `$1`;
/// bumping the epoch fences every earlier holder. `$2` is the term in seconds.
const TAKE_LEASE: &str = "\
UPDATE relay_lease
   SET holder = $1, epoch = epoch + 1, expires_at = clock_timestamp() + make_interval(secs => $2)
 WHERE id = 1 AND (holder IS NULL OR holder = $1 OR expires_at < clock_timestamp())
RETURNING epoch";

/// Renews the lease of epoch `$1` for `$2` seconds; matches no row when it was taken or has
/// lapsed (a lapsed lease is anybody's to take, so its holder cannot know it is still its own).
const RENEW_LEASE: &str = "\
UPDATE relay_lease SET expires_at = clock_timestamp() + make_interval(secs => $2)
 WHERE id = 1 AND epoch = $1 AND expires_at > clock_timestamp()";

/// Whether the lease of epoch `$1` is still held and has not lapsed.
const CHECK_LEASE: &str = "\
SELECT epoch = $1 AND expires_at > clock_timestamp() FROM relay_lease WHERE id = 1";

/// Per partition with events above its watermark (the partition head says so without
/// touching the outbox) and not backing off (`$2`): its watermark and up to `$1` rows above it,
/// in sequence order.
const PENDING: &str = "\
SELECT h.partition, COALESCE(w.published_sequence, 0) AS published, o.sequence,
       o.envelope::text AS envelope, o.event::text AS event
  FROM partition_heads h
  LEFT JOIN relay_watermarks w ON w.partition = h.partition
 CROSS JOIN LATERAL (
       SELECT sequence, envelope, event
         FROM outbox_events
        WHERE partition = h.partition AND sequence > COALESCE(w.published_sequence, 0)
        ORDER BY sequence
        LIMIT $1
       ) o
 WHERE h.sequence > COALESCE(w.published_sequence, 0)
   AND h.partition <> ALL($2::int[])
 ORDER BY h.partition, o.sequence";

/// One statement per pass: renews the lease of epoch `$1` (for `$2` seconds; see
/// [`RENEW_LEASE`]) and, only if that matched, writes each partition's new watermark and
/// stall. Returns whether the lease was still held; when it was not, nothing is written.
const MARK: &str = "\
WITH lease AS (
    UPDATE relay_lease SET expires_at = clock_timestamp() + make_interval(secs => $2)
     WHERE id = 1 AND epoch = $1 AND expires_at > clock_timestamp()
    RETURNING 1
), marked AS (
    INSERT INTO relay_watermarks AS w
           (partition, published_sequence, updated_at, stalled_sequence, stall_reason, encode_failures)
    SELECT m.partition, m.published, clock_timestamp(), m.stalled, m.reason, m.failures
      FROM UNNEST($3::int[], $4::bigint[], $5::bigint[], $6::text[], $7::bigint[])
           AS m(partition, published, stalled, reason, failures)
     WHERE EXISTS (SELECT 1 FROM lease)
    ON CONFLICT (partition) DO UPDATE
       SET published_sequence = GREATEST(w.published_sequence, EXCLUDED.published_sequence),
           updated_at = CASE WHEN EXCLUDED.published_sequence > w.published_sequence
                             THEN EXCLUDED.updated_at ELSE w.updated_at END,
           stalled_sequence = EXCLUDED.stalled_sequence,
           stall_reason = EXCLUDED.stall_reason,
           encode_failures = w.encode_failures + EXCLUDED.encode_failures
)
SELECT count(*) FROM lease";

/// Deletes the oldest rows of partition `$1`, at most `$3`: those at or below its watermark,
/// up to (not including) the first one committed less than `$2` seconds ago.
const PRUNE: &str = "\
WITH chunk AS (
    SELECT sequence, committed_at
      FROM outbox_events
     WHERE partition = $1
       AND sequence <= (SELECT published_sequence FROM relay_watermarks WHERE partition = $1)
     ORDER BY sequence
     LIMIT $3
), horizon AS (
    SELECT COALESCE(
               min(sequence) FILTER (WHERE committed_at >= clock_timestamp() - make_interval(secs => $2)) - 1,
               max(sequence)) AS last
      FROM chunk
)
DELETE FROM outbox_events
 WHERE partition = $1 AND sequence <= (SELECT last FROM horizon)";

/// The outbox relay. [`Relay::run`] publishes while this relay holds the lease.
pub struct Relay {
    pool: PgPool,
    producer: FutureProducer,
    codec: EventCodec,
    topic: String,
    wake: Arc<Notify>,
    holder: String,
    retention: Duration,
    prune_interval: Duration,
    published: AtomicU64,
    encode_failures: AtomicU64,
    stalls: Mutex<HashMap<i32, Held>>,
}

/// A partition held at a row that could not be published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stall {
    pub partition: i32,
    /// The sequence of the row that holds the partition.
    pub sequence: i64,
    pub reason: String,
    /// Consecutive failed attempts at that row.
    pub attempts: u32,
}

#[derive(Debug)]
struct Held {
    stall: Stall,
    retry_at: Instant,
}

/// The lease as this relay holds it.
#[derive(Debug, Clone, Copy)]
struct Lease {
    epoch: i64,
    renewed: Instant,
}

/// A row above its partition's watermark.
#[derive(sqlx::FromRow)]
struct Pending {
    partition: i32,
    published: i64,
    sequence: i64,
    /// JSON text, parsed only here (a row that does not parse stalls its partition alone).
    envelope: String,
    event: String,
}

/// Why a partition stopped where it did in a pass.
#[derive(Debug)]
enum Stop {
    /// The row at this sequence cannot be encoded.
    Encode(i64, String),
    /// The row at this sequence is not in the outbox (rows are dense per partition).
    Missing(i64, String),
    /// The broker did not acknowledge the row at this sequence.
    Send(i64, String),
}

impl Stop {
    fn sequence(&self) -> i64 {
        match self {
            Stop::Encode(s, _) | Stop::Missing(s, _) | Stop::Send(s, _) => *s,
        }
    }

    fn reason(&self) -> &str {
        match self {
            Stop::Encode(_, r) | Stop::Missing(_, r) | Stop::Send(_, r) => r,
        }
    }
}

/// What one partition did in a pass.
#[derive(Debug)]
struct Progress {
    partition: i32,
    /// The watermark before the pass.
    from: i64,
    /// The last sequence acknowledged in order.
    to: i64,
    /// Rows read (a full batch means more are waiting).
    read: usize,
    stop: Option<Stop>,
}

/// One partition's row of the mark statement.
#[derive(Debug, Default)]
struct Marks {
    partitions: Vec<i32>,
    published: Vec<i64>,
    stalled: Vec<Option<i64>>,
    reasons: Vec<Option<String>>,
    encode_failures: Vec<i64>,
}

fn backoff(attempts: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1 << attempts.saturating_sub(1).min(16))
        .min(MAX_BACKOFF)
}

impl Relay {
    /// A relay publishing `pool`'s outbox to `topic`, woken by `wake` (the command handler of
    /// this process notifies it after each commit). Published events are kept for
    /// [`DEFAULT_RETENTION`] unless [`Relay::with_retention`] says otherwise.
    pub fn new(
        pool: PgPool,
        producer: FutureProducer,
        codec: EventCodec,
        topic: String,
        wake: Arc<Notify>,
    ) -> Relay {
        Relay {
            pool,
            producer,
            codec,
            topic,
            wake,
            holder: format!(
                "relay-{}-{}",
                std::process::id(),
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
            retention: DEFAULT_RETENTION,
            prune_interval: DEFAULT_PRUNE_INTERVAL,
            published: AtomicU64::new(0),
            encode_failures: AtomicU64::new(0),
            stalls: Mutex::new(HashMap::new()),
        }
    }

    /// How long published events stay in the outbox before they are pruned (the log keeps
    /// every event forever).
    pub fn with_retention(mut self, retention: Duration) -> Relay {
        self.retention = retention;
        self
    }

    /// The name this relay takes the lease under; by default one of its own, so that another
    /// relay (or this process restarted) waits for the lease to lapse after it stops. A
    /// relay named as before a restart takes its lease back at once, as a partition writer
    /// does; two running relays must not share a name.
    pub fn with_holder(mut self, holder: impl Into<String>) -> Relay {
        self.holder = holder.into();
        self
    }

    /// How often the lease holder prunes the outbox ([`DEFAULT_PRUNE_INTERVAL`] by default).
    pub fn with_prune_interval(mut self, interval: Duration) -> Relay {
        self.prune_interval = interval;
        self
    }

    /// The name this relay holds the lease under (`relay_lease.holder`).
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Events the broker acknowledged from this relay since it was built.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }

    /// Failed attempts to encode a row since this relay was built.
    pub fn encode_failures(&self) -> u64 {
        self.encode_failures.load(Ordering::Relaxed)
    }

    /// The partitions this relay holds at a row it could not publish.
    pub fn stalls(&self) -> Vec<Stall> {
        let mut stalls: Vec<Stall> = self.held().values().map(|h| h.stall.clone()).collect();
        stalls.sort_by_key(|s| s.partition);
        stalls
    }

    fn held(&self) -> MutexGuard<'_, HashMap<i32, Held>> {
        self.stalls
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs forever: waits for the lease, then publishes and prunes while it holds it, and
    /// waits again when another relay takes it. Postgres and broker errors are logged and
    /// retried here; the caller restarts it if it ever returns an error.
    pub async fn run(&self) -> Result<(), Error> {
        loop {
            let lease = self.take_lease().await;
            tracing::info!(topic = %self.topic, holder = %self.holder, epoch = lease.epoch, "relay lease taken, publishing the outbox");
            self.held().clear();
            tokio::select! {
                () = self.publish(lease) => {}
                () = self.prune_forever() => {}
            }
            tracing::warn!(holder = %self.holder, epoch = lease.epoch, "relay lease lapsed or taken; stopped publishing");
            // Stand back for two polls, so that a standby relay takes over from one that
            // could not keep its lease.
            tokio::time::sleep(STANDBY_POLL * 2).await;
        }
    }

    /// Waits until this relay holds the lease.
    async fn take_lease(&self) -> Lease {
        loop {
            let taken: Result<Option<i64>, sqlx::Error> = sqlx::query_scalar(TAKE_LEASE)
                .bind(&self.holder)
                .bind(LEASE_TERM.as_secs_f64())
                .fetch_optional(&self.pool)
                .await;
            match taken {
                Ok(Some(epoch)) => {
                    return Lease {
                        epoch,
                        renewed: Instant::now(),
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "relay lease: Postgres does not answer"),
            }
            tokio::time::sleep(STANDBY_POLL).await;
        }
    }

    /// Publishes until the lease is lost.
    async fn publish(&self, mut lease: Lease) {
        loop {
            match self.pass(&mut lease).await {
                Ok(None) => return,
                Ok(Some(true)) => continue,
                Ok(Some(_)) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "relay pass failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
            }
        }
    }

    /// Whether the lease is still this relay's: renewed once a third of its term has gone,
    /// otherwise its epoch read.
    async fn check_lease(&self, lease: &mut Lease) -> Result<bool, Error> {
        if lease.renewed.elapsed() >= LEASE_TERM / 3 {
            let renewed = sqlx::query(RENEW_LEASE)
                .bind(lease.epoch)
                .bind(LEASE_TERM.as_secs_f64())
                .execute(&self.pool)
                .await?
                .rows_affected()
                == 1;
            if renewed {
                lease.renewed = Instant::now();
            }
            return Ok(renewed);
        }
        let held: Option<bool> = sqlx::query_scalar(CHECK_LEASE)
            .bind(lease.epoch)
            .fetch_optional(&self.pool)
            .await?;
        Ok(held == Some(true))
    }

    /// One pass: every partition with events above its watermark, except those backing off,
    /// publishes up to [`BATCH`] of them in order, concurrently with the other partitions; then
    /// one statement marks them all. `None` when the lease was lost (nothing marked).
    async fn pass(&self, lease: &mut Lease) -> Result<Option<bool>, Error> {
        if !self.check_lease(lease).await? {
            return Ok(None);
        }
        let now = Instant::now();
        let waiting: Vec<i32> = self
            .held()
            .iter()
            .filter(|(_, h)| h.retry_at > now)
            .map(|(p, _)| *p)
            .collect();
        let rows: Vec<Pending> = sqlx::query_as(PENDING)
            .bind(BATCH)
            .bind(&waiting)
            .fetch_all(&self.pool)
            .await?;
        let read = now.elapsed();
        let partitions = rows.chunk_by(|a, b| a.partition == b.partition);
        let progress = join_all(partitions.map(|rows| self.publish_partition(rows))).await;
        tracing::debug!(
            rows = rows.len(),
            read_ms = read.as_millis() as u64,
            published_ms = (now.elapsed() - read).as_millis() as u64,
            "relay pass"
        );

        let (more, marks) = self.settle(progress);
        if marks.partitions.is_empty() {
            return Ok(Some(more));
        }
        let held_lease: i64 = sqlx::query_scalar(MARK)
            .bind(lease.epoch)
            .bind(LEASE_TERM.as_secs_f64())
            .bind(&marks.partitions)
            .bind(&marks.published)
            .bind(&marks.stalled)
            .bind(&marks.reasons)
            .bind(&marks.encode_failures)
            .fetch_one(&self.pool)
            .await?;
        if held_lease != 1 {
            return Ok(None);
        }
        lease.renewed = Instant::now();
        Ok(Some(more))
    }

    /// Books one pass's progress: the stalls this relay holds (with their backoff) and the
    /// marks to write.
    fn settle(&self, progress: Vec<Progress>) -> (bool, Marks) {
        let mut more = false;
        let mut marks = Marks::default();
        let mut held = self.held();
        for p in progress {
            more |= p.stop.is_none() && i64::try_from(p.read).is_ok_and(|r| r >= BATCH);
            let was_held = match p.stop {
                None => held.remove(&p.partition).is_some(),
                Some(ref stop) => {
                    let attempts = match held.get(&p.partition) {
                        Some(h) if h.stall.sequence == stop.sequence() => h.stall.attempts + 1,
                        _ => 1,
                    };
                    let retry_in = backoff(attempts);
                    tracing::error!(
                        topic = %self.topic,
                        partition = p.partition,
                        sequence = stop.sequence(),
                        attempts,
                        retry_in_ms = u64::try_from(retry_in.as_millis()).unwrap_or(u64::MAX),
                        reason = stop.reason(),
                        "outbox row cannot be published; its partition waits, the others go on"
                    );
                    held.insert(
                        p.partition,
                        Held {
                            stall: Stall {
                                partition: p.partition,
                                sequence: stop.sequence(),
                                reason: stop.reason().to_owned(),
                                attempts,
                            },
                            retry_at: Instant::now() + retry_in,
                        },
                    );
                    true
                }
            };
            if p.to == p.from && !was_held {
                continue;
            }
            let encode_failure = matches!(p.stop, Some(Stop::Encode(..)));
            if encode_failure {
                self.encode_failures.fetch_add(1, Ordering::Relaxed);
            }
            marks.partitions.push(p.partition);
            marks.published.push(p.to);
            marks.stalled.push(p.stop.as_ref().map(Stop::sequence));
            marks
                .reasons
                .push(p.stop.as_ref().map(|s| s.reason().to_owned()));
            marks.encode_failures.push(i64::from(encode_failure));
        }
        (more, marks)
    }

    /// Encodes one partition's rows in order up to the first that cannot be encoded, sends
    /// them, and reports the last sequence acknowledged in order.
    async fn publish_partition(&self, rows: &[Pending]) -> Progress {
        let (partition, from) = (rows[0].partition, rows[0].published);
        let started = Instant::now();
        let mut stop = None;
        let mut records = Vec::with_capacity(rows.len());
        for (expected, row) in (from + 1..).zip(rows) {
            if row.sequence != expected {
                stop = Some(Stop::Missing(
                    expected,
                    format!(
                        "sequence {expected} is not in the outbox (the next row is {})",
                        row.sequence
                    ),
                ));
                break;
            }
            match self.encode(row).await {
                Ok(record) => records.push(record),
                Err(reason) => {
                    stop = Some(Stop::Encode(row.sequence, reason));
                    break;
                }
            }
        }
        let sends = records.iter().map(|(key, bytes)| {
            self.producer.send(
                FutureRecord::to(&self.topic)
                    .partition(partition)
                    .key(key)
                    .payload(bytes),
                SEND_TIMEOUT,
            )
        });
        let encoded = started.elapsed();
        let results = join_all(sends).await;
        tracing::debug!(
            partition,
            records = records.len(),
            encode_ms = encoded.as_millis() as u64,
            acked_ms = (started.elapsed() - encoded).as_millis() as u64,
            "relay partition sent"
        );
        let acked = results.iter().take_while(|r| r.is_ok()).count();
        self.published
            .fetch_add(u64::try_from(acked).unwrap_or(0), Ordering::Relaxed);
        let to = from + i64::try_from(acked).unwrap_or(0);
        if let Some(Err((e, _))) = results.get(acked) {
            stop = Some(Stop::Send(to + 1, e.to_string()));
        }
        Progress {
            partition,
            from,
            to,
            read: rows.len(),
            stop,
        }
    }

    /// The record of one row (key: the client id), or why there is none.
    async fn encode(&self, row: &Pending) -> Result<(String, Vec<u8>), String> {
        let envelope: Envelope = serde_json::from_str(&row.envelope)
            .map_err(|e| format!("envelope does not parse: {e}"))?;
        let event: Event =
            serde_json::from_str(&row.event).map_err(|e| format!("event does not parse: {e}"))?;
        if i64::from(envelope.partition) != i64::from(row.partition)
            || i64::try_from(envelope.sequence).ok() != Some(row.sequence)
        {
            return Err(format!(
                "the envelope says partition {} sequence {}",
                envelope.partition, envelope.sequence
            ));
        }
        let bytes = self
            .codec
            .encode(&envelope, &event)
            .await
            .map_err(|e| e.to_string())?;
        Ok((envelope.client_id.to_string(), bytes))
    }

    /// Prunes every [`Relay::with_prune_interval`]; never returns.
    async fn prune_forever(&self) {
        loop {
            tokio::time::sleep(self.prune_interval).await;
            match self.prune().await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "outbox pruned"),
                Err(e) => tracing::warn!(error = %e, "outbox pruning failed; trying again later"),
            }
        }
    }

    /// Deletes published rows older than the retention, [`PRUNE_CHUNK`] rows per statement;
    /// returns how many.
    async fn prune(&self) -> Result<u64, Error> {
        let partitions: Vec<i32> =
            sqlx::query_scalar("SELECT partition FROM relay_watermarks ORDER BY partition")
                .fetch_all(&self.pool)
                .await?;
        let mut deleted = 0;
        for partition in partitions {
            loop {
                let chunk = sqlx::query(PRUNE)
                    .bind(partition)
                    .bind(self.retention.as_secs_f64())
                    .bind(i64::from(PRUNE_CHUNK))
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                deleted += chunk;
                if chunk < u64::from(PRUNE_CHUNK) {
                    break;
                }
            }
        }
        Ok(deleted)
    }
}
