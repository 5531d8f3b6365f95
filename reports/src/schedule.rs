//! Scheduled report runs (seed 003, «Модуль расписания отправки отчетов»: reports produced on
//! a schedule and sent to configured delivery addresses).
//!
//! A schedule (`report_schedules`) names a report ([`Kind`]), whose accounts ([`Scope`]),
//! how often it runs ([`Every`]), the UTC offset of its days, its recipients and its next
//! due time. When a schedule is due, the [`Runner`] records a run (`report_runs`, one per
//! schedule and due time) and moves the schedule to its next due time in one transaction;
//! then, outside any transaction, it renders the report for the period the due time closes
//! ([`plan`]), stores the file through `object_store` ([`ReportStore`]) and sends a notice to
//! each recipient through the [`Delivery`] port. A run that fails is tried again a minute
//! later, up to [`MAX_ATTEMPTS`]; a run left by a runner that died is taken again after
//! [`STALE_AFTER`]. Rendering is a function of the read models, the storage key is fixed
//! per run and notices are keyed per run and recipient, so a repeated run changes nothing.
//! The time comes from an injected [`Clock`], never from the database or the system inside
//! the computation.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sqlx::PgPool;
use time::{Date, OffsetDateTime, UtcOffset};
use uuid::Uuid;

use crate::delivery::{Delivery, Notice};
use crate::period::{add_month, day_start, format_offset, month_start, Period};
use crate::{render, Error, Kind, Request, Scope};

/// Attempts of a run before it is left `failed`.
pub const MAX_ATTEMPTS: i32 = 5;

/// How long a run may stay `running` before another runner takes it again (its runner is
/// taken to have died).
pub const STALE_AFTER: time::Duration = time::Duration::minutes(10);

/// How long a failed attempt waits before the next.
pub const RETRY_AFTER: time::Duration = time::Duration::minutes(1);

/// The time, injected.
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// How often a schedule runs, and so which period a run covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Every {
    /// Daily; a run covers the day before its due day.
    Day,
    /// Weekly; a run covers the seven days before its due day.
    Week,
    /// Monthly; a run covers the days from the first of the previous day's month to the
    /// previous day: the whole previous calendar month for a run due on the 1st.
    Month,
}

impl Every {
    /// `day`, `week` or `month`.
    ///
    /// Errors: [`Error::Invalid`].
    pub fn parse(text: &str) -> Result<Self, Error> {
        match text {
            "day" => Ok(Self::Day),
            "week" => Ok(Self::Week),
            "month" => Ok(Self::Month),
            other => Err(Error::Invalid(format!(
                "`{other}`: a schedule runs every `day`, `week` or `month`"
            ))),
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
        }
    }
}

/// The period a run due at `due` covers and the schedule's next due time (pure). Days are
/// counted in `offset`; the next due time keeps the time of day and moves by a day, seven
/// days or a month (to the same day of the month, or the month's last day when it is
/// shorter).
pub fn plan(every: Every, due: OffsetDateTime, offset: UtcOffset) -> (Date, Date, OffsetDateTime) {
    let local = due.to_offset(offset);
    let day = local.date();
    let before = day.previous_day().unwrap_or(day);
    let (from, to) = match every {
        Every::Day => (before, before),
        Every::Week => (before - time::Duration::days(6), before),
        // Due on the 1st: the whole previous calendar month.
        Every::Month => (month_start(before), before),
    };
    let next_day = match every {
        Every::Day => day.next_day().unwrap_or(day),
        Every::Week => day + time::Duration::days(7),
        Every::Month => add_month(day),
    };
    let next = next_day.with_time(local.time()).assume_offset(offset);
    (from, to, next)
}

/// A schedule to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSchedule {
    pub name: String,
    pub kind: Kind,
    pub scope: Scope,
    pub every: Every,
    pub offset: UtcOffset,
    /// Delivery addresses, at least one.
    pub recipients: Vec<String>,
    /// The first run's due time.
    pub first_run_at: OffsetDateTime,
}

/// Creates a schedule; returns its id.
///
/// Errors: [`Error::Invalid`] without recipients or name; [`Error::Database`].
pub async fn create(pool: &PgPool, schedule: &NewSchedule) -> Result<Uuid, Error> {
    if schedule.recipients.iter().all(|r| r.trim().is_empty()) {
        return Err(Error::Invalid(
            "a schedule needs at least one recipient".into(),
        ));
    }
    if schedule.name.trim().is_empty() {
        return Err(Error::Invalid("a schedule needs a name".into()));
    }
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO report_schedules (schedule_id, name, report, format, chart_by, client_id, wallet_id, every, utc_offset_seconds, recipients, next_run_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(id)
    .bind(schedule.name.trim())
    .bind(schedule.kind.report())
    .bind(schedule.kind.format())
    .bind(schedule.kind.chart_by().map(|b| b.code()))
    .bind(schedule.scope.client)
    .bind(schedule.scope.wallet)
    .bind(schedule.every.code())
    .bind(schedule.offset.whole_seconds())
    .bind(
        schedule
            .recipients
            .iter()
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty())
            .collect::<Vec<_>>(),
    )
    .bind(schedule.first_run_at)
    .execute(pool)
    .await?;
    Ok(id)
}

/// A schedule as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct ScheduleRow {
    pub schedule_id: Uuid,
    pub name: String,
    pub report: String,
    pub format: String,
    pub chart_by: Option<String>,
    pub client_id: Option<Uuid>,
    pub wallet_id: Option<Uuid>,
    pub every: String,
    pub utc_offset_seconds: i32,
    pub recipients: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub next_run_at: OffsetDateTime,
    pub active: bool,
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct RunRow {
    pub run_id: Uuid,
    pub schedule_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub due_at: OffsetDateTime,
    #[serde(serialize_with = "iso_date")]
    pub period_from: Date,
    #[serde(serialize_with = "iso_date")]
    pub period_to: Date,
    /// `pending`, `running`, `retry`, `done` or `failed`.
    pub status: String,
    pub attempts: i32,
    pub location: Option<String>,
    pub bytes: Option<i64>,
    pub error: Option<String>,
}

/// Stops (`active = false`) or resumes a schedule; returns whether it exists. A resumed
/// schedule that missed due times catches up one period per tick.
///
/// Errors: [`Error::Database`].
pub async fn set_active(pool: &PgPool, schedule: Uuid, active: bool) -> Result<bool, Error> {
    let updated = sqlx::query("UPDATE report_schedules SET active = $2 WHERE schedule_id = $1")
        .bind(schedule)
        .bind(active)
        .execute(pool)
        .await?;
    Ok(updated.rows_affected() == 1)
}

/// A date as `2026-11-30`.
fn iso_date<S: serde::Serializer>(date: &Date, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(date)
}

/// Every schedule, by name.
///
/// Errors: [`Error::Database`].
pub async fn list(pool: &PgPool) -> Result<Vec<ScheduleRow>, Error> {
    Ok(sqlx::query_as(
        "SELECT schedule_id, name, report, format, chart_by, client_id, wallet_id, every, utc_offset_seconds, recipients, next_run_at, active \
         FROM report_schedules ORDER BY name, schedule_id",
    )
    .fetch_all(pool)
    .await?)
}

/// The runs, newest due first (of one schedule when given), at most `limit`.
///
/// Errors: [`Error::Database`].
pub async fn runs(pool: &PgPool, schedule: Option<Uuid>, limit: i64) -> Result<Vec<RunRow>, Error> {
    Ok(sqlx::query_as(
        "SELECT run_id, schedule_id, due_at, period_from, period_to, status, attempts, location, bytes, error \
         FROM report_runs WHERE $1::uuid IS NULL OR schedule_id = $1 ORDER BY due_at DESC, run_id LIMIT $2",
    )
    .bind(schedule)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Where report files are kept: an object store (a local directory by default, memory in
/// tests, a bucket when the deployment builds one).
#[derive(Debug, Clone)]
pub struct ReportStore {
    store: Arc<dyn ObjectStore>,
    location_prefix: String,
}

impl ReportStore {
    /// Files under `dir`, created if missing.
    ///
    /// Errors: [`Error::Storage`].
    pub fn local(dir: impl AsRef<Path>) -> Result<Self, Error> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|err| {
            Error::Storage(object_store::Error::Generic {
                store: "LocalFileSystem",
                source: Box::new(err),
            })
        })?;
        let store = LocalFileSystem::new_with_prefix(dir)?;
        let root = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        Ok(Self {
            store: Arc::new(store),
            location_prefix: format!("file://{}/", root.display()),
        })
    }

    /// Files in memory.
    pub fn in_memory() -> Self {
        Self {
            store: Arc::new(InMemory::new()),
            location_prefix: "memory:///".into(),
        }
    }

    /// Any configured object store; `location_prefix` is put in front of keys to form
    /// locations (e.g. `s3://bucket/`).
    pub fn with_store(store: Arc<dyn ObjectStore>, location_prefix: impl Into<String>) -> Self {
        Self {
            store,
            location_prefix: location_prefix.into(),
        }
    }

    /// Stores `bytes` under `key`; returns the location.
    ///
    /// Errors: [`Error::Storage`].
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<String, Error> {
        let path = ObjectPath::parse(key).map_err(|e| Error::Invalid(e.to_string()))?;
        self.store.put(&path, PutPayload::from(bytes)).await?;
        Ok(format!("{}{}", self.location_prefix, path))
    }

    /// The bytes under `key`.
    ///
    /// Errors: [`Error::Storage`] (`NotFound` when nothing is there).
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, Error> {
        let path = ObjectPath::parse(key).map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(self.store.get(&path).await?.bytes().await?.to_vec())
    }
}

/// The storage key of a run's file: `reports/<schedule>/<run>/<file name>`.
pub fn run_key(schedule: Uuid, run: Uuid, file_name: &str) -> String {
    format!("reports/{schedule}/{run}/{file_name}")
}

/// Takes due schedules and runs their reports.
pub struct Runner {
    pub pool: PgPool,
    pub store: ReportStore,
    pub delivery: Arc<dyn Delivery>,
    pub clock: Arc<dyn Clock>,
    /// How often it looks for due work.
    pub poll: Duration,
}

#[derive(sqlx::FromRow)]
struct Due {
    schedule_id: Uuid,
    every: String,
    utc_offset_seconds: i32,
    next_run_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct Claimed {
    run_id: Uuid,
    schedule_id: Uuid,
    name: String,
    period_from: Date,
    period_to: Date,
    attempts: i32,
    report: String,
    format: String,
    chart_by: Option<String>,
    client_id: Option<Uuid>,
    wallet_id: Option<Uuid>,
    utc_offset_seconds: i32,
    recipients: Vec<String>,
}

/// What one [`Runner::tick`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tick {
    /// Runs recorded for schedules that came due.
    pub planned: usize,
    /// Runs finished (stored and delivered).
    pub done: usize,
    /// Runs whose attempt failed.
    pub failed: usize,
}

fn offset_of(seconds: i32) -> Result<UtcOffset, Error> {
    UtcOffset::from_whole_seconds(seconds)
        .map_err(|_| Error::Invalid(format!("{seconds} s is not a UTC offset")))
}

impl Runner {
    /// Runs [`Runner::tick`] every `poll` until an error (the caller supervises).
    ///
    /// Errors: the first tick's that fails.
    pub async fn run(self) -> Result<(), Error> {
        loop {
            let tick = self.tick().await?;
            if tick != Tick::default() {
                tracing::info!(
                    planned = tick.planned,
                    done = tick.done,
                    failed = tick.failed,
                    "scheduled reports"
                );
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    /// Records a run for every schedule due at the clock's time (one per schedule per tick:
    /// a schedule that missed several runs catches up one period per tick), then works the
    /// runs that are waiting.
    ///
    /// Errors: [`Error::Database`] (a report's own failure is recorded with its run instead).
    pub async fn tick(&self) -> Result<Tick, Error> {
        let now = self.clock.now();
        let mut tick = Tick {
            planned: self.plan_due(now).await?,
            ..Tick::default()
        };
        for run in self.claim(now).await? {
            match self.work(&run).await {
                Ok(location) => {
                    sqlx::query(
                        "UPDATE report_runs SET status = 'done', location = $2, bytes = $3, error = NULL, finished_at = $4 WHERE run_id = $1",
                    )
                    .bind(run.run_id)
                    .bind(&location.0)
                    .bind(location.1)
                    .bind(self.clock.now())
                    .execute(&self.pool)
                    .await?;
                    tick.done += 1;
                }
                Err(e) => {
                    tracing::warn!(run = %run.run_id, schedule = %run.schedule_id, attempt = run.attempts, error = %e, "scheduled report failed");
                    let status = if run.attempts >= MAX_ATTEMPTS {
                        "failed"
                    } else {
                        "retry"
                    };
                    sqlx::query(
                        "UPDATE report_runs SET status = $2, error = $3, finished_at = $4 WHERE run_id = $1",
                    )
                    .bind(run.run_id)
                    .bind(status)
                    .bind(e.to_string())
                    .bind(self.clock.now())
                    .execute(&self.pool)
                    .await?;
                    tick.failed += 1;
                }
            }
        }
        Ok(tick)
    }

    async fn plan_due(&self, now: OffsetDateTime) -> Result<usize, Error> {
        let mut tx = self.pool.begin().await?;
        let due: Vec<Due> = sqlx::query_as(
            "SELECT schedule_id, every, utc_offset_seconds, next_run_at FROM report_schedules \
             WHERE active AND next_run_at <= $1 ORDER BY next_run_at LIMIT 20 FOR UPDATE SKIP LOCKED",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        for d in &due {
            let offset = offset_of(d.utc_offset_seconds)?;
            let (from, to, next) = plan(Every::parse(&d.every)?, d.next_run_at, offset);
            let run_id = Uuid::new_v5(
                &d.schedule_id,
                d.next_run_at.unix_timestamp_nanos().to_string().as_bytes(),
            );
            sqlx::query(
                "INSERT INTO report_runs (run_id, schedule_id, due_at, period_from, period_to, status, attempts, planned_at) \
                 VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6) ON CONFLICT DO NOTHING",
            )
            .bind(run_id)
            .bind(d.schedule_id)
            .bind(d.next_run_at)
            .bind(from)
            .bind(to)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE report_schedules SET next_run_at = $2 WHERE schedule_id = $1")
                .bind(d.schedule_id)
                .bind(next)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(due.len())
    }

    async fn claim(&self, now: OffsetDateTime) -> Result<Vec<Claimed>, Error> {
        Ok(sqlx::query_as(include_str!("sql/claim_runs.sql"))
            .bind(now)
            .bind(now - STALE_AFTER)
            .bind(now - RETRY_AFTER)
            .bind(MAX_ATTEMPTS)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Renders, stores and delivers one run; returns the file's location and size.
    async fn work(&self, run: &Claimed) -> Result<(String, i64), Error> {
        let offset = offset_of(run.utc_offset_seconds)?;
        let request = Request {
            kind: Kind::parse(&run.report, &run.format, run.chart_by.as_deref())?,
            scope: Scope {
                client: run.client_id,
                wallet: run.wallet_id,
            },
            from: run.period_from,
            to: run.period_to,
            offset,
        };
        let file = render(&self.pool, &request).await?;
        let size = i64::try_from(file.bytes.len()).unwrap_or(i64::MAX);
        let location = self
            .store
            .put(
                &run_key(run.schedule_id, run.run_id, &file.name),
                file.bytes,
            )
            .await?;
        let period = Period::new(run.period_from, run.period_to, offset, i64::MAX)?;
        for recipient in &run.recipients {
            let notice = Notice {
                key: format!("{}/{recipient}", run.run_id),
                run_id: run.run_id,
                recipient: recipient.clone(),
                subject: format!("{}: {}", run.name, crate::export::period_title(&period)),
                body: format!(
                    "The report «{}» ({}) for {} – {} (UTC{}) is ready: {} ({} bytes).",
                    run.name,
                    run.report,
                    run.period_from,
                    run.period_to,
                    format_offset(offset),
                    file.name,
                    size
                ),
                location: location.clone(),
            };
            self.delivery
                .deliver(&notice)
                .await
                .map_err(|reason| Error::Delivery {
                    recipient: recipient.clone(),
                    reason,
                })?;
        }
        Ok((location, size))
    }
}

/// `day` at 00:00 in `offset`: a convenient first due time.
pub fn at_midnight(day: Date, offset: UtcOffset) -> OffsetDateTime {
    day_start(day, offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::period::MOSCOW;
    use time::macros::{date, datetime};

    #[test]
    fn a_run_covers_the_period_its_due_time_closes() {
        // Due at 06:00 Moscow on 1 December.
        let due = datetime!(2026-12-01 03:00 UTC);
        let (from, to, next) = plan(Every::Day, due, MOSCOW);
        assert_eq!((from, to), (date!(2026 - 11 - 30), date!(2026 - 11 - 30)));
        assert_eq!(next, datetime!(2026-12-02 03:00 UTC));
        let (from, to, next) = plan(Every::Week, due, MOSCOW);
        assert_eq!((from, to), (date!(2026 - 11 - 24), date!(2026 - 11 - 30)));
        assert_eq!(next, datetime!(2026-12-08 03:00 UTC));
        let (from, to, next) = plan(Every::Month, due, MOSCOW);
        assert_eq!((from, to), (date!(2026 - 11 - 01), date!(2026 - 11 - 30)));
        assert_eq!(next, datetime!(2027-01-01 03:00 UTC));
        // 22:00 UTC on 31 December is already 1 January in Moscow: December is closed.
        let (from, to, _) = plan(Every::Month, datetime!(2026-12-31 22:00 UTC), MOSCOW);
        assert_eq!((from, to), (date!(2026 - 12 - 01), date!(2026 - 12 - 31)));
        // A month run on the 31st moves to the last day of a shorter month.
        let (_, _, next) = plan(Every::Month, datetime!(2027-01-31 09:00 UTC), MOSCOW);
        assert_eq!(next, datetime!(2027-02-28 09:00 UTC));
    }
}
