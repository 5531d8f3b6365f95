//! `etr report …`: the e-wallet's balance reports from the read models — the turnover sheet,
//! the daily balances and the balance chart written to a file, and the report schedules.

use anyhow::Context as _;
use etr_infra::config::Settings;
use etr_reports::period::{parse_date, parse_offset};
use etr_reports::schedule::{self, Every, NewSchedule};
use etr_reports::{Kind, Request, Scope};
use std::path::PathBuf;

/// Which accounts and days.
#[derive(clap::Args)]
pub struct Period {
    /// First day, YYYY-MM-DD.
    #[arg(long)]
    from: String,
    /// Last day (included), YYYY-MM-DD.
    #[arg(long)]
    to: String,
    /// Only this client's wallet accounts.
    #[arg(long)]
    client: Option<uuid::Uuid>,
    /// Only this wallet account.
    #[arg(long)]
    wallet: Option<uuid::Uuid>,
    /// UTC offset the days are counted in.
    #[arg(long, default_value = "+03:00", allow_hyphen_values = true)]
    utc_offset: String,
    /// The file to write.
    #[arg(long)]
    out: PathBuf,
    /// File format; by default the extension of --out.
    #[arg(long)]
    format: Option<String>,
}

#[derive(clap::Subcommand)]
pub enum Action {
    /// The turnover balance sheet (opening balance, debit, credit, closing balance per
    /// wallet account) as csv or xlsx.
    Turnover(Period),
    /// The closing balance of every wallet account on every day, as csv or xlsx.
    Daily(Period),
    /// The balance-change chart as png or svg.
    Chart {
        #[command(flatten)]
        period: Period,
        /// `day` (every day's balance) or `month` (every month-end's).
        #[arg(long, default_value = "day")]
        by: String,
    },
    /// A merchant's registry of the orders paid on one day (`;`-separated CSV, format v1 of
    /// `etr_reports::registry`), written to --out; with --store-due, every merchant's missing
    /// registries up to yesterday are written to the report store instead.
    Registry {
        /// The merchant's partner id.
        #[arg(long, required_unless_present = "store_due")]
        partner: Option<String>,
        /// The day, YYYY-MM-DD.
        #[arg(long, required_unless_present = "store_due")]
        day: Option<String>,
        #[arg(long, default_value = "+03:00", allow_hyphen_values = true)]
        utc_offset: String,
        #[arg(long, required_unless_present = "store_due")]
        out: Option<PathBuf>,
        /// Write the missing daily registries of every merchant into the report store.
        #[arg(long)]
        store_due: bool,
    },
    /// Report schedules: add, list, and the runs they made.
    Schedule {
        #[command(subcommand)]
        action: ScheduleAction,
    },
}

/// A schedule to add.
#[derive(clap::Args)]
pub struct AddSchedule {
    #[arg(long)]
    name: String,
    /// turnover | daily | chart
    #[arg(long)]
    report: String,
    /// csv | xlsx (tables), png | svg (chart)
    #[arg(long)]
    format: String,
    /// day | month (chart only)
    #[arg(long)]
    by: Option<String>,
    #[arg(long)]
    client: Option<uuid::Uuid>,
    #[arg(long)]
    wallet: Option<uuid::Uuid>,
    /// day | week | month: each run covers the day, the 7 days, or the month before it.
    #[arg(long)]
    every: String,
    /// Delivery addresses, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    recipients: Vec<String>,
    /// First run, RFC 3339 (default: the next midnight in --utc-offset).
    #[arg(long)]
    first_run: Option<String>,
    #[arg(long, default_value = "+03:00", allow_hyphen_values = true)]
    utc_offset: String,
}

#[derive(clap::Subcommand)]
pub enum ScheduleAction {
    /// Schedule a report; prints the schedule's id.
    Add(Box<AddSchedule>),
    /// Every schedule (JSON lines).
    List,
    /// The latest runs (JSON lines), of one schedule when given.
    Runs {
        #[arg(long)]
        schedule: Option<uuid::Uuid>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Stop a schedule (its runs are kept).
    Pause { schedule: uuid::Uuid },
    /// Resume a stopped schedule.
    Resume { schedule: uuid::Uuid },
    /// Run what is due now once (the platform's scheduler does this on its own).
    RunDue,
}

fn request(report: &str, p: &Period, by: Option<&str>) -> anyhow::Result<Request> {
    let format = match &p.format {
        Some(f) => f.clone(),
        None => p
            .out
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .context("give --format, or an --out file with an extension")?,
    };
    Ok(Request {
        kind: Kind::parse(report, &format, by)?,
        scope: Scope {
            client: p.client,
            wallet: p.wallet,
        },
        from: parse_date(&p.from)?,
        to: parse_date(&p.to)?,
        offset: parse_offset(&p.utc_offset)?,
    })
}

async fn write(settings: &Settings, request: Request, out: &PathBuf) -> anyhow::Result<()> {
    request.period()?;
    let pool = etr_platform::database(settings).await?;
    let file = etr_reports::render(&pool, &request).await?;
    std::fs::write(out, &file.bytes).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "{}",
        serde_json::json!({"file": out.display().to_string(), "report": file.name, "bytes": file.bytes.len()})
    );
    Ok(())
}

pub async fn run(settings: &Settings, action: Action) -> anyhow::Result<()> {
    match action {
        Action::Turnover(p) => write(settings, request("turnover", &p, None)?, &p.out).await,
        Action::Daily(p) => write(settings, request("daily", &p, None)?, &p.out).await,
        Action::Chart { period, by } => {
            write(settings, request("chart", &period, Some(&by))?, &period.out).await
        }
        Action::Schedule { action } => run_schedule(settings, action).await,
        Action::Registry {
            partner,
            day,
            utc_offset,
            out,
            store_due,
        } => {
            let pool = etr_platform::database(settings).await?;
            let offset = parse_offset(&utc_offset)?;
            if store_due {
                let today = time::OffsetDateTime::now_utc().to_offset(offset).date();
                let store = etr_platform::reports::report_store()?;
                let written = etr_reports::registry::run_due(&pool, &store, today, offset).await?;
                println!("{}", serde_json::json!({ "registries_written": written }));
                return Ok(());
            }
            let (Some(partner), Some(day), Some(out)) = (partner, day, out) else {
                anyhow::bail!("--partner, --day and --out are needed without --store-due");
            };
            let day = parse_date(&day)?;
            let merchant = etr_infra::merchants::by_partner(&pool, &partner)
                .await?
                .with_context(|| format!("{partner} is not a merchant"))?;
            let lines =
                etr_reports::registry::lines(&pool, merchant.merchant_id.0, day, offset).await?;
            let registry = etr_reports::registry::render(&lines, offset)?;
            std::fs::write(&out, &registry.bytes)
                .with_context(|| format!("writing {}", out.display()))?;
            println!(
                "{}",
                serde_json::json!({
                    "file": out.display().to_string(),
                    "operations": registry.operations,
                    "total": registry.total.to_string(),
                    "sha256": registry.sha256,
                })
            );
            Ok(())
        }
    }
}

async fn run_schedule(settings: &Settings, action: ScheduleAction) -> anyhow::Result<()> {
    let pool = etr_platform::database(settings).await?;
    match action {
        ScheduleAction::Add(add) => {
            let AddSchedule {
                name,
                report,
                format,
                by,
                client,
                wallet,
                every,
                recipients,
                first_run,
                utc_offset,
            } = *add;
            let offset = parse_offset(&utc_offset)?;
            let first_run_at = match first_run {
                Some(t) => {
                    time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339)
                        .with_context(|| format!("--first-run {t}: not an RFC 3339 time"))?
                }
                None => {
                    let today = time::OffsetDateTime::now_utc().to_offset(offset).date();
                    schedule::at_midnight(today.next_day().unwrap_or(today), offset)
                }
            };
            let id = schedule::create(
                &pool,
                &NewSchedule {
                    name,
                    kind: Kind::parse(&report, &format, by.as_deref())?,
                    scope: Scope { client, wallet },
                    every: Every::parse(&every)?,
                    offset,
                    recipients,
                    first_run_at,
                },
            )
            .await?;
            println!("{}", serde_json::json!({"schedule_id": id}));
        }
        ScheduleAction::List => {
            for s in schedule::list(&pool).await? {
                println!("{}", serde_json::to_string(&s)?);
            }
        }
        ScheduleAction::Runs { schedule, limit } => {
            for r in schedule::runs(&pool, schedule, limit).await? {
                println!("{}", serde_json::to_string(&r)?);
            }
        }
        ScheduleAction::Pause { schedule } | ScheduleAction::Resume { schedule } => {
            let active = matches!(action, ScheduleAction::Resume { .. });
            if !schedule::set_active(&pool, schedule, active).await? {
                anyhow::bail!("no report schedule {schedule}");
            }
            println!(
                "{}",
                serde_json::json!({"schedule_id": schedule, "active": active})
            );
        }
        ScheduleAction::RunDue => {
            let tick = etr_platform::reports::report_runner(&pool)?.tick().await?;
            println!(
                "{}",
                serde_json::json!({"planned": tick.planned, "done": tick.done, "failed": tick.failed})
            );
        }
    }
    Ok(())
}
