//! The scheduled balance reports' runner (`etr_reports::schedule::Runner`), wired with the
//! report file store (a local directory, `ETR_REPORTS_DIR`, default `target/etr-reports`),
//! the recording delivery simulator and the system clock.

use etr_reports::delivery::RecordingDelivery;
use etr_reports::schedule::{Clock, ReportStore, Runner, SystemClock};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

use crate::{spawn_once, supervise, Error, Restart};

/// Where report files are stored: the directory `ETR_REPORTS_DIR` (default
/// `target/etr-reports`), created when missing.
///
/// Errors: [`Error::Config`] when the directory cannot be created or opened.
pub fn report_store() -> Result<ReportStore, Error> {
    let dir = std::env::var("ETR_REPORTS_DIR").unwrap_or_else(|_| "target/etr-reports".into());
    ReportStore::local(&dir).map_err(|e| Error::Config(format!("ETR_REPORTS_DIR={dir}: {e}")))
}

/// How often the runner looks for due schedules: `ETR_REPORTS_POLL_MS` (default 30,000).
fn poll() -> Duration {
    let ms = std::env::var("ETR_REPORTS_POLL_MS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|v| *v > 0)
        .unwrap_or(30_000);
    Duration::from_millis(ms)
}

/// A runner of the scheduled reports against `pool`, storing into [`report_store`] and
/// notifying through the recording delivery simulator.
///
/// Errors: [`report_store`]'s.
pub fn report_runner(pool: &PgPool) -> Result<Runner, Error> {
    Ok(Runner {
        pool: pool.clone(),
        store: report_store()?,
        delivery: Arc::new(RecordingDelivery::new(pool.clone())),
        clock: Arc::new(SystemClock),
        poll: poll(),
    })
}

/// Starts the scheduled reports' runner in its own task.
///
/// Errors: [`report_store`]'s (with [`Restart::Never`] only; a supervised one retries).
pub fn start_report_scheduler(pool: &PgPool, restart: Restart) -> Result<JoinHandle<()>, Error> {
    Ok(match restart {
        Restart::Supervised => {
            let pool = pool.clone();
            supervise("report scheduler", move || {
                let runner = report_runner(&pool);
                async move { runner?.run().await.map_err(Error::from) }
            })
        }
        Restart::Never => spawn_once("report scheduler", report_runner(pool)?.run()),
    })
}

/// Writes the merchants' missing daily registries (`etr_reports::registry::run_due`, Moscow
/// days) into [`report_store`] at start and then every `ETR_REPORTS_POLL_MS`: a day's file is
/// written once, soon after the day ends.
///
/// Errors: [`report_store`]'s (with [`Restart::Never`] only; a supervised one retries).
pub fn start_registry_job(pool: &PgPool, restart: Restart) -> Result<JoinHandle<()>, Error> {
    async fn run(pool: PgPool, store: ReportStore) -> Result<(), Error> {
        loop {
            let offset = etr_reports::MOSCOW;
            let today = SystemClock.now().to_offset(offset).date();
            match etr_reports::registry::run_due(&pool, &store, today, offset).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(written = n, "merchant registries written"),
                Err(e) => tracing::warn!(error = %e, "merchant registries not written; retrying"),
            }
            tokio::time::sleep(poll()).await;
        }
    }
    Ok(match restart {
        Restart::Supervised => {
            let pool = pool.clone();
            supervise("merchant registries", move || {
                let store = report_store();
                let pool = pool.clone();
                async move { run(pool, store?).await }
            })
        }
        Restart::Never => spawn_once("merchant registries", run(pool.clone(), report_store()?)),
    })
}
