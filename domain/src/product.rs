//! Loan products and the offers made from them (seed 000, 6.12: scoring returns up to three
//! offers from the product catalogue; each shows its schedule and PSK before the client
//! chooses).
//!
//! An offer is computed, never typed in: the product's pricing gives the schedule
//! ([`crate::schedule`]), the schedule's cash flows give the PSK ([`crate::psk`]), and an
//! offer that would break a cap of its contract date ([`crate::caps`]) is refused — it is
//! never made. Amounts are roubles with kopecks.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::{Date, Duration};

use crate::caps::{self, CapError};
use crate::money::{round_minor, Currency};
use crate::psk::{self, Flow, Psk, PskError};
use crate::schedule::{self, DayCount, Instalment, Repayment, ScheduleError, Terms};

/// How a product charges interest and over what terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Pricing {
    /// Instalments every calendar month at a nominal annual rate (a fraction).
    Monthly {
        annual_rate: Decimal,
        min_months: u32,
        max_months: u32,
        day_count: DayCount,
        repayment: Repayment,
    },
    /// One repayment after a number of days (a payday loan): interest = principal × daily
    /// rate × days, rounded to kopecks half-to-even.
    Daily {
        daily_rate: Decimal,
        min_days: u32,
        max_days: u32,
    },
}

/// A loan product of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub id: String,
    pub name: String,
    /// Roubles, inclusive.
    pub min_amount: Decimal,
    pub max_amount: Decimal,
    pub pricing: Pricing,
    /// Penalty on overdue principal, annual fraction, at most 0.20 (353-FZ art. 5 part 21).
    #[serde(default = "default_penalty_rate")]
    pub penalty_rate: Decimal,
    /// Charged per prolongation, roubles with kopecks.
    #[serde(default)]
    pub prolongation_fee: Decimal,
}

fn default_penalty_rate() -> Decimal {
    crate::servicing::MAX_PENALTY_RATE
}

impl Product {
    /// How a loan of this product is serviced: a monthly product at its rate and method, a
    /// payday loan at its daily rate × 365 on actual/365 (so a day accrues exactly the daily
    /// rate), rescheduled as an annuity when prolonged.
    pub fn servicing(&self) -> crate::loan::Servicing {
        let (annual_rate, day_count, method) = match &self.pricing {
            Pricing::Monthly {
                annual_rate,
                day_count,
                repayment,
                ..
            } => (*annual_rate, *day_count, *repayment),
            Pricing::Daily { daily_rate, .. } => (
                *daily_rate * Decimal::from(365),
                DayCount::Actual365,
                Repayment::Annuity,
            ),
        };
        crate::loan::Servicing {
            annual_rate,
            penalty_rate: self.penalty_rate,
            day_count,
            method: match method {
                Repayment::Bullet => Repayment::Annuity,
                other => other,
            },
            prolongation_fee: self.prolongation_fee,
        }
    }
}

/// An offer: a product at an amount and term, with everything the client sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    pub product_id: String,
    /// Roubles.
    pub amount: Decimal,
    /// Months or days, as the product's pricing counts them.
    pub term: u32,
    #[serde(with = "crate::schedule::iso_date")]
    pub contract_date: Date,
    pub instalments: Vec<Instalment>,
    /// Σ interest and fees over the term, roubles.
    pub charges: Decimal,
    pub psk: Psk,
}

/// Why an offer cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    /// `offer_amount`
    #[error("the amount {amount} is outside the product's {min}–{max}")]
    Amount {
        amount: Decimal,
        min: Decimal,
        max: Decimal,
    },
    /// `offer_term`
    #[error("the term {term} is outside the product's {min}–{max} {unit}")]
    Term {
        term: u32,
        min: u32,
        max: u32,
        unit: &'static str,
    },
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error(transparent)]
    Psk(#[from] PskError),
    #[error(transparent)]
    Cap(#[from] CapError),
}

impl OfferError {
    pub fn code(&self) -> &'static str {
        match self {
            OfferError::Amount { .. } => "offer_amount",
            OfferError::Term { .. } => "offer_term",
            OfferError::Schedule(e) => e.code(),
            OfferError::Psk(e) => e.code(),
            OfferError::Cap(e) => e.code(),
        }
    }
}

/// The offer of `product` for `amount` over `term` (months or days) concluded on
/// `contract_date`.
///
/// Errors: [`OfferError::Amount`], [`OfferError::Term`] outside the product's ranges; a
/// schedule or PSK that cannot be computed; [`OfferError::Cap`] when the offer would pass
/// 0.8 % a day or the overpayment cap of its contract date.
pub fn offer(
    product: &Product,
    amount: Decimal,
    term: u32,
    contract_date: Date,
) -> Result<Offer, OfferError> {
    if amount < product.min_amount || amount > product.max_amount {
        return Err(OfferError::Amount {
            amount,
            min: product.min_amount,
            max: product.max_amount,
        });
    }
    let (instalments, daily_rate) = match &product.pricing {
        Pricing::Monthly {
            annual_rate,
            min_months,
            max_months,
            day_count,
            repayment,
        } => {
            if term < *min_months || term > *max_months {
                return Err(OfferError::Term {
                    term,
                    min: *min_months,
                    max: *max_months,
                    unit: "months",
                });
            }
            let instalments = schedule::schedule(&Terms {
                principal: amount,
                annual_rate: *annual_rate,
                periods: term,
                start: contract_date,
                day_count: *day_count,
                repayment: *repayment,
            })?;
            (instalments, *annual_rate / Decimal::from(365))
        }
        Pricing::Daily {
            daily_rate,
            min_days,
            max_days,
        } => {
            if term < *min_days || term > *max_days {
                return Err(OfferError::Term {
                    term,
                    min: *min_days,
                    max: *max_days,
                    unit: "days",
                });
            }
            let date = contract_date
                .checked_add(Duration::days(i64::from(term)))
                .ok_or(ScheduleError::Date)?;
            let interest = round_minor(amount * *daily_rate * Decimal::from(term), Currency::Rub);
            let principal = round_minor(amount, Currency::Rub);
            (
                vec![Instalment {
                    number: 1,
                    date,
                    days: term,
                    payment: principal + interest,
                    principal,
                    interest,
                    balance: round_minor(Decimal::ZERO, Currency::Rub),
                }],
                *daily_rate,
            )
        }
    };
    let charges = schedule::total_interest(&instalments);
    caps::check(contract_date, amount, daily_rate, charges)?;
    let mut flows = vec![Flow {
        date: contract_date,
        amount: -amount,
    }];
    flows.extend(instalments.iter().map(|i| Flow {
        date: i.date,
        amount: i.payment,
    }));
    let psk = psk::psk(&flows)?;
    Ok(Offer {
        product_id: product.id.clone(),
        amount,
        term,
        contract_date,
        instalments,
        charges,
        psk,
    })
}
