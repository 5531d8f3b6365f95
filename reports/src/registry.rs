//! The merchants' daily registries (e-wallet spec §7.2): one file per merchant and calendar
//! day listing every order paid that day — what the merchant reconciles its sales and the
//! settlement against.
//!
//! Format (version 1): UTF-8 CSV, `;`-separated, a header row, then one row per paid order in
//! the order it was paid:
//! `order_number;order_id;payment_id;paid_at;source;masked_pan;amount;currency`, `paid_at` in
//! RFC 3339 with the registry's offset, `source` `wallet` or `card`, `masked_pan` empty for a
//! wallet, `amount` with two decimals. The day is a calendar day in the registry's UTC offset
//! (Moscow by default). Read from the checkout's `merchant_orders`.
//!
//! [`run_due`] writes every day's file not yet written (yesterday and earlier, the last 31
//! days) through the [`ReportStore`] under `registries/<partner id>/<day>.csv` and records it
//! in `merchant_registries` with its row count, total and SHA-256 — a day is written once.

use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use time::format_description::well_known::Rfc3339;
use time::{Date, Duration, OffsetDateTime, UtcOffset};
use uuid::Uuid;

use crate::period::day_start;
use crate::schedule::ReportStore;
use crate::Error;

/// The format's version, named in the stored file's key-less record.
pub const FORMAT_VERSION: u32 = 1;
/// How far back [`run_due`] writes missing days.
pub const LOOKBACK_DAYS: i64 = 31;

/// One paid order of the day.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Line {
    pub number: String,
    pub order_id: Uuid,
    pub payment_id: Option<Uuid>,
    pub paid_at: OffsetDateTime,
    pub source: Option<String>,
    pub masked_pan: Option<String>,
    pub amount: Decimal,
    pub currency: String,
}

/// A day's registry file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    pub bytes: Vec<u8>,
    pub operations: usize,
    /// The sum of the amounts (one currency: a merchant settles in one).
    pub total: Decimal,
    /// Hex SHA-256 of `bytes`.
    pub sha256: String,
}

/// The orders of `merchant` paid on `day` (in `offset`), in the order they were paid.
///
/// Errors: [`Error::Database`].
pub async fn lines(
    pool: &PgPool,
    merchant: Uuid,
    day: Date,
    offset: UtcOffset,
) -> Result<Vec<Line>, Error> {
    let from = day_start(day, offset);
    Ok(sqlx::query_as(
        "SELECT number, order_id, payment_id, paid_at, source, masked_pan, amount, currency \
         FROM merchant_orders WHERE merchant_id = $1 AND paid_at >= $2 AND paid_at < $3 \
         ORDER BY paid_at, order_id",
    )
    .bind(merchant)
    .bind(from)
    .bind(from + Duration::days(1))
    .fetch_all(pool)
    .await?)
}

/// Renders the registry of `lines` (pure).
///
/// Errors: [`Error::Csv`], [`Error::Invalid`] for a time that cannot be formatted.
pub fn render(lines: &[Line], offset: UtcOffset) -> Result<Registry, Error> {
    let mut out = csv::WriterBuilder::new()
        .delimiter(b';')
        .from_writer(Vec::new());
    out.write_record([
        "order_number",
        "order_id",
        "payment_id",
        "paid_at",
        "source",
        "masked_pan",
        "amount",
        "currency",
    ])?;
    let mut total = Decimal::ZERO;
    for l in lines {
        let paid_at = l
            .paid_at
            .to_offset(offset)
            .format(&Rfc3339)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let mut amount = l.amount;
        amount.rescale(2);
        total += l.amount;
        out.write_record([
            l.number.as_str(),
            &l.order_id.to_string(),
            &l.payment_id.map(|p| p.to_string()).unwrap_or_default(),
            &paid_at,
            l.source.as_deref().unwrap_or_default(),
            l.masked_pan.as_deref().unwrap_or_default(),
            &amount.to_string(),
            &l.currency,
        ])?;
    }
    let bytes = out
        .into_inner()
        .map_err(|e| Error::Invalid(format!("CSV buffer: {e}")))?;
    total.rescale(2);
    Ok(Registry {
        sha256: hex::encode(Sha256::digest(&bytes)),
        operations: lines.len(),
        total,
        bytes,
    })
}

/// The storage key of a registry file.
pub fn key(partner_id: &str, day: Date) -> String {
    format!("registries/{partner_id}/{day}.csv")
}

/// Writes every merchant's missing registries for the days before `today` (at most
/// [`LOOKBACK_DAYS`] back, not before the merchant was registered); returns how many files
/// were written. A day already recorded is never written again.
///
/// Errors: [`Error::Database`], [`Error::Storage`], rendering errors.
pub async fn run_due(
    pool: &PgPool,
    store: &ReportStore,
    today: Date,
    offset: UtcOffset,
) -> Result<usize, Error> {
    let merchants: Vec<(Uuid, String, OffsetDateTime)> = sqlx::query_as(
        "SELECT merchant_id, partner_id, created_at FROM merchants ORDER BY partner_id",
    )
    .fetch_all(pool)
    .await?;
    let mut written = 0;
    for (merchant, partner, created_at) in merchants {
        let first = created_at
            .to_offset(offset)
            .date()
            .max(today - Duration::days(LOOKBACK_DAYS));
        let done: Vec<Date> = sqlx::query_scalar(
            "SELECT day FROM merchant_registries WHERE merchant_id = $1 AND day >= $2",
        )
        .bind(merchant)
        .bind(first)
        .fetch_all(pool)
        .await?;
        let mut day = first;
        while day < today {
            if !done.contains(&day) {
                let registry = render(&lines(pool, merchant, day, offset).await?, offset)?;
                let location = store
                    .put(&key(&partner, day), registry.bytes.clone())
                    .await?;
                sqlx::query(
                    "INSERT INTO merchant_registries (merchant_id, day, location, operations, total, sha256) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                )
                .bind(merchant)
                .bind(day)
                .bind(&location)
                .bind(i32::try_from(registry.operations).unwrap_or(i32::MAX))
                .bind(registry.total)
                .bind(&registry.sha256)
                .execute(pool)
                .await?;
                written += 1;
            }
            day = day.next_day().unwrap_or(today);
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;
    use time::macros::{datetime, offset};

    #[test]
    fn a_registry_lists_the_days_orders_with_exact_amounts_in_local_time() {
        let lines = [
            Line {
                number: "A-1".into(),
                order_id: Uuid::from_u128(1),
                payment_id: Some(Uuid::from_u128(2)),
                paid_at: datetime!(2026-12-01 21:30 UTC),
                source: Some("wallet".into()),
                masked_pan: None,
                amount: dec!(1299),
                currency: "RUB".into(),
            },
            Line {
                number: "A-2".into(),
                order_id: Uuid::from_u128(3),
                payment_id: Some(Uuid::from_u128(4)),
                paid_at: datetime!(2026-12-01 22:00 UTC),
                source: Some("card".into()),
                masked_pan: Some("411111******1111".into()),
                amount: dec!(0.10),
                currency: "RUB".into(),
            },
        ];
        let r = render(&lines, offset!(+3)).unwrap();
        let text = String::from_utf8(r.bytes.clone()).unwrap();
        let rows: Vec<&str> = text.lines().collect();
        assert_eq!(
            rows[0],
            "order_number;order_id;payment_id;paid_at;source;masked_pan;amount;currency"
        );
        assert_eq!(
            rows[1],
            "A-1;00000000-0000-0000-0000-000000000001;00000000-0000-0000-0000-000000000002;2026-12-02T00:30:00+03:00;wallet;;1299.00;RUB"
        );
        assert!(
            rows[2].ends_with(";card;411111******1111;0.10;RUB"),
            "{}",
            rows[2]
        );
        assert_eq!((r.operations, r.total.to_string()), (2, "1299.10".into()));
        assert_eq!(r.sha256, hex::encode(Sha256::digest(text.as_bytes())));
        assert_eq!(render(&[], offset!(+3)).unwrap().operations, 0);
    }
}
