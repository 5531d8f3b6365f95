//! The full cost of credit (ПСК) of a cash-flow schedule, per Federal Law 353-FZ "On
//! consumer credit", art. 6 part 4:
//!
//! ПСК = i × ЧБП × 100, rounded to 3 decimal places (half away from zero), where i is the
//! **smallest positive root** of Σₖ ДПₖ ÷ ((1 + eₖ·i)(1 + i)^qₖ) = 0 and
//! - ДПₖ is the k-th cash flow with its sign (the issue negative, repayments positive);
//! - the **base period** is the interval that occurs most often between consecutive flows
//!   (ties: the shorter); an interval of 28–31 days counts as a calendar month, of 365–366
//!   days as a year, any other as that number of days;
//! - ЧБП, base periods in a 365-day year: 12 for a month, 1 for a year, 365 ÷ d for d days;
//! - qₖ is the number of whole base periods from the first flow to the k-th (calendar months
//!   for a monthly base period), and eₖ the rest of the way in fractions of a base period
//!   (days ÷ (365 ÷ 12) for a month, days ÷ d for d days).
//!
//! The root is bracketed by scanning i upwards geometrically from 10⁻⁹ until the sum changes
//! sign, then bisected to 10⁻¹⁸, all in `Decimal`. A term whose discount factor no longer
//! fits a `Decimal` (above 7.9·10²⁸) counts as zero: the flow it discounts is then smaller
//! than 10⁻²⁸ of itself. This converges for 7-day payday loans as for 30-year annuities.
//!
//! **PSK in money** is Σ ДПₖ: everything the borrower pays beyond what was issued.

use rust_decimal::{Decimal, RoundingStrategy};
use rust_decimal_macros::dec;
use serde::{Deserialize, Serialize};
use time::Date;

use crate::schedule::add_months;

/// One cash flow. `amount` in roubles: negative when the lender pays (the issue), positive
/// when the borrower pays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    #[serde(with = "crate::schedule::iso_date")]
    pub date: Date,
    pub amount: Decimal,
}

/// The base period of a flow schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BasePeriod {
    Month,
    Year,
    Days(u32),
}

/// The PSK of a schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Psk {
    /// Percent a year, 3 decimal places.
    pub percent: Decimal,
    /// Σ of the flows, roubles: what the borrower pays beyond the amount issued.
    pub money: Decimal,
    pub base_period: BasePeriod,
    /// Base periods in a 365-day year (ЧБП), unrounded.
    pub periods_per_year: Decimal,
    /// The base period's rate i, unrounded.
    pub period_rate: Decimal,
}

/// Why no PSK can be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PskError {
    /// `psk_flows`
    #[error("a PSK needs at least two flows, the first negative (the issue), in date order")]
    Flows,
    /// `psk_no_cost`: the borrower pays back less than was issued; such a product is refused.
    #[error("the flows repay {repaid} of {issued} issued: less than was lent")]
    RepaysLess { issued: Decimal, repaid: Decimal },
    /// `psk_no_root`
    #[error("the PSK equation has no positive root for these flows")]
    NoRoot,
}

impl PskError {
    pub fn code(&self) -> &'static str {
        match self {
            PskError::Flows => "psk_flows",
            PskError::RepaysLess { .. } => "psk_no_cost",
            PskError::NoRoot => "psk_no_root",
        }
    }
}

/// The base period: the most frequent interval between consecutive flows, shorter on ties.
pub fn base_period(flows: &[Flow]) -> Option<BasePeriod> {
    let mut counts: std::collections::BTreeMap<i64, usize> = std::collections::BTreeMap::new();
    for pair in flows.windows(2) {
        let days = (pair[1].date - pair[0].date).whole_days();
        if days > 0 {
            *counts.entry(days).or_default() += 1;
        }
    }
    let (days, _) = counts
        .iter()
        .max_by(|(da, ca), (db, cb)| ca.cmp(cb).then(db.cmp(da)))?;
    Some(match days {
        28..=31 => BasePeriod::Month,
        365 | 366 => BasePeriod::Year,
        d => BasePeriod::Days(u32::try_from(*d).ok()?),
    })
}

/// (qₖ, eₖ) of a flow on `date` for a schedule that starts on `start`.
fn position(start: Date, date: Date, base: BasePeriod) -> (u32, Decimal) {
    match base {
        BasePeriod::Month | BasePeriod::Year => {
            let step = if base == BasePeriod::Month { 1 } else { 12 };
            let mut q = 0u32;
            let mut reached = start;
            while let Some(next) = add_months(start, (q + 1) * step) {
                if next > date {
                    break;
                }
                q += 1;
                reached = next;
            }
            let rest = Decimal::from((date - reached).whole_days());
            let period_days = if base == BasePeriod::Month {
                dec!(365) / dec!(12)
            } else {
                dec!(365)
            };
            (q, rest / period_days)
        }
        BasePeriod::Days(d) => {
            let days = u32::try_from((date - start).whole_days()).unwrap_or(0);
            let d = d.max(1);
            (days / d, Decimal::from(days % d) / Decimal::from(d))
        }
    }
}

/// Σ ДПₖ ÷ ((1 + eₖ·i)(1 + i)^qₖ).
fn discounted(terms: &[(Decimal, u32, Decimal)], i: Decimal) -> Decimal {
    let mut sum = Decimal::ZERO;
    let factor = Decimal::ONE + i;
    for (amount, q, e) in terms {
        let mut growth = Decimal::ONE + *e * i;
        let mut overflow = false;
        for _ in 0..*q {
            match growth.checked_mul(factor) {
                Some(g) => growth = g,
                None => {
                    overflow = true;
                    break;
                }
            }
        }
        if !overflow {
            if let Some(v) = amount.checked_div(growth) {
                sum += v;
            }
        }
    }
    sum
}

/// The PSK of `flows` (in date order, the first the issue).
///
/// Errors: [`PskError::Flows`] (fewer than two flows, the first not negative, or dates out
/// of order), [`PskError::RepaysLess`] (Σ flows < 0: the product is refused),
/// [`PskError::NoRoot`].
pub fn psk(flows: &[Flow]) -> Result<Psk, PskError> {
    let first = flows.first().ok_or(PskError::Flows)?;
    if flows.len() < 2
        || first.amount >= Decimal::ZERO
        || flows.windows(2).any(|p| p[1].date < p[0].date)
    {
        return Err(PskError::Flows);
    }
    let money: Decimal = flows.iter().map(|f| f.amount).sum();
    if money < Decimal::ZERO {
        let issued: Decimal = -flows
            .iter()
            .filter(|f| f.amount < Decimal::ZERO)
            .map(|f| f.amount)
            .sum::<Decimal>();
        return Err(PskError::RepaysLess {
            issued,
            repaid: issued + money,
        });
    }
    let base = base_period(flows).ok_or(PskError::Flows)?;
    let periods_per_year = match base {
        BasePeriod::Month => dec!(12),
        BasePeriod::Year => Decimal::ONE,
        BasePeriod::Days(d) => dec!(365) / Decimal::from(d.max(1)),
    };
    let result = |period_rate: Decimal| Psk {
        percent: {
            let mut p = (period_rate * periods_per_year * Decimal::ONE_HUNDRED)
                .round_dp_with_strategy(3, RoundingStrategy::MidpointAwayFromZero);
            p.rescale(3);
            p
        },
        money,
        base_period: base,
        periods_per_year,
        period_rate,
    };
    if money.is_zero() {
        return Ok(result(Decimal::ZERO));
    }
    let terms: Vec<(Decimal, u32, Decimal)> = flows
        .iter()
        .map(|f| {
            let (q, e) = position(first.date, f.date, base);
            (f.amount, q, e)
        })
        .collect();
    // Σ at i = 0 is `money` > 0; find the first i where it is no longer positive.
    let mut low = Decimal::ZERO;
    let mut high = dec!(0.000000001);
    let mut steps = 0;
    while discounted(&terms, high) > Decimal::ZERO {
        low = high;
        high *= dec!(1.5);
        steps += 1;
        if steps > 200 {
            return Err(PskError::NoRoot);
        }
    }
    let tolerance = dec!(0.000000000000000001);
    while high - low > tolerance {
        let mid = (low + high) / dec!(2);
        if discounted(&terms, mid) > Decimal::ZERO {
            low = mid;
        } else {
            high = mid;
        }
    }
    Ok(result((low + high) / dec!(2)))
}
