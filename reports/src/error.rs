//! The crate's error type.

use time::Date;

/// Why a report could not be computed, rendered, stored or delivered.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The period's first day is after its last day.
    #[error("the period is inverted: {from} is after {to}")]
    PeriodInverted {
        /// First day asked for.
        from: Date,
        /// Last day asked for.
        to: Date,
    },

    /// The period has more calendar days than the report allows.
    #[error("the period has {days} days; this report covers at most {max}")]
    PeriodTooLong {
        /// Calendar days in the period, both ends included.
        days: i64,
        /// The report's limit.
        max: i64,
    },

    /// The report would have more rows than allowed (days × wallet accounts).
    #[error("the report would have {rows} rows; at most {max} can be produced at once — narrow the period or the accounts")]
    TooLarge {
        /// Rows the report would have.
        rows: usize,
        /// The limit.
        max: usize,
    },

    /// Input that is not what a report takes (an unknown format, a bad UTC offset, …).
    #[error("{0}")]
    Invalid(String),

    /// The movements do not add up to the balances recorded with them: the read model is
    /// inconsistent (it should be rebuilt from the log).
    #[error("wallet {wallet_id}: {message}")]
    Inconsistent {
        /// The wallet account whose movements disagree.
        wallet_id: uuid::Uuid,
        /// What disagrees.
        message: String,
    },

    /// Writing CSV failed.
    #[error("CSV: {0}")]
    Csv(#[from] csv::Error),

    /// Writing the XLSX workbook failed.
    #[error("XLSX: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),

    /// Drawing the chart failed.
    #[error("chart: {0}")]
    Chart(String),

    /// Reading the read models or the schedules failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),

    /// Storing a report file failed.
    #[error("report storage: {0}")]
    Storage(#[from] object_store::Error),

    /// A recipient could not be notified (the delivery port's reason).
    #[error("delivery to {recipient}: {reason}")]
    Delivery {
        /// The address.
        recipient: String,
        /// What the delivery port said.
        reason: String,
    },
}
