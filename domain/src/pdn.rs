//! The debt-load ratio (ПДН) of a borrower, per Bank of Russia Instruction 6579-U: the
//! average monthly payments on all the borrower's loans, **the new one included**, divided
//! by the borrower's average monthly income (seed 000, 6.12: scoring records the PDN with its
//! decision).
//!
//! The new loan's average monthly payment is Σ its payments ÷ its term in months, the term
//! counted in whole months rounded up (a term of 30 days or less counts as one month, so a
//! payday loan's whole repayment falls in one month); a monthly schedule's term is its number
//! of instalments. The ratio is a percentage rounded half away from zero to 1 decimal place.
//! Above 50 % the borrower is told of the risk; above the configured limit the application
//! is declined.

use rust_decimal::{Decimal, RoundingStrategy};
use rust_decimal_macros::dec;
use serde::{Deserialize, Serialize};

use crate::schedule::Instalment;

/// Above this (percent) the borrower gets a risk notice.
pub const RISK_NOTICE_ABOVE: Decimal = dec!(50);

/// What the ratio means for the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Acceptable,
    /// Above 50 %: the borrower must be told the loan may be hard to repay.
    RiskNotice,
    /// Above the configured limit.
    Decline,
}

/// A computed PDN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pdn {
    /// Percent, 1 decimal place.
    pub percent: Decimal,
    /// The new loan's average monthly payment, roubles (kopecks).
    pub new_loan_monthly: Decimal,
    /// All average monthly payments, the new loan's included, roubles.
    pub monthly_payments: Decimal,
    pub verdict: Verdict,
}

/// Why no PDN can be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PdnError {
    /// `pdn_income`
    #[error("the average monthly income must be positive, got {0}")]
    Income(Decimal),
    /// `pdn_payments`
    #[error("existing monthly payments must not be negative, got {0}")]
    Payments(Decimal),
    /// `pdn_schedule`
    #[error("the new loan has no instalments")]
    Schedule,
}

impl PdnError {
    pub fn code(&self) -> &'static str {
        match self {
            PdnError::Income(_) => "pdn_income",
            PdnError::Payments(_) => "pdn_payments",
            PdnError::Schedule => "pdn_schedule",
        }
    }
}

/// The new loan's average monthly payment: Σ payments ÷ months (whole months, rounded up;
/// at least 1), rounded to kopecks half-to-even. `term_days` is the days from issue to the
/// last instalment.
pub fn average_monthly_payment(instalments: &[Instalment], term_days: u32) -> Option<Decimal> {
    if instalments.is_empty() {
        return None;
    }
    let total: Decimal = instalments.iter().map(|i| i.payment).sum();
    let months = if instalments.len() > 1 {
        instalments.len() as u64
    } else {
        u64::from(term_days.div_ceil(30).max(1))
    };
    Some(
        (total / Decimal::from(months))
            .round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven),
    )
}

/// The PDN of a borrower with `monthly_income` and `existing_monthly_payments` (roubles) who
/// takes a loan repaid by `instalments` over `term_days`; `decline_above` is the configured
/// limit in percent.
///
/// Errors: [`PdnError::Income`] (not positive), [`PdnError::Payments`] (negative),
/// [`PdnError::Schedule`] (no instalments).
pub fn pdn(
    monthly_income: Decimal,
    existing_monthly_payments: Decimal,
    instalments: &[Instalment],
    term_days: u32,
    decline_above: Decimal,
) -> Result<Pdn, PdnError> {
    if monthly_income <= Decimal::ZERO {
        return Err(PdnError::Income(monthly_income));
    }
    if existing_monthly_payments < Decimal::ZERO {
        return Err(PdnError::Payments(existing_monthly_payments));
    }
    let new_loan_monthly =
        average_monthly_payment(instalments, term_days).ok_or(PdnError::Schedule)?;
    let monthly_payments = existing_monthly_payments + new_loan_monthly;
    let percent = (monthly_payments / monthly_income * Decimal::ONE_HUNDRED)
        .round_dp_with_strategy(1, RoundingStrategy::MidpointAwayFromZero);
    let verdict = if percent > decline_above {
        Verdict::Decline
    } else if percent > RISK_NOTICE_ABOVE {
        Verdict::RiskNotice
    } else {
        Verdict::Acceptable
    };
    Ok(Pdn {
        percent,
        new_loan_monthly,
        monthly_payments,
        verdict,
    })
}
