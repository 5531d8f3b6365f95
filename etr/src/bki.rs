//! `etr bki …`: credit-history reporting by hand — run a day's upload now, report what was
//! sent when for a loan, list the configured keys (`etr_platform::bki`).

use anyhow::Context as _;
use etr_domain::ports::ReportCrypto as _;
use etr_infra::config::Settings;
use time::OffsetDateTime;

#[derive(clap::Subcommand)]
pub enum Action {
    /// Opens the upload of the records up to DAY for every bureau and runs it to its end
    /// (or to its next timer); prints the bureaus' files as JSON lines.
    Upload {
        /// YYYY-MM-DD (Moscow); today by default.
        #[arg(long)]
        day: Option<String>,
    },
    /// Every credit-history record of a loan and its application, with its standing per
    /// bureau and the files it went in (JSON lines).
    Report {
        #[arg(long)]
        loan: uuid::Uuid,
    },
    /// The configured keys: the platform's signing key and the bureaus' encryption keys.
    Keys,
    /// Days that are not business days besides weekends (upload deadlines skip them): adds
    /// and removes the ones given, then lists them.
    Holidays {
        /// YYYY-MM-DD, repeatable.
        #[arg(long)]
        add: Vec<String>,
        #[arg(long)]
        remove: Vec<String>,
    },
}

fn day(text: &str) -> anyhow::Result<time::Date> {
    time::Date::parse(text, &time::format_description::well_known::Iso8601::DATE)
        .with_context(|| format!("{text}: expected YYYY-MM-DD"))
}

pub async fn run(settings: &Settings, action: Action) -> anyhow::Result<()> {
    match action {
        Action::Keys => {
            let (software, _) = etr_platform::bki::key_store()?;
            for key in software.keys() {
                println!(
                    "{}",
                    serde_json::json!({"id": key.id, "algorithm": key.algorithm, "purpose": key.purpose, "public_key_hex": key.public_key_hex})
                );
            }
            Ok(())
        }
        Action::Upload { day } => {
            let pool = etr_platform::database(settings).await?;
            let reporter = etr_platform::bki::reporter(&pool)?;
            let now = OffsetDateTime::now_utc();
            let day = match day {
                Some(text) => {
                    time::Date::parse(&text, &time::format_description::well_known::Iso8601::DATE)
                        .context("--day: expected YYYY-MM-DD")?
                }
                None => now.to_offset(etr_sagas::bki::MOSCOW).date(),
            };
            let opened = reporter.start_day(day, now).await?;
            reporter.drain(20).await?;
            let files: Vec<String> = sqlx::query_scalar(
                "SELECT json_build_object('bureau', bureau, 'day', report_day, 'attempt', attempt, 'records', records, \
                 'plain_sha256', plain_sha256, 'encrypted_sha256', encrypted_sha256, 'location', location, \
                 'signature_location', signature_location)::text \
                 FROM bki_files WHERE upload_id = ANY($1) ORDER BY bureau, attempt",
            )
            .bind(&opened)
            .fetch_all(&pool)
            .await?;
            for file in files {
                println!("{file}");
            }
            Ok(())
        }
        Action::Holidays { add, remove } => {
            let pool = etr_platform::database(settings).await?;
            for d in &add {
                sqlx::query("INSERT INTO bki_holidays (day) VALUES ($1) ON CONFLICT DO NOTHING")
                    .bind(day(d)?)
                    .execute(&pool)
                    .await?;
            }
            for d in &remove {
                sqlx::query("DELETE FROM bki_holidays WHERE day = $1")
                    .bind(day(d)?)
                    .execute(&pool)
                    .await?;
            }
            let days: Vec<time::Date> =
                sqlx::query_scalar("SELECT day FROM bki_holidays ORDER BY day")
                    .fetch_all(&pool)
                    .await?;
            for d in days {
                println!("{d}");
            }
            Ok(())
        }
        Action::Report { loan } => {
            let pool = etr_platform::database(settings).await?;
            for line in etr_sagas::bki::loan_report(&pool, loan).await? {
                println!("{}", serde_json::to_string(&line)?);
            }
            Ok(())
        }
    }
}
