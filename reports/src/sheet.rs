//! The tabular reports (seed 003, «ОТЧЕТНОСТЬ», module of tabular reports): the turnover
//! balance sheet («оборотно-сальдовая ведомость») and the daily closing balances («остатки на
//! счетах кошельков за каждый день»), computed from a wallet account's balance movements.
//! Pure: no I/O, no clock.
//!
//! **Amounts** are `Decimal` in the account's currency, exact, scale 2 (kopecks; every
//! currency of the platform has two minor digits); sums are exact, nothing is rounded.
//! **Debit** is money leaving the account (a payment captured, a transfer sent), **credit**
//! money coming in (a top-up, a transfer received); both are written as non-negative sums.
//! For every account and every period: `closing = opening + credit − debit`.
//! Holds do not move the balance (they only reduce what is available), so they are not
//! movements.

use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::period::{month_end, Period};
use crate::Error;

/// The most rows a daily report (days × accounts) is produced with at once.
pub const MAX_DAILY_ROWS: usize = 200_000;

/// What moved a wallet account's balance: one balance-changing wallet event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MovementKind {
    /// `WalletToppedUp`: money in.
    TopUp,
    /// `HoldCaptured`: a payment's held money leaves the wallet.
    Payment,
    /// `TransferSent` / `TransferDebited`: money out to another wallet.
    TransferOut,
    /// `TransferReceived` / `TransferCredited`: money in from another wallet.
    TransferIn,
    /// `PaymentRefunded` / `TransferRefunded`: a cancelled payment's money back (e-wallet
    /// spec §3.4), or a transfer the recipient refused.
    Refund,
}

impl MovementKind {
    /// The stored name (`top_up`, `payment`, `transfer_out`, `transfer_in`, `refund`).
    pub fn code(self) -> &'static str {
        match self {
            Self::TopUp => "top_up",
            Self::Payment => "payment",
            Self::TransferOut => "transfer_out",
            Self::TransferIn => "transfer_in",
            Self::Refund => "refund",
        }
    }

    /// The kind of a stored name; `None` for anything else.
    pub fn parse(code: &str) -> Option<Self> {
        Some(match code {
            "top_up" => Self::TopUp,
            "payment" => Self::Payment,
            "transfer_out" => Self::TransferOut,
            "transfer_in" => Self::TransferIn,
            "refund" => Self::Refund,
            _ => return None,
        })
    }

    /// Does the kind bring money in (credit)?
    pub fn is_credit(self) -> bool {
        matches!(self, Self::TopUp | Self::TransferIn | Self::Refund)
    }
}

/// One change of a wallet account's balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    /// The wallet account.
    pub wallet_id: Uuid,
    /// The event's position in the log: partition and sequence (a wallet's events are all in
    /// its client's partition, so the sequence orders them).
    pub partition: i32,
    pub sequence: i64,
    /// The event's business time (envelope `occurred_at`): it decides the movement's day.
    pub occurred_at: OffsetDateTime,
    pub kind: MovementKind,
    /// Signed amount, scale 2: positive money in, negative money out.
    pub amount: Decimal,
    /// The account's balance after the movement, scale 2.
    pub balance_after: Decimal,
}

/// A wallet account in a report, with its balance when the period starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub wallet_id: Uuid,
    pub client_id: Uuid,
    /// ISO 4217 code (`RUB`); empty for an account never opened.
    pub currency: String,
    /// The balance at the start of the period: the sum of every signed movement before it
    /// (an account starts at zero), scale 2.
    pub opening: Decimal,
}

/// The input of every report: the accounts with their opening balances and the movements
/// inside the period (any order; movements of other accounts or outside the period are an
/// error of the caller and are ignored).
#[derive(Debug, Clone)]
pub struct Ledger {
    pub period: Period,
    pub accounts: Vec<Account>,
    pub movements: Vec<Movement>,
}

/// One account's line of the turnover sheet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TurnoverRow {
    pub wallet_id: Uuid,
    pub client_id: Uuid,
    pub currency: String,
    /// Balance at the start of the period.
    pub opening: Decimal,
    /// Money out during the period (non-negative).
    pub debit: Decimal,
    /// Money in during the period (non-negative).
    pub credit: Decimal,
    /// Balance at the end of the period: `opening + credit − debit`.
    pub closing: Decimal,
    /// How many movements the period holds.
    pub movements: u64,
}

/// The sums of the sheet's lines in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub currency: String,
    pub accounts: u64,
    pub opening: Decimal,
    pub debit: Decimal,
    pub credit: Decimal,
    pub closing: Decimal,
    pub movements: u64,
}

/// The turnover balance sheet: per account, opening balance, debit and credit turnover and
/// closing balance for the period; totals per currency (amounts of different currencies are
/// never added up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnoverSheet {
    pub period: Period,
    /// Ordered by client, then wallet.
    pub rows: Vec<TurnoverRow>,
    /// Ordered by currency code.
    pub totals: Vec<Totals>,
}

/// One account's day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DailyRow {
    pub date: Date,
    pub wallet_id: Uuid,
    pub client_id: Uuid,
    pub currency: String,
    /// Balance at the start of the day (the previous day's closing).
    pub opening: Decimal,
    /// Money out during the day (non-negative).
    pub debit: Decimal,
    /// Money in during the day (non-negative).
    pub credit: Decimal,
    /// Balance at the end of the day: `opening + credit − debit`.
    pub closing: Decimal,
}

/// The closing balance of every account on every calendar day of the period, days without
/// movements included (their closing is the previous day's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyBalances {
    pub period: Period,
    /// Ordered by date, then client, then wallet.
    pub rows: Vec<DailyRow>,
}

/// Per account: (debit, credit, count) per day of the period.
type DayTurnover = BTreeMap<Date, (Decimal, Decimal, u64)>;

impl Ledger {
    fn accounts_sorted(&self) -> Vec<&Account> {
        let mut accounts: Vec<&Account> = self.accounts.iter().collect();
        accounts.sort_by_key(|a| (a.client_id, a.wallet_id));
        accounts.dedup_by_key(|a| a.wallet_id);
        accounts
    }

    /// The movements inside the period, per account and day.
    fn by_account_and_day(&self) -> BTreeMap<Uuid, DayTurnover> {
        let (start, end) = (self.period.start(), self.period.end());
        let mut out: BTreeMap<Uuid, DayTurnover> = BTreeMap::new();
        for m in &self.movements {
            if m.occurred_at < start || m.occurred_at >= end {
                continue;
            }
            let day = out
                .entry(m.wallet_id)
                .or_default()
                .entry(self.period.day_of(m.occurred_at))
                .or_insert((Decimal::ZERO, Decimal::ZERO, 0));
            if m.amount.is_sign_negative() {
                day.0 -= m.amount;
            } else {
                day.1 += m.amount;
            }
            day.2 += 1;
        }
        out
    }

    /// The turnover balance sheet of the period (seed 003, «Оборотно-сальдовая ведомость»).
    pub fn turnover(&self) -> TurnoverSheet {
        let days = self.by_account_and_day();
        let mut rows = Vec::new();
        for a in self.accounts_sorted() {
            let (mut debit, mut credit, mut movements) = (Decimal::ZERO, Decimal::ZERO, 0);
            for (d, c, n) in days.get(&a.wallet_id).into_iter().flat_map(|m| m.values()) {
                debit += d;
                credit += c;
                movements += n;
            }
            rows.push(TurnoverRow {
                wallet_id: a.wallet_id,
                client_id: a.client_id,
                currency: a.currency.clone(),
                opening: a.opening,
                debit,
                credit,
                closing: a.opening + credit - debit,
                movements,
            });
        }
        let mut totals: BTreeMap<&str, Totals> = BTreeMap::new();
        for r in &rows {
            let t = totals.entry(&r.currency).or_insert_with(|| Totals {
                currency: r.currency.clone(),
                accounts: 0,
                opening: Decimal::ZERO,
                debit: Decimal::ZERO,
                credit: Decimal::ZERO,
                closing: Decimal::ZERO,
                movements: 0,
            });
            t.accounts += 1;
            t.opening += r.opening;
            t.debit += r.debit;
            t.credit += r.credit;
            t.closing += r.closing;
            t.movements += r.movements;
        }
        TurnoverSheet {
            period: self.period,
            totals: totals.into_values().collect(),
            rows,
        }
    }

    /// The closing balance of every account on every day of the period (seed 003, «Остатки
    /// на счетах кошельков за каждый день»).
    ///
    /// Errors: [`Error::TooLarge`] past [`MAX_DAILY_ROWS`] rows (days × accounts).
    pub fn daily(&self) -> Result<DailyBalances, Error> {
        let accounts = self.accounts_sorted();
        let days = usize::try_from(self.period.days()).unwrap_or(usize::MAX);
        let size = days.saturating_mul(accounts.len());
        if size > MAX_DAILY_ROWS {
            return Err(Error::TooLarge {
                rows: size,
                max: MAX_DAILY_ROWS,
            });
        }
        let turnover = self.by_account_and_day();
        let mut balances: Vec<Decimal> = accounts.iter().map(|a| a.opening).collect();
        let mut rows = Vec::with_capacity(size);
        for date in self.period.each_day() {
            for (a, balance) in accounts.iter().zip(balances.iter_mut()) {
                let (debit, credit, _) = turnover
                    .get(&a.wallet_id)
                    .and_then(|d| d.get(&date))
                    .copied()
                    .unwrap_or((Decimal::ZERO, Decimal::ZERO, 0));
                let opening = *balance;
                *balance = opening + credit - debit;
                rows.push(DailyRow {
                    date,
                    wallet_id: a.wallet_id,
                    client_id: a.client_id,
                    currency: a.currency.clone(),
                    opening,
                    debit,
                    credit,
                    closing: *balance,
                });
            }
        }
        Ok(DailyBalances {
            period: self.period,
            rows,
        })
    }

    /// Checks each account's movements against the balances recorded with them: in log order
    /// (sequence), `balance before + amount = balance_after`, the first balance being the
    /// opening. A read model in which this fails disagrees with the log.
    ///
    /// Errors: [`Error::Inconsistent`] naming the first account and movement that disagree.
    pub fn check(&self) -> Result<(), Error> {
        let mut by_wallet: BTreeMap<Uuid, Vec<&Movement>> = BTreeMap::new();
        for m in &self.movements {
            by_wallet.entry(m.wallet_id).or_default().push(m);
        }
        for a in &self.accounts {
            let mut balance = a.opening;
            let mut moves = by_wallet.remove(&a.wallet_id).unwrap_or_default();
            moves.sort_by_key(|m| (m.partition, m.sequence));
            for m in moves {
                balance += m.amount;
                if balance != m.balance_after {
                    return Err(Error::Inconsistent {
                        wallet_id: a.wallet_id,
                        message: format!(
                            "the movement at partition {} sequence {} leaves {} by the amounts but records {}",
                            m.partition, m.sequence, balance, m.balance_after
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

/// How a balance chart samples the period (seed 003, module of graphical reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartBy {
    /// The closing balance of every day.
    Day,
    /// The closing balance of the last day of every month in the period; for a period that
    /// ends before its last month does, that month's point is the period's last day.
    Month,
}

impl ChartBy {
    /// `day` or `month`.
    ///
    /// Errors: [`Error::Invalid`] for anything else.
    pub fn parse(text: &str) -> Result<Self, Error> {
        match text {
            "day" => Ok(Self::Day),
            "month" => Ok(Self::Month),
            other => Err(Error::Invalid(format!(
                "`{other}`: a chart is by `day` or by `month`"
            ))),
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Month => "month",
        }
    }
}

/// One line of a balance chart: the summed closing balances of the accounts in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Series {
    pub currency: String,
    /// (day, balance at the end of that day), in date order.
    pub points: Vec<(Date, Decimal)>,
}

impl Ledger {
    /// The balance-change chart's data: per currency, the accounts' summed closing balance on
    /// each sampled day ([`ChartBy`]). Computed day by day without keeping a row per account
    /// and day, so a month-end chart over years of many accounts has no row limit.
    pub fn series(&self, by: ChartBy) -> Vec<Series> {
        let to = self.period.to();
        let accounts = self.accounts_sorted();
        let turnover = self.by_account_and_day();
        let mut balances: Vec<Decimal> = accounts.iter().map(|a| a.opening).collect();
        let mut sums: BTreeMap<&str, Vec<(Date, Decimal)>> = BTreeMap::new();
        for date in self.period.each_day() {
            for (a, balance) in accounts.iter().zip(balances.iter_mut()) {
                if let Some((debit, credit, _)) =
                    turnover.get(&a.wallet_id).and_then(|d| d.get(&date))
                {
                    *balance += *credit - *debit;
                }
            }
            let sampled = match by {
                ChartBy::Day => true,
                ChartBy::Month => date == month_end(date) || date == to,
            };
            if !sampled {
                continue;
            }
            for (a, balance) in accounts.iter().zip(&balances) {
                let points = sums.entry(&a.currency).or_default();
                match points.last_mut() {
                    Some((d, sum)) if *d == date => *sum += *balance,
                    _ => points.push((date, *balance)),
                }
            }
        }
        sums.into_iter()
            .map(|(currency, points)| Series {
                currency: currency.to_owned(),
                points,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::period::MOSCOW;
    use rust_decimal_macros::dec;
    use time::macros::{date, datetime};

    fn movement(
        wallet: Uuid,
        sequence: i64,
        at: OffsetDateTime,
        kind: MovementKind,
        amount: Decimal,
        after: Decimal,
    ) -> Movement {
        Movement {
            wallet_id: wallet,
            partition: 0,
            sequence,
            occurred_at: at,
            kind,
            amount,
            balance_after: after,
        }
    }

    fn ledger() -> (Ledger, Uuid, Uuid) {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let client = Uuid::from_u128(9);
        let period =
            Period::new(date!(2026 - 11 - 01), date!(2026 - 11 - 05), MOSCOW, 366).expect("period");
        let ledger = Ledger {
            period,
            accounts: vec![
                Account {
                    wallet_id: a,
                    client_id: client,
                    currency: "RUB".into(),
                    opening: dec!(100.00),
                },
                Account {
                    wallet_id: b,
                    client_id: client,
                    currency: "RUB".into(),
                    opening: dec!(0.00),
                },
            ],
            movements: vec![
                // 1 November, 10:00 Moscow.
                movement(
                    a,
                    10,
                    datetime!(2026-11-01 07:00 UTC),
                    MovementKind::TopUp,
                    dec!(1000.00),
                    dec!(1100.00),
                ),
                // 2 November 00:30 Moscow (still 1 November in UTC).
                movement(
                    a,
                    11,
                    datetime!(2026-11-01 21:30 UTC),
                    MovementKind::Payment,
                    dec!(-250.25),
                    dec!(849.75),
                ),
                movement(
                    a,
                    12,
                    datetime!(2026-11-04 09:00 UTC),
                    MovementKind::TransferOut,
                    dec!(-49.75),
                    dec!(800.00),
                ),
                movement(
                    b,
                    13,
                    datetime!(2026-11-04 09:00 UTC),
                    MovementKind::TransferIn,
                    dec!(49.75),
                    dec!(49.75),
                ),
            ],
        };
        (ledger, a, b)
    }

    #[test]
    fn turnover_reconciles_opening_credit_debit_and_closing() {
        let (ledger, a, b) = ledger();
        let sheet = ledger.turnover();
        let ra = sheet.rows.iter().find(|r| r.wallet_id == a).expect("a");
        assert_eq!(
            (ra.opening, ra.debit, ra.credit, ra.closing, ra.movements),
            (dec!(100.00), dec!(300.00), dec!(1000.00), dec!(800.00), 3)
        );
        let rb = sheet.rows.iter().find(|r| r.wallet_id == b).expect("b");
        assert_eq!(
            (rb.opening, rb.debit, rb.credit, rb.closing),
            (dec!(0.00), dec!(0.00), dec!(49.75), dec!(49.75))
        );
        for r in &sheet.rows {
            assert_eq!(r.opening + r.credit - r.debit, r.closing);
        }
        // The last recorded balance of each account is its closing.
        assert_eq!(ra.closing, dec!(800.00));
        let t = &sheet.totals[0];
        assert_eq!(
            (
                t.currency.as_str(),
                t.accounts,
                t.opening,
                t.debit,
                t.credit,
                t.closing
            ),
            (
                "RUB",
                2,
                dec!(100.00),
                dec!(300.00),
                dec!(1049.75),
                dec!(849.75)
            )
        );
        // A transfer between the accounts moves nothing in total.
        assert_eq!(t.closing - t.opening, dec!(1000.00) - dec!(250.25));
        ledger
            .check()
            .expect("balances recorded with the movements agree");
    }

    #[test]
    fn every_calendar_day_has_a_row_days_without_movements_included() {
        let (ledger, a, _) = ledger();
        let daily = ledger.daily().expect("daily");
        assert_eq!(daily.rows.len(), 5 * 2);
        let closing: Vec<(Date, Decimal)> = daily
            .rows
            .iter()
            .filter(|r| r.wallet_id == a)
            .map(|r| (r.date, r.closing))
            .collect();
        assert_eq!(
            closing,
            vec![
                (date!(2026 - 11 - 01), dec!(1100.00)),
                // The payment at 00:30 Moscow time belongs to 2 November.
                (date!(2026 - 11 - 02), dec!(849.75)),
                (date!(2026 - 11 - 03), dec!(849.75)),
                (date!(2026 - 11 - 04), dec!(800.00)),
                (date!(2026 - 11 - 05), dec!(800.00)),
            ]
        );
        for r in &daily.rows {
            assert_eq!(r.opening + r.credit - r.debit, r.closing, "{r:?}");
        }
        // Each day opens with the previous day's closing.
        for pair in daily
            .rows
            .iter()
            .filter(|r| r.wallet_id == a)
            .collect::<Vec<_>>()
            .windows(2)
        {
            assert_eq!(pair[0].closing, pair[1].opening);
        }
        // The daily report's last closing is the turnover sheet's closing.
        let sheet = ledger.turnover();
        for row in &sheet.rows {
            let last = daily
                .rows
                .iter()
                .rev()
                .find(|r| r.wallet_id == row.wallet_id)
                .expect("a row per account");
            assert_eq!(last.closing, row.closing);
        }
    }

    #[test]
    fn movements_outside_the_period_are_not_turnover() {
        let (mut ledger, a, _) = ledger();
        ledger.movements.push(movement(
            a,
            20,
            datetime!(2026-11-05 21:00 UTC), // 6 November 00:00 Moscow: the next day
            MovementKind::TopUp,
            dec!(5.00),
            dec!(805.00),
        ));
        let sheet = ledger.turnover();
        let ra = sheet.rows.iter().find(|r| r.wallet_id == a).expect("a");
        assert_eq!(ra.closing, dec!(800.00));
        assert_eq!(ra.movements, 3);
    }

    #[test]
    fn a_recorded_balance_that_disagrees_with_the_amounts_is_found() {
        let (mut ledger, a, _) = ledger();
        ledger.movements[2].balance_after = dec!(801.00);
        match ledger.check() {
            Err(Error::Inconsistent { wallet_id, message }) => {
                assert_eq!(wallet_id, a);
                assert!(message.contains("sequence 12"), "{message}");
            }
            other => panic!("expected an inconsistency, got {other:?}"),
        }
    }

    #[test]
    fn chart_series_sum_per_currency_by_day_or_month_end() {
        let (mut ledger, _, _) = ledger();
        ledger.period =
            Period::new(date!(2026 - 10 - 30), date!(2026 - 12 - 10), MOSCOW, 366).expect("period");
        let by_day = ledger.series(ChartBy::Day);
        assert_eq!(by_day.len(), 1);
        assert_eq!(by_day[0].points.len(), 42);
        assert_eq!(by_day[0].points[0], (date!(2026 - 10 - 30), dec!(100.00)));
        // Each day's point is the sum of that day's closing balances in the daily report.
        let daily = ledger.daily().expect("daily");
        for (date, sum) in &by_day[0].points {
            let closing: Decimal = daily
                .rows
                .iter()
                .filter(|r| r.date == *date)
                .map(|r| r.closing)
                .sum();
            assert_eq!(*sum, closing, "{date}");
        }
        let by_month = ledger.series(ChartBy::Month);
        assert_eq!(
            by_month[0].points,
            vec![
                (date!(2026 - 10 - 31), dec!(100.00)),
                (date!(2026 - 11 - 30), dec!(849.75)),
                (date!(2026 - 12 - 10), dec!(849.75)),
            ]
        );
    }

    #[test]
    fn too_many_daily_rows_are_refused() {
        let (mut ledger, _, _) = ledger();
        ledger.period =
            Period::new(date!(2026 - 01 - 01), date!(2026 - 12 - 31), MOSCOW, 366).expect("period");
        ledger.accounts = (0..600)
            .map(|i| Account {
                wallet_id: Uuid::from_u128(1000 + i),
                client_id: Uuid::from_u128(9),
                currency: "RUB".into(),
                opening: Decimal::ZERO,
            })
            .collect();
        assert!(matches!(ledger.daily(), Err(Error::TooLarge { .. })));
    }
}
