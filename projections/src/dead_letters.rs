//! Dead letters: records of the log a consumer could not decode (no payload, no magic byte,
//! an unknown schema id, a truncated body, an envelope naming another partition), kept in
//! the table `dead_letters` with their position (consumer, topic, partition, offset), their
//! key and payload bytes and the reason, so the consumer goes on and an operator can find
//! them, fix the cause (register the missing schema, …) and retry them.
//!
//! Recording is idempotent on (consumer, topic, partition, offset): a consumer that reads
//! the record again after a restart changes nothing.
//!
//! **Dead letters and gaps.** A record that cannot be decoded has no known sequence. If it
//! was not an event (garbage, a tombstone) nothing waits for it. If it was event s+1 of its
//! partition, the projection never applies past the gap: s+2… stay held back (in the
//! projector's memory, their offsets not committed) until the dead letter is retried
//! successfully. [`retry`] applies it through [`apply_in_order`], so the gap rule holds
//! there too, and the projector, which tries its held events again every
//! [`RETRY_EVERY`](crate::runtime::RETRY_EVERY), then applies the rest. Other partitions
//! keep flowing meanwhile. A dead letter that decodes but is itself beyond a gap (an earlier
//! event of its partition is missing too) stays open, reason updated; retry it again once
//! the earlier one is applied (retrying every open letter of a consumer at once applies them
//! together, in sequence order).
//!
//! Operator entry points (`etr dead-letters list|retry`): [`list`] and [`retry`] (or
//! [`retry_with`] for a projection of another crate).

use etr_domain::{Envelope, Event};
use etr_infra::avro::EventCodec;
use serde::Serialize;
use sqlx::PgPool;
use std::collections::BTreeMap;
use time::OffsetDateTime;

use crate::error::Error;
use crate::lending::Lending;
use crate::runtime::{apply_in_order, on_partition, Projection};
use crate::timeline::Timeline;
use crate::wallets::Wallets;

/// The prefix of a projection's consumer name.
pub const PROJECTION_PREFIX: &str = "projection.";

/// The consumer name a projection's dead letters are recorded under: `projection.<name>`.
pub fn projection_consumer(projection: &str) -> String {
    format!("{PROJECTION_PREFIX}{projection}")
}

/// A record to dead-letter.
#[derive(Debug, Clone)]
pub struct Letter {
    /// Who could not read it, e.g. `projection.wallets`.
    pub consumer: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    /// `None` for a null payload (a tombstone).
    pub payload: Option<Vec<u8>>,
    /// Why it could not be read.
    pub reason: String,
}

/// Records `letters` (one transaction); a record already recorded for its consumer is left
/// as it is. Returns how many were new. Errors: Postgres.
pub async fn record(pool: &PgPool, letters: &[Letter]) -> Result<u64, Error> {
    let mut tx = pool.begin().await?;
    let mut new = 0;
    for l in letters {
        new += sqlx::query(
            "INSERT INTO dead_letters (consumer, topic, partition, record_offset, key, payload, reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT ON CONSTRAINT dead_letters_position DO NOTHING",
        )
        .bind(&l.consumer)
        .bind(&l.topic)
        .bind(l.partition)
        .bind(l.offset)
        .bind(&l.key)
        .bind(&l.payload)
        .bind(&l.reason)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    tx.commit().await?;
    Ok(new)
}

/// One row of the dead-letter table. In JSON, key and payload are hex.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DeadLetter {
    pub id: i64,
    pub consumer: String,
    pub topic: String,
    pub partition: i32,
    #[sqlx(rename = "record_offset")]
    pub offset: i64,
    #[serde(serialize_with = "hex")]
    pub key: Option<Vec<u8>>,
    #[serde(serialize_with = "hex")]
    pub payload: Option<Vec<u8>>,
    /// Why it could not be read (or, once it decodes, why it is still open), from the last
    /// attempt.
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
    /// Operator retries so far.
    pub retries: i32,
    #[serde(with = "etr_domain::time_serde::rfc3339_option")]
    pub retried_at: Option<OffsetDateTime>,
    /// The event's partition sequence, once the record decodes.
    pub sequence: Option<i64>,
    /// What the successful retry did.
    pub resolution: Option<String>,
    #[serde(with = "etr_domain::time_serde::rfc3339_option")]
    pub resolved_at: Option<OffsetDateTime>,
}

fn hex<S: serde::Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match bytes {
        None => s.serialize_none(),
        Some(b) => {
            let text: String = b.iter().map(|byte| format!("{byte:02x}")).collect();
            s.serialize_str(&text)
        }
    }
}

const COLUMNS: &str =
    "id, consumer, topic, partition, record_offset, key, payload, reason, recorded_at, \
                       retries, retried_at, sequence, resolution, resolved_at";

/// The dead letters of `consumer` (every consumer when `None`), open ones only unless
/// `include_resolved`, by consumer and position. Errors: Postgres.
pub async fn list(
    pool: &PgPool,
    consumer: Option<&str>,
    include_resolved: bool,
) -> Result<Vec<DeadLetter>, Error> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM dead_letters \
         WHERE ($1::text IS NULL OR consumer = $1) AND ($2 OR resolved_at IS NULL) \
         ORDER BY consumer, topic, partition, record_offset"
    ))
    .bind(consumer)
    .bind(include_resolved)
    .fetch_all(pool)
    .await?)
}

/// Which dead letters to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Which {
    /// One dead letter by id.
    One(i64),
    /// Every open dead letter of a consumer (e.g. `projection.wallets`).
    Consumer(String),
}

/// What retrying one dead letter did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// It decodes and was applied now: resolved.
    Applied { sequence: u64 },
    /// It decodes and its sequence was applied before (a copy of an event the projection
    /// had): resolved.
    AlreadyApplied { sequence: u64 },
    /// It decodes, but its partition is still missing an earlier sequence: kept open.
    Held { sequence: u64, missing: u64 },
    /// It decodes, but no consumer here applies it (not a projection of this crate): kept
    /// open.
    NoConsumer { sequence: u64 },
    /// It still does not decode: kept open with this reason.
    Failed { reason: String },
    /// It was resolved before; nothing done.
    AlreadyResolved,
}

/// One retried dead letter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Retried {
    pub id: i64,
    pub consumer: String,
    pub partition: i32,
    pub offset: i64,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// Retries dead letters of this crate's projections: decodes the stored bytes again
/// through the registry (a fresh codec, so schemas registered since are found) and, for a
/// projection consumer (`projection.wallets`, `projection.lending`, `projection.timeline`),
/// applies the decoded events to the live tables through [`apply_in_order`] (all of a
/// consumer's at once, so in sequence order and never past a gap). A dead letter whose
/// event is applied (or was already) is marked resolved (`resolved_at`, `resolution`); any
/// other is kept open with the new reason ([`Outcome`]). Every attempt counts in `retries`.
/// Results are in id order.
///
/// Errors: [`Error::NoDeadLetter`] for an unknown id; Postgres; a projection's own.
pub async fn retry(
    pool: &PgPool,
    codec: &EventCodec,
    which: &Which,
) -> Result<Vec<Retried>, Error> {
    let codec = codec.fresh();
    let mut by_consumer: BTreeMap<String, Vec<DeadLetter>> = BTreeMap::new();
    for row in select(pool, which).await? {
        by_consumer
            .entry(row.consumer.clone())
            .or_default()
            .push(row);
    }
    // The live tables: status changes are announced as the live projector would.
    let wallets = Wallets { announce: true };
    let mut done = Vec::new();
    for (consumer, rows) in by_consumer {
        let name = consumer.strip_prefix(PROJECTION_PREFIX).unwrap_or_default();
        done.extend(if name == wallets.name() {
            retry_rows(pool, &codec, rows, Some(&wallets)).await?
        } else if name == Lending.name() {
            retry_rows(pool, &codec, rows, Some(&Lending)).await?
        } else if name == Timeline.name() {
            retry_rows(pool, &codec, rows, Some(&Timeline)).await?
        } else {
            retry_rows::<Timeline>(pool, &codec, rows, None).await?
        });
    }
    finish(pool, done).await
}

/// [`retry`] for a projection of another crate (a process manager run by a
/// [`Projector`](crate::runtime::Projector)): dead letters of its consumer
/// (`projection.<name>`) are applied through `projection`; those of any other consumer are
/// only decoded ([`Outcome::NoConsumer`] when they decode).
///
/// Errors: as [`retry`].
pub async fn retry_with<P: Projection>(
    pool: &PgPool,
    codec: &EventCodec,
    which: &Which,
    projection: &P,
) -> Result<Vec<Retried>, Error> {
    let codec = codec.fresh();
    let own = projection_consumer(projection.name());
    let (mine, others): (Vec<DeadLetter>, Vec<DeadLetter>) = select(pool, which)
        .await?
        .into_iter()
        .partition(|row| row.consumer == own);
    let mut done = retry_rows(pool, &codec, mine, Some(projection)).await?;
    done.extend(retry_rows::<P>(pool, &codec, others, None).await?);
    finish(pool, done).await
}

/// The dead letters `which` names.
async fn select(pool: &PgPool, which: &Which) -> Result<Vec<DeadLetter>, Error> {
    Ok(match which {
        Which::One(id) => {
            let row: Option<DeadLetter> =
                sqlx::query_as(&format!("SELECT {COLUMNS} FROM dead_letters WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(pool)
                    .await?;
            vec![row.ok_or(Error::NoDeadLetter(*id))?]
        }
        Which::Consumer(consumer) => list(pool, Some(consumer), false).await?,
    })
}

/// Decodes `rows` (one consumer's) and applies what decodes through `projection`, all at
/// once; `None`: no projection applies them here.
async fn retry_rows<P: Projection>(
    pool: &PgPool,
    codec: &EventCodec,
    rows: Vec<DeadLetter>,
    projection: Option<&P>,
) -> Result<Vec<(DeadLetter, Outcome)>, Error> {
    let mut done = Vec::new();
    let mut decoded: Vec<DeadLetter> = Vec::new();
    let mut events: Vec<(Envelope, Event)> = Vec::new();
    for row in rows {
        if row.resolved_at.is_some() {
            done.push((row, Outcome::AlreadyResolved));
            continue;
        }
        match codec.decode_record(row.payload.as_deref()).await {
            Ok(event) if on_partition(&event.0, row.partition) => {
                decoded.push(row);
                events.push(event);
            }
            Ok((envelope, _)) => {
                let reason = format!(
                    "the envelope places sequence {} in partition {}, the record is on partition {}",
                    envelope.sequence, envelope.partition, row.partition
                );
                done.push((row, Outcome::Failed { reason }));
            }
            Err(e) => {
                let reason = e.to_string();
                done.push((row, Outcome::Failed { reason }));
            }
        }
    }
    let applied = match projection {
        Some(p) if !events.is_empty() => Some(apply_in_order(pool, p, &events).await?),
        _ => None,
    };
    for (row, (envelope, _)) in decoded.into_iter().zip(events) {
        let (partition, sequence) = (envelope.partition, envelope.sequence);
        let outcome = match &applied {
            None => Outcome::NoConsumer { sequence },
            Some(a) if sequence <= a.checkpoint_before(partition) => {
                Outcome::AlreadyApplied { sequence }
            }
            Some(a) if sequence <= a.checkpoint(partition) => Outcome::Applied { sequence },
            Some(a) => Outcome::Held {
                sequence,
                missing: a.checkpoint(partition) + 1,
            },
        };
        done.push((row, outcome));
    }
    Ok(done)
}

/// Writes the outcomes to their dead letters; the results in id order.
async fn finish(pool: &PgPool, done: Vec<(DeadLetter, Outcome)>) -> Result<Vec<Retried>, Error> {
    let mut retried = Vec::with_capacity(done.len());
    for (row, outcome) in done {
        mark(pool, &row, &outcome).await?;
        retried.push(Retried {
            id: row.id,
            consumer: row.consumer,
            partition: row.partition,
            offset: row.offset,
            outcome,
        });
    }
    retried.sort_by_key(|r| r.id);
    Ok(retried)
}

/// Writes a retry's outcome to its dead letter.
async fn mark(pool: &PgPool, row: &DeadLetter, outcome: &Outcome) -> Result<(), Error> {
    let sequence = |s: &u64| i64::try_from(*s).unwrap_or(i64::MAX);
    let (resolution, reason, seq) = match outcome {
        Outcome::AlreadyResolved => return Ok(()),
        Outcome::Applied { sequence: s } => (
            Some(format!("applied as sequence {s} of partition {}", row.partition)),
            None,
            Some(sequence(s)),
        ),
        Outcome::AlreadyApplied { sequence: s } => (
            Some(format!(
                "sequence {s} of partition {} was already applied",
                row.partition
            )),
            None,
            Some(sequence(s)),
        ),
        Outcome::Held {
            sequence: s,
            missing,
        } => (
            None,
            Some(format!(
                "decodes as sequence {s} of partition {}, held back: the projection is missing sequence {missing}",
                row.partition
            )),
            Some(sequence(s)),
        ),
        Outcome::NoConsumer { sequence: s } => (
            None,
            Some(format!(
                "decodes as sequence {s} of partition {}, but no consumer here applies `{}`",
                row.partition, row.consumer
            )),
            Some(sequence(s)),
        ),
        Outcome::Failed { reason } => (None, Some(reason.clone()), None),
    };
    sqlx::query(
        "UPDATE dead_letters SET retries = retries + 1, retried_at = clock_timestamp(), \
         reason = COALESCE($2, reason), sequence = COALESCE($3, sequence), resolution = $4, \
         resolved_at = CASE WHEN $4::text IS NULL THEN NULL ELSE clock_timestamp() END \
         WHERE id = $1",
    )
    .bind(row.id)
    .bind(reason)
    .bind(seq)
    .bind(resolution)
    .execute(pool)
    .await?;
    Ok(())
}
