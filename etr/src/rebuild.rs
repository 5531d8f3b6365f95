//! `etr replay --projection NAME`: a blue/green rebuild of one projection from the start of
//! the log, with a progress bar (records, events/s, ETA) on stderr; prints a JSON summary.

use etr_infra::avro::EventCodec;
use etr_infra::config::Settings;
use etr_projections::lending::Lending;
use etr_projections::rebuild::{blue_green, Progress, Summary};
use etr_projections::runtime::Projection;
use etr_projections::timeline::Timeline;
use etr_projections::wallets::Wallets;
use indicatif::{ProgressBar, ProgressStyle};

pub async fn run(settings: &Settings, name: &str) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let summary = match name {
        "wallets" => rebuild(settings, &Wallets { announce: false }).await?,
        "lending" => rebuild(settings, &Lending).await?,
        "timeline" => rebuild(settings, &Timeline).await?,
        other => {
            anyhow::bail!("unknown projection `{other}` (known: wallets, lending, timeline)")
        }
    };
    let millis = started.elapsed().as_millis().max(1);
    println!(
        "{}",
        serde_json::json!({
            "projection": summary.projection,
            "records_read": summary.records_read,
            "events_applied": summary.events_applied,
            "retired_schema": summary.retired_schema,
            "millis": millis,
            "events_per_second": u128::from(summary.records_read) * 1_000 / millis,
        })
    );
    Ok(())
}

async fn rebuild<P: Projection>(settings: &Settings, projection: &P) -> anyhow::Result<Summary> {
    let pool = etr_platform::database(settings).await?;
    let registry = etr_platform::reader_registry(settings).await?;
    let codec = EventCodec::new(&registry, &settings.topic)?;
    let bar = ProgressBar::new(0);
    bar.set_style(ProgressStyle::with_template(
        "{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} records · {per_sec} · ETA {eta}",
    )?);
    bar.set_message(format!("rebuilding {}", projection.name()));
    let summary = blue_green(
        &pool,
        &settings.database_url,
        &codec,
        &settings.kafka_bootstrap,
        &settings.topic,
        settings.partitions,
        projection,
        |p: Progress| {
            bar.set_length(p.total);
            bar.set_position(p.read);
        },
    )
    .await?;
    bar.finish_with_message(format!(
        "switched {} to the rebuilt tables",
        projection.name()
    ));
    Ok(summary)
}
