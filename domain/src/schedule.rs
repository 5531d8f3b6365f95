//! The preliminary repayment schedule of a loan offer (seed 000, 6.12–6.13: an offer shows
//! its schedule and PSK before the client signs).
//!
//! Amounts are roubles with kopecks (2 decimal places). Every instalment's interest is
//! rounded to kopecks half-to-even (banker's rounding); an annuity's level payment is rounded
//! the same way; the **last instalment absorbs the rounding residual**, so Σ principal parts
//! equals the principal exactly and the balance after the last instalment is 0.00.
//! Instalments are never rounded to whole roubles.
//!
//! Periods are calendar months from the start date (the same day of the month, or the
//! month's last day when it is shorter). Interest of a period is
//! - **30/360**: balance × annual rate ÷ 12 (every month counts 30 days of a 360-day year);
//! - **actual/365**: balance × annual rate × (days in the period) ÷ 365.
//!
//! **Annuity**: the level payment is P·r ÷ (1 − (1 + r)^−n) with r = annual rate ÷ 12; each
//! instalment pays the period's interest and the rest of the payment as principal (an
//! instalment whose interest alone passes the level payment — a long month under actual/365
//! at a high rate — pays that interest and no principal).
//! **Equal principal** (differentiated): every instalment repays P ÷ n of the principal,
//! rounded to kopecks half-to-even (the last repays what is left), plus the period's interest
//! on the balance, so the payments decrease.
//! **Bullet**: interest of every period and the whole principal are paid at the end, in one
//! instalment (simple interest, nothing capitalised).

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde::{Deserialize, Serialize};
use time::{Date, Month};

use crate::money::{round_minor, Currency};

/// How a period's interest counts days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DayCount {
    /// 30/360: a month is 1/12 of a year whatever its length.
    #[serde(rename = "30/360")]
    Thirty360,
    /// Actual/365: the period's calendar days over 365.
    #[serde(rename = "actual/365")]
    Actual365,
}

time::serde::format_description!(pub iso_date, Date, "[year]-[month]-[day]");

impl DayCount {
    /// `30/360` or `actual/365`.
    pub fn parse(s: &str) -> Option<DayCount> {
        match s {
            "30/360" => Some(DayCount::Thirty360),
            "actual/365" => Some(DayCount::Actual365),
            _ => None,
        }
    }
}

/// How the principal is repaid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Repayment {
    /// Level payments every month.
    Annuity,
    /// The same principal part every month, interest on the balance.
    EqualPrincipal,
    /// Everything at the end.
    Bullet,
}

/// What a schedule is computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terms {
    /// Roubles, at most 2 decimal places, positive.
    pub principal: Decimal,
    /// Nominal annual rate as a fraction (0.245 = 24.5 % a year), not negative.
    pub annual_rate: Decimal,
    /// Number of monthly periods, 1 to 600.
    pub periods: u32,
    /// The issue date; the first period ends a month later.
    #[serde(with = "iso_date")]
    pub start: Date,
    pub day_count: DayCount,
    pub repayment: Repayment,
}

/// One instalment. Amounts in roubles with kopecks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instalment {
    /// 1-based.
    pub number: u32,
    #[serde(with = "iso_date")]
    pub date: Date,
    /// Calendar days from the previous date (the start for the first).
    pub days: u32,
    /// `principal + interest`.
    pub payment: Decimal,
    pub principal: Decimal,
    pub interest: Decimal,
    /// What is left to repay after this instalment.
    pub balance: Decimal,
}

/// Why no schedule can be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("the principal must be positive with at most 2 decimal places, got {0}")]
    Principal(Decimal),
    #[error("the rate must not be negative, got {0}")]
    Rate(Decimal),
    #[error("the number of periods must be 1 to 600, got {0}")]
    Periods(u32),
    #[error("the schedule runs past the last date the calendar holds")]
    Date,
    #[error("the numbers are too large to compute exactly")]
    Overflow,
}

impl ScheduleError {
    /// A stable code for API responses.
    pub fn code(&self) -> &'static str {
        match self {
            ScheduleError::Principal(_) => "schedule_principal",
            ScheduleError::Rate(_) => "schedule_rate",
            ScheduleError::Periods(_) => "schedule_periods",
            ScheduleError::Date => "schedule_date",
            ScheduleError::Overflow => "schedule_overflow",
        }
    }
}

fn kopecks(v: Decimal) -> Decimal {
    round_minor(v, Currency::Rub)
}

/// The date `months` calendar months after `start`: the same day, or the last day of a
/// shorter month.
pub fn add_months(start: Date, months: u32) -> Option<Date> {
    let total =
        i64::from(start.year()) * 12 + i64::from(u8::from(start.month())) - 1 + i64::from(months);
    let year = i32::try_from(total.div_euclid(12)).ok()?;
    let month = Month::try_from(u8::try_from(total.rem_euclid(12) + 1).ok()?).ok()?;
    let last = time::util::days_in_month(month, year);
    Date::from_calendar_date(year, month, start.day().min(last)).ok()
}

/// The interest of one period on `balance` (unrounded).
fn period_interest(terms: &Terms, balance: Decimal, days: u32) -> Option<Decimal> {
    match terms.day_count {
        DayCount::Thirty360 => balance
            .checked_mul(terms.annual_rate)?
            .checked_div(dec!(12)),
        DayCount::Actual365 => balance
            .checked_mul(terms.annual_rate)?
            .checked_mul(Decimal::from(days))?
            .checked_div(dec!(365)),
    }
}

/// The level annuity payment, rounded to kopecks half-to-even.
fn annuity_payment(principal: Decimal, monthly_rate: Decimal, periods: u32) -> Option<Decimal> {
    if monthly_rate.is_zero() {
        return Some(kopecks(principal.checked_div(Decimal::from(periods))?));
    }
    let mut growth = Decimal::ONE;
    let factor = Decimal::ONE.checked_add(monthly_rate)?;
    for _ in 0..periods {
        growth = growth.checked_mul(factor)?;
    }
    // P·r·(1+r)^n ÷ ((1+r)^n − 1), the same as P·r ÷ (1 − (1+r)^−n).
    let payment = principal
        .checked_mul(monthly_rate)?
        .checked_mul(growth)?
        .checked_div(growth.checked_sub(Decimal::ONE)?)?;
    Some(kopecks(payment))
}

/// The schedule of `terms`.
///
/// Errors: [`ScheduleError`] for a principal that is not a positive kopeck amount, a
/// negative rate, periods outside 1–600, dates past the calendar's end, or numbers too large
/// for exact arithmetic.
pub fn schedule(terms: &Terms) -> Result<Vec<Instalment>, ScheduleError> {
    if terms.principal <= Decimal::ZERO || terms.principal.normalize().scale() > 2 {
        return Err(ScheduleError::Principal(terms.principal));
    }
    if terms.annual_rate.is_sign_negative() && !terms.annual_rate.is_zero() {
        return Err(ScheduleError::Rate(terms.annual_rate));
    }
    if !(1..=600).contains(&terms.periods) {
        return Err(ScheduleError::Periods(terms.periods));
    }
    let dates = (1..=terms.periods)
        .map(|n| add_months(terms.start, n).ok_or(ScheduleError::Date))
        .collect::<Result<Vec<_>, _>>()?;
    instalments_on(terms, &dates)
}

/// The instalments of `terms` falling on `dates` (ascending, after `terms.start`; their
/// number stands for `terms.periods`), by the same rules as [`schedule`]: what a loan's
/// remaining schedule is recomputed with after an early repayment or a prolongation, its
/// dates kept.
///
/// Errors: as [`schedule`]; [`ScheduleError::Date`] for dates out of order.
pub fn instalments_on(terms: &Terms, dates: &[Date]) -> Result<Vec<Instalment>, ScheduleError> {
    if terms.principal <= Decimal::ZERO || terms.principal.normalize().scale() > 2 {
        return Err(ScheduleError::Principal(terms.principal));
    }
    let periods = u32::try_from(dates.len()).map_err(|_| ScheduleError::Periods(u32::MAX))?;
    if !(1..=600).contains(&periods) {
        return Err(ScheduleError::Periods(periods));
    }
    let terms = &Terms {
        periods,
        ..terms.clone()
    };
    let monthly_rate = terms
        .annual_rate
        .checked_div(dec!(12))
        .ok_or(ScheduleError::Overflow)?;
    let level = match terms.repayment {
        Repayment::Annuity => Some(
            annuity_payment(terms.principal, monthly_rate, terms.periods)
                .ok_or(ScheduleError::Overflow)?,
        ),
        Repayment::EqualPrincipal | Repayment::Bullet => None,
    };
    let part = kopecks(
        terms
            .principal
            .checked_div(Decimal::from(terms.periods))
            .ok_or(ScheduleError::Overflow)?,
    );
    let mut balance = kopecks(terms.principal);
    // The end of the last period, and the date of the last instalment paid.
    let mut previous = terms.start;
    let mut last_due = terms.start;
    let mut accrued = Decimal::ZERO;
    let mut out = Vec::with_capacity(terms.periods as usize);
    for (date, number) in dates.iter().copied().zip(1..) {
        let days = whole_days(previous, date)?;
        previous = date;
        let interest =
            kopecks(period_interest(terms, balance, days).ok_or(ScheduleError::Overflow)?);
        let last = number == terms.periods;
        let (principal, interest) = match level {
            // The last instalment repays what is left, whatever the level payment was.
            _ if last && terms.repayment != Repayment::Bullet => (balance, interest),
            None if terms.repayment == Repayment::EqualPrincipal => (part.min(balance), interest),
            Some(payment) => (
                (payment - interest).max(Decimal::ZERO).min(balance),
                interest,
            ),
            // A bullet loan pays each period's interest, on the whole principal, at the end.
            None if last => (balance, accrued + interest),
            None => {
                accrued += interest;
                continue;
            }
        };
        balance = kopecks(balance - principal);
        out.push(Instalment {
            number: u32::try_from(out.len() + 1).unwrap_or(number),
            date,
            days: whole_days(last_due, date)?,
            payment: kopecks(principal + interest),
            principal: kopecks(principal),
            interest,
            balance,
        });
        last_due = date;
    }
    Ok(out)
}

/// Calendar days from `from` to `to`.
fn whole_days(from: Date, to: Date) -> Result<u32, ScheduleError> {
    u32::try_from((to - from).whole_days()).map_err(|_| ScheduleError::Date)
}

/// Σ interest of a schedule, in roubles.
/// Calendar days from `start` to the last instalment (`None` for an empty schedule or one
/// that ends before it starts): the term a payday product and the PDN count in days.
pub fn term_days(start: Date, instalments: &[Instalment]) -> Option<u32> {
    let last = instalments.last()?;
    u32::try_from((last.date - start).whole_days()).ok()
}

pub fn total_interest(instalments: &[Instalment]) -> Decimal {
    kopecks(instalments.iter().map(|i| i.interest).sum())
}
