//! Blue/green rebuild of a projection: the log is replayed from offset 0 into a fresh copy
//! of the projection's tables in schema `rebuild_<name>` while the live tables keep serving;
//! once the copy has caught up with the live projection, one transaction moves the live
//! tables to schema `retired_<name>` (kept for inspection until the next rebuild) and the
//! copy into `public`, together with its checkpoints. Readers and the live projector use
//! unqualified table names, so they continue on the new tables.
//!
//! Every batch of a projection (live or copy) takes a transaction-level advisory lock named
//! after its schema and projection. The switch takes the live one, so the live projection
//! stands still while the copy applies the last few events it was ahead by and the tables
//! are swapped; it then continues on the new tables, skipping what the copy applied.
//!
//! The copy follows the same gap rule as the live projector ([`apply_in_order`]): an event
//! beyond a missing sequence is held back, across batches, until the missing one is read,
//! then everything contiguous is applied in sequence order. A record that is not an event
//! is recorded as a dead letter of the live projection (the row its projector records too)
//! and skipped; if it was an event, the copy stops at the same gap as the live projection.

use etr_domain::{Envelope, Event};
use etr_infra::avro::EventCodec;
use etr_infra::kafka;
use rdkafka::consumer::StreamConsumer;
use rdkafka::Message;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgConnection, PgPool};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::dead_letters;
use crate::error::Error;
use crate::runtime::{apply_in_order, Projection};

/// Where a rebuild is: log records read of the known total, events applied to the copy.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub read: u64,
    pub total: u64,
    pub applied: u64,
}

/// What a finished rebuild did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub projection: String,
    pub records_read: u64,
    pub events_applied: u64,
    /// Records that are not events (recorded as dead letters of the live projection).
    pub undecodable: u64,
    pub retired_schema: String,
}

const BATCH: usize = 1_000;

/// How many events the copy may hold back behind gaps before the rebuild gives up (a gap
/// that the rest of the log does not fill: an event that is a dead letter).
const HOLD_LIMIT: usize = 100_000;

/// The copy being built: a group-less reader from offset 0 and the copy's pool (its
/// `search_path` puts the staging schema first).
///
/// The copy follows the gap rule of [`apply_in_order`]: events beyond a missing sequence
/// are held back (here, across batches) and applied in sequence order once it is read.
struct Copy<'a, P, F> {
    consumer: StreamConsumer,
    codec: &'a EventCodec,
    pool: PgPool,
    /// The live database, for dead letters.
    live: PgPool,
    topic: &'a str,
    projection: &'a P,
    next_offsets: Vec<i64>,
    /// Per partition, the last sequence applied to the copy.
    applied: BTreeMap<i32, i64>,
    /// Per partition, the last sequence the copy has contiguously (applied, or read and
    /// about to be applied).
    reach: BTreeMap<i32, i64>,
    /// Per partition, sequences read beyond `reach` + 1 (held back).
    ahead: BTreeMap<i32, BTreeSet<i64>>,
    /// Events read and held back behind a gap.
    held: Vec<(Envelope, Event)>,
    undecodable: u64,
    progress: Progress,
    report: F,
}

impl<P: Projection, F: FnMut(Progress)> Copy<'_, P, F> {
    /// Reads and applies until every partition has been read up to `offsets` (exclusive)
    /// and the copy has applied `sequences` (per partition).
    async fn catch_up(
        &mut self,
        offsets: &[i64],
        sequences: &BTreeMap<i32, i64>,
    ) -> Result<(), Error> {
        loop {
            let mut batch: Vec<(Envelope, Event)> = std::mem::take(&mut self.held);
            let mut read = 0;
            while read < BATCH && !self.reached(offsets, sequences) {
                let message =
                    match tokio::time::timeout(Duration::from_secs(30), self.consumer.recv()).await
                    {
                        Ok(m) => m?,
                        Err(_) => {
                            return Err(Error::Rebuild(format!(
                                "no record within 30 s (read up to offsets {:?}, waiting for offsets {offsets:?} and sequences {sequences:?}){}",
                                self.next_offsets,
                                self.gaps()
                            )))
                        }
                    };
                let idx = usize::try_from(message.partition()).unwrap_or(usize::MAX);
                if let Some(slot) = self.next_offsets.get_mut(idx) {
                    *slot = message.offset() + 1;
                }
                read += 1;
                self.progress.read += 1;
                self.progress.total = self.progress.total.max(self.progress.read);
                match self.codec.decode_record(message.payload()).await {
                    Ok(event) => {
                        self.note(&event.0);
                        batch.push(event);
                    }
                    Err(e @ etr_infra::avro::DecodeError::RegistryUnavailable { .. }) => {
                        return Err(Error::Decode {
                            topic: self.topic.to_owned(),
                            partition: message.partition(),
                            offset: message.offset(),
                            source: e,
                        });
                    }
                    Err(e) => {
                        // The live projector records the same dead letter (idempotent).
                        self.undecodable += 1;
                        let letter = dead_letters::Letter {
                            consumer: dead_letters::projection_consumer(self.projection.name()),
                            topic: self.topic.to_owned(),
                            partition: message.partition(),
                            offset: message.offset(),
                            key: message.key().map(<[u8]>::to_vec),
                            payload: message.payload().map(<[u8]>::to_vec),
                            reason: e.to_string(),
                        };
                        tracing::warn!(
                            projection = self.projection.name(),
                            partition = letter.partition,
                            offset = letter.offset,
                            reason = %letter.reason,
                            "rebuild: record dead-lettered"
                        );
                        dead_letters::record(&self.live, &[letter]).await?;
                    }
                }
            }
            if read == 0 {
                self.held = batch;
                return Ok(());
            }
            let outcome = apply_in_order(&self.pool, self.projection, &batch).await?;
            self.progress.applied += u64::try_from(outcome.applied).unwrap_or(0);
            self.applied = outcome
                .checkpoints
                .iter()
                .map(|(p, s)| {
                    (
                        i32::try_from(*p).unwrap_or(i32::MAX),
                        i64::try_from(*s).unwrap_or(i64::MAX),
                    )
                })
                .collect();
            let mut kept = BTreeSet::new();
            self.held = batch
                .into_iter()
                .filter(|(e, _)| {
                    e.sequence > outcome.checkpoint(e.partition)
                        && kept.insert((e.partition, e.sequence))
                })
                .collect();
            if self.held.len() > HOLD_LIMIT {
                return Err(Error::Rebuild(format!(
                    "{} events held back{}",
                    self.held.len(),
                    self.gaps()
                )));
            }
            (self.report)(self.progress);
        }
    }

    /// Notes an event read: moves its partition's reach over contiguous sequences.
    fn note(&mut self, env: &Envelope) {
        let p = partition(env);
        let s = sequence(env);
        let applied = self.applied.get(&p).copied().unwrap_or(0);
        let reach = self.reach.entry(p).or_insert(applied);
        *reach = (*reach).max(applied);
        let ahead = self.ahead.entry(p).or_default();
        if s == *reach + 1 {
            *reach = s;
            while ahead.remove(&(*reach + 1)) {
                *reach += 1;
            }
            ahead.retain(|a| *a > *reach);
        } else if s > *reach + 1 {
            ahead.insert(s);
        }
    }

    /// The open gaps, for error messages: `; partition P is missing sequence S` per
    /// partition holding events back.
    fn gaps(&self) -> String {
        self.ahead
            .iter()
            .filter(|(_, a)| !a.is_empty())
            .map(|(p, _)| {
                format!(
                    "; partition {p} is missing sequence {} (a dead letter? `etr dead-letters list`)",
                    self.reach.get(p).copied().unwrap_or(0) + 1
                )
            })
            .collect()
    }

    fn reached(&self, offsets: &[i64], sequences: &BTreeMap<i32, i64>) -> bool {
        self.next_offsets
            .iter()
            .zip(offsets)
            .all(|(next, target)| next >= target)
            && sequences.iter().all(|(p, s)| {
                self.applied.get(p).copied().unwrap_or(0) >= *s
                    || self.reach.get(p).copied().unwrap_or(0) >= *s
            })
    }
}

fn partition(env: &Envelope) -> i32 {
    i32::try_from(env.partition).unwrap_or(i32::MAX)
}

fn sequence(env: &Envelope) -> i64 {
    i64::try_from(env.sequence).unwrap_or(i64::MAX)
}

/// A projection's checkpoints in `schema` (`public` for the live projection, the staging
/// schema for the copy).
async fn checkpoints(
    conn: &mut PgConnection,
    schema: &str,
    name: &str,
) -> Result<BTreeMap<i32, i64>, Error> {
    let rows: Vec<(i32, i64)> = sqlx::query_as(&format!(
        "SELECT partition, sequence FROM {schema}.projection_checkpoints WHERE projection = $1"
    ))
    .bind(name)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Rebuilds `projection` from the whole log and switches to the rebuilt tables.
#[allow(clippy::too_many_arguments)]
pub async fn blue_green<P: Projection>(
    pool: &PgPool,
    database_url: &str,
    codec: &EventCodec,
    bootstrap: &str,
    topic: &str,
    partitions: u32,
    projection: &P,
    progress: impl FnMut(Progress),
) -> Result<Summary, Error> {
    let name = projection.name();
    // One rebuild of a projection at a time: a second one would drop the first one's copy
    // under it. The session lock ends with the connection, so a crash releases it.
    let mut guard = pool.acquire().await?;
    let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext('rebuild/' || $1))")
        .bind(name)
        .fetch_one(&mut *guard)
        .await?;
    if !free {
        return Err(Error::Rebuild(format!(
            "another rebuild of `{name}` is running"
        )));
    }
    let result = rebuild(
        pool,
        database_url,
        codec,
        bootstrap,
        topic,
        partitions,
        projection,
        progress,
    )
    .await;
    sqlx::query("SELECT pg_advisory_unlock(hashtext('rebuild/' || $1))")
        .bind(name)
        .execute(&mut *guard)
        .await?;
    result
}

/// How many events the copy may be behind the live projection when the switch starts (the
/// live projector waits while they are applied).
const SWITCH_GAP: i64 = 1_000;
/// The longest the live projector may be held at the switch; past it the rebuild aborts and
/// the live tables stay as they are.
const SWITCH_HOLD: Duration = Duration::from_secs(15);

#[allow(clippy::too_many_arguments)]
async fn rebuild<P: Projection>(
    pool: &PgPool,
    database_url: &str,
    codec: &EventCodec,
    bootstrap: &str,
    topic: &str,
    partitions: u32,
    projection: &P,
    progress: impl FnMut(Progress),
) -> Result<Summary, Error> {
    let name = projection.name();
    let staging = format!("rebuild_{name}");
    let retired = format!("retired_{name}");
    prepare_copy(pool, &staging, projection.tables()).await?;
    let copy_pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(
            etr_infra::pg::connect_options(database_url)?
                .options([("search_path", format!("{staging},public"))]),
        )
        .await?;
    let (consumer, highs) = kafka::reader_from_beginning(bootstrap, topic, partitions)?;
    let mut copy = Copy {
        consumer,
        codec,
        pool: copy_pool,
        live: pool.clone(),
        topic,
        projection,
        next_offsets: vec![0; highs.len()],
        applied: BTreeMap::new(),
        reach: BTreeMap::new(),
        ahead: BTreeMap::new(),
        held: Vec::new(),
        undecodable: 0,
        progress: Progress {
            read: 0,
            total: highs.iter().map(|h| u64::try_from(*h).unwrap_or(0)).sum(),
            applied: 0,
        },
        report: progress,
    };
    (copy.report)(copy.progress);
    // 1. The log as it was at the start, while the live tables serve.
    copy.catch_up(&highs, &BTreeMap::new()).await?;
    // 2. Close in on the live projection, which kept going meanwhile, until the copy is
    //    within SWITCH_GAP events of it.
    let mut rounds = 0;
    loop {
        let mut conn = pool.acquire().await?;
        let live = checkpoints(&mut conn, "public", name).await?;
        drop(conn);
        let gap: i64 = live
            .iter()
            .map(|(p, s)| (s - copy.applied.get(p).copied().unwrap_or(0)).max(0))
            .sum();
        if gap <= SWITCH_GAP {
            break;
        }
        rounds += 1;
        if rounds > 100 {
            return Err(Error::Rebuild(format!(
                "the copy does not close in on the live projection ({gap} events behind after {rounds} rounds)"
            )));
        }
        copy.catch_up(&[], &live).await?;
    }
    for table in projection.tables() {
        sqlx::query(&format!("ANALYZE {staging}.{table}"))
            .execute(pool)
            .await?;
    }
    // 3. With the live projection's batch lock held (it cannot move), apply the few events
    //    it is ahead by, announce what the live projector will now skip, and switch, all in
    //    one transaction.
    let mut tx = pool.begin().await?;
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtext(('public.projection_checkpoints'::regclass)::oid::text || '/' || $1))",
    )
    .bind(name)
    .execute(&mut *tx)
    .await?;
    let live = checkpoints(&mut tx, "public", name).await?;
    if tokio::time::timeout(SWITCH_HOLD, copy.catch_up(&[], &live))
        .await
        .is_err()
    {
        tx.rollback().await?;
        return Err(Error::Rebuild(format!(
            "the last events before the switch took over {SWITCH_HOLD:?}; the live tables are unchanged, run the rebuild again"
        )));
    }
    let copied = checkpoints(&mut tx, &staging, name).await?;
    projection
        .announce_skipped(&mut tx, &staging, &live, &copied)
        .await?;
    switch(&mut tx, name, &staging, &retired, projection.tables()).await?;
    tx.commit().await?;
    copy.pool.close().await;
    Ok(Summary {
        projection: name.to_owned(),
        records_read: copy.progress.read,
        events_applied: copy.progress.applied,
        undecodable: copy.undecodable,
        retired_schema: retired,
    })
}

/// A fresh, empty copy of the projection's tables and of the checkpoint table.
async fn prepare_copy(pool: &PgPool, schema: &str, tables: &[&str]) -> Result<(), Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut *tx)
        .await?;
    for table in tables.iter().chain(&["projection_checkpoints"]) {
        sqlx::query(&format!(
            "CREATE TABLE {schema}.{table} (LIKE public.{table} INCLUDING ALL)"
        ))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Retires the live tables and moves the copy in, with its checkpoints (inside the
/// caller's transaction, which holds the live projection's batch lock).
async fn switch(
    tx: &mut PgConnection,
    name: &str,
    staging: &str,
    retired: &str,
    tables: &[&str],
) -> Result<(), Error> {
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {retired} CASCADE"))
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA {retired}"))
        .execute(&mut *tx)
        .await?;
    for table in tables {
        let names = index_names(tx, "public", table).await?;
        sqlx::query(&format!("ALTER TABLE public.{table} SET SCHEMA {retired}"))
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!("ALTER TABLE {staging}.{table} SET SCHEMA public"))
            .execute(&mut *tx)
            .await?;
        // The copy's indexes get generated names; give them the live ones (index names
        // are per schema, and the retired ones have moved out).
        let moved = index_names(tx, "public", table).await?;
        for (shape, live_name) in &names {
            if let Some(copy_name) = moved.get(shape).filter(|n| *n != live_name) {
                sqlx::query(&format!(
                    "ALTER INDEX public.{copy_name} RENAME TO {live_name}"
                ))
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    sqlx::query("DELETE FROM public.projection_checkpoints WHERE projection = $1")
        .bind(name)
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!(
        "INSERT INTO public.projection_checkpoints SELECT * FROM {staging}.projection_checkpoints WHERE projection = $1"
    ))
    .bind(name)
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!("DROP SCHEMA {staging} CASCADE"))
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// A table's indexes by shape (the definition without its name), e.g.
/// `USING btree (client_id)` → `rm_wallets_client`.
async fn index_names(
    tx: &mut PgConnection,
    schema: &str,
    table: &str,
) -> Result<BTreeMap<String, String>, Error> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT regexp_replace(indexdef, '^CREATE (UNIQUE )?INDEX \\S+ ON \\S+ ', '\\1'), indexname \
         FROM pg_indexes WHERE schemaname = $1 AND tablename = $2",
    )
    .bind(schema)
    .bind(table)
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows.into_iter().collect())
}
