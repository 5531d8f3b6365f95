//! Bench only: the peer yardstick for `etr bench commands --peer`.
//!
//! The platform's handler-level workload run by programs that are not the platform:
//!
//! - [`Workload::PeerEventStore`]: a plain cqrs-es 0.5 `CqrsFramework` over postgres-es 0.5,
//!   as `postgres_es::postgres_cqrs` builds it (`PersistedEventStore::new_event_store`): every
//!   command replays its wallet's stream, then commits its event in one transaction.
//! - [`Workload::PeerAggregateStore`]: the same with `PersistedEventStore::new_aggregate_store`:
//!   every command loads its wallet's stored state and commits the event and the new state in
//!   one transaction.
//! - [`Workload::RawInsert`]: each command is one autocommit single-row INSERT of the event the
//!   command asks for (`raw_commands (id, stream, payload)`), nothing read, nothing decided.
//!
//! Workload: each caller (a tokio task) owns `wallets_per_caller` wallets (one stream each),
//! opens them (not measured), waits for every other caller, then alternates top-ups of
//! [`TOP_UP`] and payments of [`PAYMENT`] over its wallets round-robin, one command at a time,
//! until the time or the command count is up. Each workload gets its own fresh database and a
//! pool of [`pool_size`]`(callers)` connections. After the run the balances are read back
//! ([`balances`]) and must equal top-ups − payments, or the run fails.

mod check;
mod db;
mod drive;
pub mod wallet;

use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::PgPool;
use std::time::Duration;

pub use check::{balances, expected_total, Balances};
pub use db::{pool_size, Database};
pub use drive::{CURRENCY, PAYMENT, TOP_UP};

/// One crate error (STYLE §3).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// A wallet refused a command the plan never expects refused (a bug in the plan).
    #[error("wallet {wallet} refused a command: {refusal}")]
    Refused {
        wallet: String,
        refusal: wallet::Refusal,
    },
    /// cqrs-es failed (connection, conflict, (de)serialisation); its message.
    #[error("cqrs-es: {0}")]
    Peer(String),
    #[error("a caller panicked: {0}")]
    Panicked(String),
    /// The stored balances differ from what the callers were told succeeded.
    #[error("{workload}: expected {expected_wallets} wallets holding {expected} in total, found {found:?}")]
    Inconsistent {
        workload: &'static str,
        expected_wallets: u64,
        expected: Decimal,
        found: Balances,
    },
    #[error("{0}")]
    Invalid(&'static str),
}

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    PeerEventStore,
    PeerAggregateStore,
    RawInsert,
}

impl Workload {
    /// Every workload, in the order the example binary runs them.
    pub const ALL: [Workload; 3] = [
        Workload::RawInsert,
        Workload::PeerEventStore,
        Workload::PeerAggregateStore,
    ];

    /// `peer-event-store`, `peer-aggregate-store` or `raw-insert`.
    pub fn name(self) -> &'static str {
        match self {
            Workload::PeerEventStore => "peer-event-store",
            Workload::PeerAggregateStore => "peer-aggregate-store",
            Workload::RawInsert => "raw-insert",
        }
    }

    /// The inverse of [`Workload::name`].
    pub fn parse(name: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == name)
    }
}

/// When the callers stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Each caller stops issuing commands once this long has passed since all had opened
    /// their wallets.
    Elapsed(Duration),
    /// This many measured commands in total, shared equally among the callers.
    Commands(u64),
}

/// One measurement. Timings are `f64` (they are not money).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    /// [`Workload::name`].
    pub name: String,
    pub callers: usize,
    /// Wallets in total (`callers × wallets_per_caller`).
    pub wallets: u64,
    /// Measured commands (top-ups + payments; the opens before are not measured).
    pub commands: u64,
    pub top_ups: u64,
    pub payments: u64,
    /// Wall time of the measured part, seconds.
    pub seconds: f64,
    pub per_second: f64,
    /// Latency of one command as its caller saw it, nearest-rank percentiles, milliseconds
    /// (rounded to 1 µs).
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Measures `workload` with `callers` callers of `wallets_per_caller` wallets each for
/// `duration`, in a fresh database on the server of `database_admin_url` (dropped afterwards).
/// See [`run_until`].
pub async fn run(
    database_admin_url: &str,
    workload: Workload,
    callers: usize,
    wallets_per_caller: usize,
    duration: Duration,
) -> Result<Figures, Error> {
    run_until(
        database_admin_url,
        workload,
        callers,
        wallets_per_caller,
        Until::Elapsed(duration),
    )
    .await
}

/// Creates a fresh database, [`measure`]s, checks the balances left behind against the
/// figures, and drops the database (also when something failed).
///
/// Errors: [`Error::Invalid`] for zero callers or wallets; [`Error::Inconsistent`] when the
/// balances do not add up; any error of the database or of cqrs-es.
pub async fn run_until(
    database_admin_url: &str,
    workload: Workload,
    callers: usize,
    wallets_per_caller: usize,
    until: Until,
) -> Result<Figures, Error> {
    validate(callers, wallets_per_caller)?;
    let database = Database::create(database_admin_url, workload, pool_size(callers)).await?;
    let result =
        measure_and_check(&database.pool, workload, callers, wallets_per_caller, until).await;
    let dropped = database.drop().await;
    let figures = result?;
    dropped?;
    Ok(figures)
}

async fn measure_and_check(
    pool: &PgPool,
    workload: Workload,
    callers: usize,
    wallets_per_caller: usize,
    until: Until,
) -> Result<Figures, Error> {
    let figures = measure(pool, workload, callers, wallets_per_caller, until).await?;
    let found = balances(pool, workload).await?;
    let expected = expected_total(figures.top_ups, figures.payments);
    let consistent = found.wallets == figures.wallets
        && found.folded == expected
        && found.stored.is_none_or(|stored| stored == expected)
        && found.differing == 0;
    if !consistent {
        return Err(Error::Inconsistent {
            workload: workload.name(),
            expected_wallets: figures.wallets,
            expected,
            found,
        });
    }
    Ok(figures)
}

/// Runs the workload against `pool`, whose database holds the workload's tables (as
/// [`Database::create`] makes them). Does not check balances ([`balances`] reads them; they
/// add up to [`expected_total`] only in a database no other run wrote to).
pub async fn measure(
    pool: &PgPool,
    workload: Workload,
    callers: usize,
    wallets_per_caller: usize,
    until: Until,
) -> Result<Figures, Error> {
    validate(callers, wallets_per_caller)?;
    let measured = drive::drive(pool, workload, callers, wallets_per_caller, until).await?;
    let mut latencies = Vec::new();
    let (mut top_ups, mut payments) = (0, 0);
    for caller in measured.callers {
        top_ups += caller.top_ups;
        payments += caller.payments;
        latencies.extend(caller.latencies);
    }
    latencies.sort_unstable();
    let commands = top_ups + payments;
    Ok(Figures {
        name: workload.name().to_owned(),
        callers,
        wallets: (callers * wallets_per_caller) as u64,
        commands,
        top_ups,
        payments,
        seconds: stats::seconds(measured.elapsed),
        per_second: stats::per_second(commands, measured.elapsed),
        p50_ms: stats::ms(stats::percentile(&latencies, 500)),
        p99_ms: stats::ms(stats::percentile(&latencies, 990)),
    })
}

fn validate(callers: usize, wallets_per_caller: usize) -> Result<(), Error> {
    if callers == 0 {
        return Err(Error::Invalid("at least one caller"));
    }
    if wallets_per_caller == 0 {
        return Err(Error::Invalid("at least one wallet per caller"));
    }
    Ok(())
}

/// Timing arithmetic: measurements in `f64`, never money.
#[allow(clippy::float_arithmetic)] // timings, not money
pub mod stats {
    use std::time::Duration;

    /// Nearest-rank percentile of sorted values, `permille` in 0..=1000 (zero when empty).
    pub fn percentile(sorted: &[Duration], permille: usize) -> Duration {
        let rank = (permille * sorted.len()).div_ceil(1000).max(1);
        sorted
            .get(rank.min(sorted.len()).saturating_sub(1))
            .copied()
            .unwrap_or_default()
    }

    /// Milliseconds, rounded to the microsecond.
    pub fn ms(d: Duration) -> f64 {
        (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
    }

    /// Seconds, rounded to the millisecond.
    pub fn seconds(d: Duration) -> f64 {
        (d.as_secs_f64() * 1000.0).round() / 1000.0
    }

    /// `count / elapsed`, rounded to 0.1; zero for no time.
    pub fn per_second(count: u64, elapsed: Duration) -> f64 {
        let secs = elapsed.as_secs_f64();
        if secs > 0.0 {
            (count as f64 / secs * 10.0).round() / 10.0
        } else {
            0.0
        }
    }

    /// `a / b`, zero when `b` is not positive.
    pub fn ratio(a: f64, b: f64) -> f64 {
        if b > 0.0 {
            a / b
        } else {
            0.0
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn nearest_rank() {
            let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
            assert_eq!(percentile(&v, 500), Duration::from_millis(50));
            assert_eq!(percentile(&v, 990), Duration::from_millis(99));
            assert_eq!(percentile(&[], 990), Duration::ZERO);
            assert_eq!(ms(Duration::from_micros(1234)), 1.234);
        }
    }
}
