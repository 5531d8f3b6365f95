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

use etr_domain::{Envelope, Event};
use etr_infra::avro::EventCodec;
use etr_infra::kafka;
use rdkafka::consumer::StreamConsumer;
use rdkafka::Message;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool};
use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use crate::error::Error;
use crate::runtime::{apply_batch, Projection};

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
    pub retired_schema: String,
}

const BATCH: usize = 1_000;

/// The copy being built: a group-less reader from offset 0 and the copy's pool (its
/// `search_path` puts the staging schema first).
struct Copy<'a, P, F> {
    consumer: StreamConsumer,
    codec: &'a EventCodec,
    pool: PgPool,
    projection: &'a P,
    next_offsets: Vec<i64>,
    applied: BTreeMap<i32, i64>,
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
            let mut batch: Vec<(Envelope, Event)> = Vec::new();
            while batch.len() < BATCH && !self.reached(offsets, sequences, &batch) {
                let message =
                    match tokio::time::timeout(Duration::from_secs(30), self.consumer.recv()).await
                    {
                        Ok(m) => m?,
                        Err(_) => {
                            return Err(Error::Rebuild(format!(
                                "no record within 30 s (read up to offsets {:?}, waiting for offsets {offsets:?} and sequences {sequences:?})",
                                self.next_offsets
                            )))
                        }
                    };
                let idx = usize::try_from(message.partition()).unwrap_or(usize::MAX);
                if let Some(slot) = self.next_offsets.get_mut(idx) {
                    *slot = message.offset() + 1;
                }
                self.progress.read += 1;
                self.progress.total = self.progress.total.max(self.progress.read);
                if let Some(payload) = message.payload() {
                    batch.push(self.codec.decode(payload).await?);
                }
            }
            if batch.is_empty() {
                return Ok(());
            }
            let applied = apply_batch(&self.pool, self.projection, &batch).await?;
            self.progress.applied += u64::try_from(applied).unwrap_or(0);
            for (env, _) in &batch {
                let slot = self.applied.entry(partition(env)).or_insert(0);
                *slot = (*slot).max(sequence(env));
            }
            (self.report)(self.progress);
        }
    }

    fn reached(
        &self,
        offsets: &[i64],
        sequences: &BTreeMap<i32, i64>,
        batch: &[(Envelope, Event)],
    ) -> bool {
        self.next_offsets
            .iter()
            .zip(offsets)
            .all(|(next, target)| next >= target)
            && sequences.iter().all(|(p, s)| {
                self.applied.get(p).copied().unwrap_or(0) >= *s
                    || batch
                        .iter()
                        .any(|(e, _)| partition(e) == *p && sequence(e) >= *s)
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
            PgConnectOptions::from_str(database_url)?
                .options([("search_path", format!("{staging},public"))]),
        )
        .await?;
    let (consumer, highs) = kafka::reader_from_beginning(bootstrap, topic, partitions)?;
    let mut copy = Copy {
        consumer,
        codec,
        pool: copy_pool,
        projection,
        next_offsets: vec![0; highs.len()],
        applied: BTreeMap::new(),
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
