//! Reading the log: `etr tail` and `etr rebuild-snapshots`.

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

/// Reads the whole log (and, with `follow`, waits for more), decoding every record and
/// handing each event to `f` exactly once: a record whose sequence is at or below the last
/// one seen in its partition (a relay re-publish) is skipped.
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
    let mut last_seq: Vec<Option<u64>> = vec![None; highs.len()];
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
                anyhow::bail!("timed out reading the log (positions {positions:?}, ends {highs:?})")
            }
        };
        let partition = msg.partition();
        let offset = msg.offset();
        let idx = usize::try_from(partition).context("negative partition")?;
        let payload = msg.payload().context("record without payload")?;
        let (envelope, event) = codec.decode(payload).await?;
        if let Some(slot) = positions.get_mut(idx) {
            *slot = offset + 1;
        }
        let seen = last_seq
            .get_mut(idx)
            .context("partition beyond the configured count")?;
        if seen.is_none_or(|s| envelope.sequence > s) {
            *seen = Some(envelope.sequence);
            f(partition, offset, envelope, event)?;
        }
        if !follow && done(&positions) {
            consumer.unassign()?;
            return Ok(());
        }
    }
}

pub async fn tail(
    settings: &Settings,
    follow: bool,
    client: Option<uuid::Uuid>,
) -> anyhow::Result<()> {
    let registry = crate::platform::reader_registry(settings).await?;
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
    let registry = crate::platform::reader_registry(settings).await?;
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
    let pool = crate::platform::database(settings).await?;
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

/// Replays the log (optionally a time window of it) into the data platform, in batches.
pub async fn replay(
    settings: &Settings,
    into: &str,
    from: Option<String>,
    to: Option<String>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        into == "data-platform",
        "unknown replay target `{into}` (known: data-platform)"
    );
    let (from, to) = (parse_time("--from", from)?, parse_time("--to", to)?);
    let pool = crate::platform::database(settings).await?;
    let registry = crate::platform::reader_registry(settings).await?;
    let codec = EventCodec::new(&registry, &settings.topic)?;
    let started = std::time::Instant::now();
    let mut batch = Vec::new();
    let mut loaded = 0usize;
    let mut pending = Vec::new();
    read_log(settings, &codec, false, |_, _, envelope, event| {
        let inside = from.is_none_or(|f| envelope.occurred_at >= f)
            && to.is_none_or(|t| envelope.occurred_at < t);
        if inside {
            batch.push((envelope, event));
        }
        if batch.len() >= 1_000 {
            pending.push(std::mem::take(&mut batch));
        }
        Ok(())
    })
    .await?;
    pending.push(batch);
    for chunk in pending {
        etr_projections::data_platform::load(&pool, &chunk).await?;
        loaded += chunk.len();
    }
    let millis = started.elapsed().as_millis().max(1);
    let per_second = u128::try_from(loaded).unwrap_or(0) * 1_000 / millis;
    println!(
        "{}",
        serde_json::json!({"into": "data-platform", "events": loaded, "millis": millis, "events_per_second": per_second})
    );
    Ok(())
}
