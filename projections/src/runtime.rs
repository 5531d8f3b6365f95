//! The projection runtime: consume, apply a batch with its checkpoints in one transaction,
//! then commit the consumer offsets (an optimisation only; the checkpoints are the truth).

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

/// Applies `events` (each partition's events in log order) in one transaction together with
/// the checkpoints; returns how many were applied (the rest were at or below a checkpoint).
pub async fn apply_batch<P: Projection>(
    pool: &PgPool,
    projection: &P,
    events: &[(Envelope, Event)],
) -> Result<usize, Error> {
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
    let mut checkpoints: BTreeMap<u32, u64> = rows
        .into_iter()
        .map(|(p, s)| (u32::try_from(p).unwrap_or(0), u64::try_from(s).unwrap_or(0)))
        .collect();
    let mut applied = 0;
    for (envelope, event) in events {
        let last = checkpoints.get(&envelope.partition).copied().unwrap_or(0);
        if envelope.sequence <= last {
            continue;
        }
        if envelope.sequence != last + 1 {
            tracing::warn!(
                projection = projection.name(),
                partition = envelope.partition,
                last,
                next = envelope.sequence,
                "gap in the log"
            );
        }
        projection.apply(&mut tx, envelope, event).await?;
        checkpoints.insert(envelope.partition, envelope.sequence);
        applied += 1;
    }
    for (partition, sequence) in &checkpoints {
        sqlx::query(
            "INSERT INTO projection_checkpoints (projection, partition, sequence) VALUES ($1, $2, $3) \
             ON CONFLICT (projection, partition) DO UPDATE SET sequence = EXCLUDED.sequence, updated_at = clock_timestamp()",
        )
        .bind(projection.name())
        .bind(i32::try_from(*partition).unwrap_or(i32::MAX))
        .bind(i64::try_from(*sequence).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(applied)
}

/// Consumes the topic in the projection's consumer group and applies it batch by batch.
pub struct Projector<P> {
    pool: PgPool,
    codec: EventCodec,
    consumer: StreamConsumer,
    projection: P,
}

const MAX_BATCH: usize = 500;

impl<P: Projection> Projector<P> {
    /// The consumer group is `<topic>.projection.<name>`.
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
            // A killed member's partitions move to a restarted one within seconds.
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "1000")
            .create()?;
        consumer.subscribe(&[topic])?;
        Ok(Projector {
            pool,
            codec,
            consumer,
            projection,
        })
    }

    pub async fn run(self) -> Result<(), Error> {
        tracing::info!(projection = self.projection.name(), "projector consuming");
        loop {
            let mut batch = Vec::new();
            let mut offsets: BTreeMap<(String, i32), i64> = BTreeMap::new();
            let first = self.consumer.recv().await?;
            self.take(&first, &mut batch, &mut offsets).await?;
            while batch.len() < MAX_BATCH {
                match tokio::time::timeout(Duration::from_millis(5), self.consumer.recv()).await {
                    Ok(m) => {
                        let m = m?;
                        self.take(&m, &mut batch, &mut offsets).await?;
                    }
                    Err(_) => break,
                }
            }
            apply_batch(&self.pool, &self.projection, &batch).await?;
            let mut tpl = TopicPartitionList::new();
            for ((topic, partition), offset) in offsets {
                tpl.add_partition_offset(&topic, partition, Offset::Offset(offset + 1))?;
            }
            if let Err(e) = self.consumer.commit(&tpl, CommitMode::Async) {
                tracing::debug!(error = %e, "offset commit failed; checkpoints keep the truth");
            }
        }
    }

    async fn take(
        &self,
        msg: &rdkafka::message::BorrowedMessage<'_>,
        batch: &mut Vec<(Envelope, Event)>,
        offsets: &mut BTreeMap<(String, i32), i64>,
    ) -> Result<(), Error> {
        offsets.insert((msg.topic().to_owned(), msg.partition()), msg.offset());
        if let Some(payload) = msg.payload() {
            batch.push(self.codec.decode(payload).await?);
        }
        Ok(())
    }
}
