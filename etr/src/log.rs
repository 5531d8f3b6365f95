//! The command line of the log readers (`etr_projections::log`): `etr tail`,
//! `etr rebuild-snapshots` and `etr replay --into data-platform`.

use anyhow::Context as _;
use etr_infra::avro::EventCodec;
use etr_infra::config::Settings;
use etr_projections::log::{read_log, replay_into_data_platform};
use std::time::Duration;
use time::OffsetDateTime;

/// `etr tail`: the events of the log as JSON lines (with `client`, only that client's).
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
    .await?;
    Ok(())
}

/// `etr rebuild-snapshots`: rebuilds `snapshots` from the log into `snapshots_rebuilt`,
/// compares the two and prints what it found; fails when they differ and `replace` was not
/// asked for.
pub async fn rebuild_snapshots(settings: &Settings, replace: bool) -> anyhow::Result<()> {
    let pool = etr_platform::database(settings).await?;
    let registry = etr_platform::reader_registry(settings).await?;
    let codec = EventCodec::new(&registry, &settings.topic)?;
    let rebuilt = etr_projections::log::rebuild_snapshots(&pool, settings, &codec, replace).await?;
    println!(
        "{}",
        serde_json::json!({"aggregates": rebuilt.aggregates, "differing_rows": rebuilt.differing, "replaced": rebuilt.replaced})
    );
    if rebuilt.differing > 0 && !replace {
        anyhow::bail!(
            "the snapshot table differs from the log in {} rows",
            rebuilt.differing
        );
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
