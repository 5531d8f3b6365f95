//! The outbox relay: publishes committed events to the Kafka log in sequence order per
//! partition and marks them published once the broker has acknowledged them.
//!
//! One relay publishes at a time (a Postgres advisory lock elects it). It is woken by the
//! command handler of its own process and otherwise polls the outbox every 100 ms (commits do
//! not `NOTIFY`: Postgres serialises every committing transaction that notifies), so nothing
//! stays unpublished after a crash or when the command API runs in another process. A crash between the broker's ack and the
//! `published_at` update publishes those events again with the same sequence numbers;
//! consumers skip anything at or below the last sequence they applied per partition.

use etr_domain::{Envelope, Event};
use etr_infra::avro::EventCodec;
use futures::future::join_all;
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

use crate::error::Error;

/// Advisory lock key held by the active relay.
const RELAY_LOCK: i64 = 0x6574_725f_7265_6c61; // "etr_rela"
const BATCH: i64 = 2_000;

pub struct Relay {
    pool: PgPool,
    producer: FutureProducer,
    codec: EventCodec,
    topic: String,
    wake: Arc<Notify>,
}

/// Figures of one publishing pass.
#[derive(Debug, Default, Clone, Copy)]
pub struct Pass {
    pub published: usize,
    pub failed: usize,
}

impl Relay {
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
        }
    }

    /// Runs forever: waits to be elected, then publishes whatever is pending whenever woken.
    pub async fn run(&self) -> Result<(), Error> {
        let mut lock_conn = self.pool.acquire().await?;
        loop {
            let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(RELAY_LOCK)
                .fetch_one(&mut *lock_conn)
                .await?;
            if got {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        tracing::info!(topic = %self.topic, "relay elected, publishing the outbox");
        loop {
            let pass = match self.publish_pending().await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "relay pass failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            if pass.published as i64 >= BATCH {
                continue; // more is waiting
            }
            if pass.failed > 0 {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }

    /// Publishes up to one batch of unpublished events: every partition's records are sent
    /// at once (in sequence order within the partition, which the idempotent producer keeps),
    /// then each partition is marked published up to its first failure, so order is kept.
    pub async fn publish_pending(&self) -> Result<Pass, Error> {
        let rows: Vec<(i32, i64, serde_json::Value, serde_json::Value)> = sqlx::query_as(
            "SELECT partition, sequence, envelope, event FROM outbox WHERE published_at IS NULL ORDER BY partition, sequence LIMIT $1",
        )
        .bind(BATCH)
        .fetch_all(&self.pool)
        .await?;
        let mut payloads = Vec::with_capacity(rows.len());
        for (_, _, envelope, event) in &rows {
            let envelope: Envelope = serde_json::from_value(envelope.clone())?;
            let event: Event = serde_json::from_value(event.clone())?;
            let bytes = self.codec.encode(&envelope, &event).await?;
            payloads.push((envelope.client_id.to_string(), bytes));
        }
        let sends = rows
            .iter()
            .zip(&payloads)
            .map(|((partition, ..), (key, bytes))| {
                self.producer.send(
                    FutureRecord::to(&self.topic)
                        .partition(*partition)
                        .key(key)
                        .payload(bytes),
                    Duration::from_secs(30),
                )
            });
        let results = join_all(sends).await;

        let mut pass = Pass::default();
        let mut start = 0;
        while start < rows.len() {
            let partition = rows[start].0;
            let end = rows[start..]
                .iter()
                .position(|r| r.0 != partition)
                .map_or(rows.len(), |i| start + i);
            let acked = results[start..end].iter().take_while(|r| r.is_ok()).count();
            if let Some(Err((e, _))) = results[start..end].get(acked) {
                tracing::warn!(partition, error = %e, "publish failed; will retry");
                pass.failed += end - start - acked;
            }
            if acked > 0 {
                let last = rows[start + acked - 1].1;
                sqlx::query(
                    "UPDATE outbox SET published_at = clock_timestamp() WHERE partition = $1 AND sequence <= $2 AND published_at IS NULL",
                )
                .bind(partition)
                .bind(last)
                .execute(&self.pool)
                .await?;
                pass.published += acked;
            }
            start = end;
        }
        Ok(pass)
    }
}
