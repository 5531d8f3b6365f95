//! The legal caps on what a consumer loan may cost, by contract date (353-FZ art. 5 parts
//! 23–24 as amended; DESIGN.md, "Money and time"): interest at most **0.8 % a day**, and all
//! charges together (interest, fees, penalties) at most **130 % of the principal** for
//! contracts concluded up to 2026-03-31, **100 %** from 2026-04-01. An offer that would break
//! either is never made; accrual on a loan stops where it reaches the overpayment cap.

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use time::macros::date;
use time::Date;

/// Interest per day, as a fraction.
pub const DAILY_RATE_CAP: Decimal = dec!(0.008);

/// The first contract date of the 100 % overpayment cap.
pub const LOWER_OVERPAYMENT_CAP_FROM: Date = date!(2026 - 04 - 01);

/// What the charges of a contract concluded on `contract_date` may add up to, as a fraction
/// of the principal: 1.3 up to 2026-03-31, 1.0 from 2026-04-01.
pub fn overpayment_cap(contract_date: Date) -> Decimal {
    if contract_date < LOWER_OVERPAYMENT_CAP_FROM {
        dec!(1.3)
    } else {
        Decimal::ONE
    }
}

/// The most the charges of a loan of `principal` concluded on `contract_date` may reach,
/// roubles, rounded down to kopecks (the cap is never exceeded by rounding).
pub fn max_charges(principal: Decimal, contract_date: Date) -> Decimal {
    (principal * overpayment_cap(contract_date))
        .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::ToZero)
}

/// Which cap an offer breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapError {
    /// `daily_rate_cap`
    #[error("interest of {daily} a day is above the cap of 0.8 % a day")]
    DailyRate { daily: Decimal },
    /// `overpayment_cap`
    #[error("charges of {charges} are above {max} ({percent} % of the principal {principal}) for a contract of {contract_date}")]
    Overpayment {
        charges: Decimal,
        max: Decimal,
        percent: Decimal,
        principal: Decimal,
        contract_date: Date,
    },
}

impl CapError {
    pub fn code(&self) -> &'static str {
        match self {
            CapError::DailyRate { .. } => "daily_rate_cap",
            CapError::Overpayment { .. } => "overpayment_cap",
        }
    }
}

/// Checks an offer: its interest rate per day (`daily_rate`, a fraction: a nominal annual
/// rate ÷ 365) and its total charges over the whole term (roubles).
///
/// Errors: [`CapError::DailyRate`], then [`CapError::Overpayment`].
pub fn check(
    contract_date: Date,
    principal: Decimal,
    daily_rate: Decimal,
    charges: Decimal,
) -> Result<(), CapError> {
    if daily_rate > DAILY_RATE_CAP {
        return Err(CapError::DailyRate { daily: daily_rate });
    }
    let max = max_charges(principal, contract_date);
    if charges > max {
        return Err(CapError::Overpayment {
            charges,
            max,
            percent: overpayment_cap(contract_date) * Decimal::ONE_HUNDRED,
            principal,
            contract_date,
        });
    }
    Ok(())
}
