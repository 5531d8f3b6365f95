//! Kafka log access through librdkafka (bundled): an idempotent producer, topic admin, and
//! a reader that consumes whole partitions without a consumer group (tail, rebuilds).

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use std::time::Duration;

use crate::error::{Error, Result};

/// An idempotent producer (acks=all, ordered retries) with a short linger for low latency.
pub fn producer(bootstrap: &str) -> Result<FutureProducer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("max.in.flight.requests.per.connection", "5")
        .set("linger.ms", "2")
        .set("message.timeout.ms", "30000")
        .create()?)
}

/// Creates `topic` with `partitions` partitions unless it exists; checks the partition count
/// of an existing topic, since the client → partition mapping depends on it.
pub async fn ensure_topic(bootstrap: &str, topic: &str, partitions: u32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let count =
        i32::try_from(partitions).map_err(|_| Error::Config("too many partitions".into()))?;
    let new = NewTopic::new(topic, count, TopicReplication::Fixed(1))
        .set("retention.ms", "-1")
        .set("retention.bytes", "-1");
    let results = admin
        .create_topics(
            [&new],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await?;
    for r in results {
        match r {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => return Err(Error::Config(format!("creating topic {t}: {code}"))),
        }
    }
    let existing = partition_count(bootstrap, topic).await?;
    if existing != partitions {
        return Err(Error::Config(format!(
            "topic {topic} has {existing} partitions, the platform is configured for {partitions} (ETR_PARTITIONS)"
        )));
    }
    Ok(())
}

/// The partition count of `topic` as the broker reports it (0 when it does not exist).
pub async fn partition_count(bootstrap: &str, topic: &str) -> Result<u32> {
    let bootstrap = bootstrap.to_owned();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .create()?;
        let md = consumer.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
        Ok(md
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map_or(0, |t| u32::try_from(t.partitions().len()).unwrap_or(0)))
    })
    .await
    .map_err(|e| Error::Config(format!("metadata task: {e}")))?
}

/// Waits until the broker answers a metadata request, up to `timeout`.
pub async fn wait_until_ready(bootstrap: &str, timeout: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let b = bootstrap.to_owned();
        let ok = tokio::task::spawn_blocking(move || {
            let c: std::result::Result<BaseConsumer, _> =
                ClientConfig::new().set("bootstrap.servers", &b).create();
            c.map(|c| c.fetch_metadata(None, Duration::from_secs(2)).is_ok())
                .unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        if ok {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Config(format!(
                "Kafka at {bootstrap} did not answer within {timeout:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// A consumer assigned to every partition of `topic` from the beginning, without a group
/// (nothing is committed). Returns it with the high watermark of each partition at start.
pub fn reader_from_beginning(
    bootstrap: &str,
    topic: &str,
    partitions: u32,
) -> Result<(StreamConsumer, Vec<i64>)> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("etr-reader-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "earliest")
        .create()?;
    // Loads the topic's metadata first; watermarks of an unknown partition fail otherwise.
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let known = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map_or(0, |t| t.partitions().len());
    if known != usize::try_from(partitions).unwrap_or(usize::MAX) {
        return Err(Error::Config(format!(
            "topic {topic} has {known} partitions, expected {partitions} (ETR_PARTITIONS)"
        )));
    }
    let mut tpl = TopicPartitionList::new();
    let mut highs = Vec::new();
    for p in 0..partitions {
        let p = i32::try_from(p).map_err(|_| Error::Config("partition out of range".into()))?;
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
        let (_, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10))?;
        highs.push(high);
    }
    consumer.assign(&tpl)?;
    Ok((consumer, highs))
}
