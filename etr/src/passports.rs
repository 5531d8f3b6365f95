//! `etr passports …`: the MVD list of invalid passports — load a published file (with a
//! progress bar) and look a passport up.

use anyhow::Context as _;
use etr_domain::identity::PassportNumber;
use etr_infra::config::Settings;
use etr_infra::invalid_passports;
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum Action {
    /// Replace the list with a published file (`PASSP_SERIES,PASSP_NUMBER` CSV); prints the
    /// counts as JSON.
    Load { file: PathBuf },
    /// Whether a passport (`4510 123456` or `4510123456`) is on the list.
    Check { passport: String },
}

pub async fn run(settings: &Settings, action: Action) -> anyhow::Result<()> {
    let pool = etr_platform::database(settings).await?;
    match action {
        Action::Load { file } => {
            let size = std::fs::metadata(&file)
                .with_context(|| format!("reading {}", file.display()))?
                .len();
            let input = std::io::BufReader::with_capacity(
                1 << 20,
                std::fs::File::open(&file)
                    .with_context(|| format!("opening {}", file.display()))?,
            );
            let bar = indicatif::ProgressBar::new(size).with_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .context("progress bar template")?,
            );
            let started = std::time::Instant::now();
            let loaded =
                invalid_passports::load(&pool, &file.display().to_string(), input, |bytes| {
                    bar.set_position(bytes)
                })
                .await?;
            bar.finish_and_clear();
            println!(
                "{}",
                serde_json::json!({
                    "rows_read": loaded.rows_read,
                    "listed": loaded.listed,
                    "skipped": loaded.skipped,
                    "seconds": started.elapsed().as_secs_f32(),
                })
            );
        }
        Action::Check { passport } => {
            let passport = PassportNumber::parse(&passport)?;
            let invalid = invalid_passports::is_invalid(&pool, &passport).await?;
            println!(
                "{}",
                serde_json::json!({ "passport": passport.as_str(), "invalid": invalid })
            );
        }
    }
    Ok(())
}
