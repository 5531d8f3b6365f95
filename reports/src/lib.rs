//! Balance reports of the e-wallet (seed 003, «ОТЧЕТНОСТЬ»): the turnover balance sheet and
//! the daily closing balances of the wallet accounts ([`sheet`]), their export to CSV and
//! XLSX ([`export`]), the balance-change chart by day or by month-end as PNG or SVG
//! ([`chart`]), and scheduled runs that store the files and notify their recipients
//! ([`schedule`], [`delivery`]); and the merchants' daily registries of paid orders
//! ([`registry`]).
//!
//! The input is the `wallets` projection's `rm_wallet_movements` (every balance-changing
//! wallet event, with its business time and the balance after it) and `rm_wallets`, read by
//! [`store`]; everything else is pure and takes the movements as data. Days are calendar
//! days in a fixed UTC offset, Moscow time (UTC+03:00) unless the caller names another
//! ([`period`]). Money is `rust_decimal::Decimal`, exact, two places.

pub mod chart;
pub mod delivery;
pub mod error;
pub mod export;
pub mod period;
pub mod registry;
pub mod schedule;
pub mod sheet;
pub mod store;

pub use error::Error;
pub use period::{Period, MOSCOW};
pub use sheet::{ChartBy, DailyBalances, Ledger, TurnoverSheet};
pub use store::Scope;

use chart::ImageFormat;
use export::TableFormat;
use sqlx::PgPool;
use time::{Date, UtcOffset};

/// Which report, in which file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The turnover balance sheet as a table.
    Turnover(TableFormat),
    /// The daily closing balances as a table.
    Daily(TableFormat),
    /// The balance-change chart as an image.
    Chart(ChartBy, ImageFormat),
}

impl Kind {
    /// A kind from its names: `turnover` or `daily` with `csv` / `xlsx`, `chart` with
    /// `png` / `svg` and `by` (`day` or `month`; day when not given).
    ///
    /// Errors: [`Error::Invalid`] naming what is not known.
    pub fn parse(report: &str, format: &str, by: Option<&str>) -> Result<Self, Error> {
        match report {
            "turnover" => Ok(Self::Turnover(TableFormat::parse(format)?)),
            "daily" => Ok(Self::Daily(TableFormat::parse(format)?)),
            "chart" => Ok(Self::Chart(
                ChartBy::parse(by.unwrap_or("day"))?,
                ImageFormat::parse(format)?,
            )),
            other => Err(Error::Invalid(format!(
                "`{other}`: the reports are `turnover`, `daily` and `chart`"
            ))),
        }
    }

    /// The report's name (`turnover`, `daily`, `chart`).
    pub fn report(self) -> &'static str {
        match self {
            Self::Turnover(_) => "turnover",
            Self::Daily(_) => "daily",
            Self::Chart(..) => "chart",
        }
    }

    /// The file format's name (`csv`, `xlsx`, `png`, `svg`).
    pub fn format(self) -> &'static str {
        match self {
            Self::Turnover(f) | Self::Daily(f) => f.extension(),
            Self::Chart(_, f) => f.extension(),
        }
    }

    /// The chart's sampling; `None` for a table.
    pub fn chart_by(self) -> Option<ChartBy> {
        match self {
            Self::Chart(by, _) => Some(by),
            _ => None,
        }
    }

    /// The longest period the report covers (days).
    pub fn max_days(self) -> i64 {
        match self {
            Self::Turnover(_) | Self::Chart(ChartBy::Month, _) => period::MAX_TURNOVER_DAYS,
            Self::Daily(_) | Self::Chart(ChartBy::Day, _) => period::MAX_DAILY_DAYS,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Turnover(f) | Self::Daily(f) => f.content_type(),
            Self::Chart(_, f) => f.content_type(),
        }
    }

    fn file_stem(self) -> String {
        match self {
            Self::Turnover(_) => "turnover".into(),
            Self::Daily(_) => "daily-balances".into(),
            Self::Chart(by, _) => format!("balance-chart-by-{}", by.code()),
        }
    }
}

/// A report asked for: which, whose accounts, which days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub kind: Kind,
    pub scope: Scope,
    /// First day.
    pub from: Date,
    /// Last day (included).
    pub to: Date,
    /// The offset the days are counted in ([`MOSCOW`] by default).
    pub offset: UtcOffset,
}

impl Request {
    /// The request's period, checked against the report's limit.
    ///
    /// Errors: [`Error::PeriodInverted`], [`Error::PeriodTooLong`].
    pub fn period(&self) -> Result<Period, Error> {
        Period::new(self.from, self.to, self.offset, self.kind.max_days())
    }
}

/// A rendered report file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// `turnover_2026-11-01_2026-11-30.xlsx`, `daily-balances_….csv`,
    /// `balance-chart-by-month_….png`.
    pub name: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// Renders a report from a ledger already read (pure).
///
/// Errors: [`Error::TooLarge`] (daily rows of a table), and the format's own.
pub fn render_ledger(kind: Kind, scope: &Scope, ledger: &Ledger) -> Result<File, Error> {
    let bytes = match kind {
        Kind::Turnover(TableFormat::Csv) => export::turnover_csv(&ledger.turnover())?,
        Kind::Turnover(TableFormat::Xlsx) => export::turnover_xlsx(&ledger.turnover())?,
        Kind::Daily(TableFormat::Csv) => export::daily_csv(&ledger.daily()?)?,
        Kind::Daily(TableFormat::Xlsx) => export::daily_xlsx(&ledger.daily()?)?,
        Kind::Chart(by, format) => {
            let series = ledger.series(by);
            let scope = scope.describe();
            chart::render(
                &chart::Chart {
                    period: ledger.period,
                    by,
                    scope: &scope,
                    series: &series,
                },
                format,
            )?
        }
    };
    Ok(File {
        name: format!(
            "{}_{}_{}.{}",
            kind.file_stem(),
            ledger.period.from(),
            ledger.period.to(),
            kind.format()
        ),
        content_type: kind.content_type(),
        bytes,
    })
}

/// Reads the scope's accounts and movements and renders the report.
///
/// Errors: the period's ([`Request::period`]), [`Error::Database`], and
/// [`render_ledger`]'s.
pub async fn render(pool: &PgPool, request: &Request) -> Result<File, Error> {
    let period = request.period()?;
    let ledger = store::ledger(pool, request.scope, period).await?;
    render_ledger(request.kind, &request.scope, &ledger)
}
