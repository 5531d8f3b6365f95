//! Servicing of an issued loan (seed 000 §6.13.1, gdp-loan-service) as pure functions over a
//! [`Ledger`]: the debt by component, daily accrual, instalments falling due and overdue,
//! penalties, repayment allocation, early repayment, prolongation, stopping and resuming
//! accrual, write-off, and the legal caps (`crate::caps`). The loan aggregate, `etr calc
//! payoff` and the property tests share this one implementation.
//!
//! **Amounts** are roubles with kopecks. **Days**: interest of a day accrues at the day's end
//! on the principal owed that day (current + overdue): annual rate ÷ 365 a day under
//! actual/365, ÷ 360 under 30/360. So a loan repaid on its disbursement day owes no interest,
//! and by an instalment's date the interest of every day since the previous one has accrued.
//! Accrual is kept exact and booked in kopecks: what is booked is the exact running total
//! rounded half-to-even, less what was booked before, so the rounding never drifts.
//! **Penalties** accrue the same way on overdue principal at the contract's penalty rate
//! (353-FZ art. 5 part 21: at most 20 % a year while interest accrues).
//! **Due dates**: at the end of an instalment's date, what the client has not paid of its
//! principal part (principal repaid since the previous date counts; an excess counts towards
//! the next) becomes overdue principal, and all unpaid interest becomes overdue interest.
//! **Allocation** of a repayment (documented order): fees → penalties → overdue interest →
//! interest → overdue principal → principal; anything left is kept as the client's credit
//! (overpayment). A repayment never prepays principal beyond what it owes.
//! **Caps** by contract date: interest, penalties and fees together never exceed
//! [`crate::caps::max_charges`]; accrual stops for good when they reach it.
//! **Early repayment**: partial — after what is owed, the rest repays principal and the
//! remaining instalments are recomputed on the same dates (lower instalment) or the same
//! instalment over fewer dates (shorter term), the client's choice; full — the payoff
//! ([`payoff`]) closes the loan with zero debt.
//! **Prolongation** adds months to the term: the remaining principal is rescheduled over the
//! remaining and the added dates, and the product's fee is charged (counted in the cap).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::{Date, Duration};

use crate::caps;
use crate::money::{round_minor, Currency};
use crate::schedule::{self, DayCount, Instalment, Repayment, ScheduleError, Terms};

/// The highest penalty rate a year on overdue principal while interest accrues (353-FZ
/// art. 5 part 21).
pub const MAX_PENALTY_RATE: Decimal = rust_decimal_macros::dec!(0.20);

fn kopecks(v: Decimal) -> Decimal {
    round_minor(v, Currency::Rub)
}

/// What a loan's servicing is computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contract {
    /// Roubles, positive, at most 2 decimals.
    pub principal: Decimal,
    /// Nominal annual rate as a fraction (0.365 = 36.5 % a year).
    pub annual_rate: Decimal,
    /// Penalty on overdue principal, annual, as a fraction.
    pub penalty_rate: Decimal,
    pub day_count: DayCount,
    /// `Annuity` or `EqualPrincipal` (a bullet loan is one instalment of either).
    pub method: Repayment,
    /// The disbursement day; the first instalment falls a month later.
    #[serde(with = "crate::schedule::iso_date")]
    pub contract_date: Date,
    pub periods: u32,
}

/// What the client owes, by component. Roubles with kopecks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Debt {
    pub fees: Decimal,
    pub penalties: Decimal,
    pub overdue_interest: Decimal,
    pub interest: Decimal,
    pub overdue_principal: Decimal,
    pub principal: Decimal,
}

impl Debt {
    /// Everything owed.
    pub fn total(&self) -> Decimal {
        self.fees
            + self.penalties
            + self.overdue_interest
            + self.interest
            + self.overdue_principal
            + self.principal
    }

    /// The principal still owed, current and overdue.
    pub fn principal_owed(&self) -> Decimal {
        self.principal + self.overdue_principal
    }

    /// The components in allocation order, mutable.
    fn in_order(&mut self) -> [&mut Decimal; 6] {
        [
            &mut self.fees,
            &mut self.penalties,
            &mut self.overdue_interest,
            &mut self.interest,
            &mut self.overdue_principal,
            &mut self.principal,
        ]
    }
}

/// How a repayment was allocated, in the order it was ([`Debt`]'s components), and what was
/// left over as the client's credit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub paid: Debt,
    pub credit: Decimal,
}

/// Where a loan stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Standing {
    #[default]
    Open,
    /// Nothing is owed any more.
    Closed,
    WrittenOff,
}

/// A loan's servicing state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    pub contract: Contract,
    pub debt: Debt,
    /// The instalments not yet due, by date; their principal parts add up to the current
    /// principal (overdue principal is owed at once).
    pub schedule: Vec<Instalment>,
    /// Every day before this one has accrued.
    #[serde(with = "crate::schedule::iso_date")]
    pub accrued_until: Date,
    /// Interest, penalties and fees charged so far (the cap's measure).
    pub charges: Decimal,
    /// Exact accrual not yet booked (below a kopeck), interest and penalties.
    pub interest_residue: Decimal,
    pub penalty_residue: Decimal,
    /// Principal repaid since the last due date, towards the next instalment's part.
    pub principal_paid_towards_due: Decimal,
    pub principal_repaid: Decimal,
    /// Stopped by an operator (no accrual until resumed).
    pub accrual_stopped: bool,
    /// The charges reached the cap: no accrual any more.
    pub capped: bool,
    /// Paid beyond the debt, kept for the client.
    pub credit: Decimal,
    pub standing: Standing,
}

/// Why a servicing step is refused; each with its code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error("interest of {0} a day is above the cap of 0.8 % a day")]
    DailyRate(Decimal),
    #[error("a penalty rate of {0} a year is outside 0–20 %")]
    PenaltyRate(Decimal),
    #[error("the amount must be positive with at most 2 decimal places, got {0}")]
    Amount(Decimal),
    #[error("the loan is {0:?}")]
    NotOpen(Standing),
    #[error("{0} is before the loan's last accrued day {1}")]
    InThePast(Date, Date),
    #[error("an early repayment of {amount} does not cover the {owed} owed now")]
    EarlyRepaymentTooSmall { amount: Decimal, owed: Decimal },
    #[error("the loan has no instalment left to recompute")]
    NothingToReschedule,
    #[error("the signed schedule does not repay the principal on ascending dates after the contract date")]
    SignedSchedule,
}

impl Error {
    pub fn code(&self) -> &'static str {
        match self {
            Error::Schedule(e) => e.code(),
            Error::DailyRate(_) => "daily_rate_cap",
            Error::PenaltyRate(_) => "penalty_rate",
            Error::Amount(_) => "invalid_amount",
            Error::NotOpen(_) => "loan_not_open",
            Error::InThePast(..) => "date_in_the_past",
            Error::EarlyRepaymentTooSmall { .. } => "early_repayment_too_small",
            Error::NothingToReschedule => "nothing_to_reschedule",
            Error::SignedSchedule => "signed_schedule",
        }
    }
}

/// How the remaining instalments change after a partial early repayment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recalculate {
    /// The same dates, lower instalments.
    Instalment,
    /// About the same instalment, fewer dates.
    Term,
}

fn days_in_year(day_count: DayCount) -> Decimal {
    match day_count {
        DayCount::Thirty360 => Decimal::from(360),
        DayCount::Actual365 => Decimal::from(365),
    }
}

fn positive_kopecks(amount: Decimal) -> Result<Decimal, Error> {
    if amount <= Decimal::ZERO || amount.normalize().scale() > 2 {
        return Err(Error::Amount(amount));
    }
    Ok(amount)
}

fn schedule_terms(contract: &Contract, principal: Decimal, start: Date) -> Terms {
    Terms {
        principal,
        annual_rate: contract.annual_rate,
        periods: contract.periods,
        start,
        day_count: contract.day_count,
        repayment: contract.method,
    }
}

/// Opens the ledger of a loan disbursed on the contract date: the whole principal owed, the
/// schedule of the contract.
///
/// Errors: [`Error::DailyRate`] above 0.8 % a day (353-FZ art. 5 part 23),
/// [`Error::PenaltyRate`] outside 0–20 % a year (part 21), the schedule's.
pub fn open(contract: Contract) -> Result<Ledger, Error> {
    let terms = schedule_terms(&contract, contract.principal, contract.contract_date);
    let schedule = schedule::schedule(&terms)?;
    open_with_schedule(contract, schedule)
}

/// Opens the ledger of a loan with the schedule the client signed (a payday loan's is one
/// instalment on its day).
///
/// Errors: those of [`open`]; [`Error::SignedSchedule`] when the schedule's principal parts
/// do not add up to the principal or its dates are not ascending after the contract date.
pub fn open_with_schedule(contract: Contract, schedule: Vec<Instalment>) -> Result<Ledger, Error> {
    let daily = contract.annual_rate / days_in_year(contract.day_count);
    if daily > caps::DAILY_RATE_CAP {
        return Err(Error::DailyRate(daily));
    }
    if contract.penalty_rate.is_sign_negative() || contract.penalty_rate > MAX_PENALTY_RATE {
        return Err(Error::PenaltyRate(contract.penalty_rate));
    }
    positive_kopecks(contract.principal)?;
    let parts: Decimal = schedule.iter().map(|i| i.principal).sum();
    let ascending = schedule
        .iter()
        .try_fold(contract.contract_date, |previous, i| {
            (i.date > previous).then_some(i.date)
        })
        .is_some();
    if schedule.is_empty() || parts != contract.principal || !ascending {
        return Err(Error::SignedSchedule);
    }
    Ok(Ledger {
        debt: Debt {
            principal: contract.principal,
            ..Debt::default()
        },
        schedule,
        accrued_until: contract.contract_date,
        charges: Decimal::ZERO,
        interest_residue: Decimal::ZERO,
        penalty_residue: Decimal::ZERO,
        principal_paid_towards_due: Decimal::ZERO,
        principal_repaid: Decimal::ZERO,
        accrual_stopped: false,
        capped: false,
        credit: Decimal::ZERO,
        standing: Standing::Open,
        contract,
    })
}

impl Ledger {
    /// The most the charges may reach (the contract date's cap).
    pub fn max_charges(&self) -> Decimal {
        caps::max_charges(self.contract.principal, self.contract.contract_date)
    }

    /// Books `amount` of charges, clipped to what the cap leaves; returns what was booked.
    fn charge(&mut self, amount: Decimal) -> Decimal {
        let room = (self.max_charges() - self.charges).max(Decimal::ZERO);
        let booked = amount.min(room);
        self.charges += booked;
        if self.charges >= self.max_charges() {
            self.capped = true;
        }
        booked
    }

    /// The end of `day`: an instalment due that day falls overdue for what is unpaid, then
    /// the day's interest and penalty accrue.
    fn end_of_day(&mut self, day: Date) {
        while self.schedule.first().is_some_and(|i| i.date <= day) {
            let due = self.schedule.remove(0);
            let unpaid = (due.principal - self.principal_paid_towards_due)
                .max(Decimal::ZERO)
                .min(self.debt.principal);
            self.principal_paid_towards_due =
                (self.principal_paid_towards_due - due.principal).max(Decimal::ZERO);
            self.debt.principal -= unpaid;
            self.debt.overdue_principal += unpaid;
            self.debt.overdue_interest += self.debt.interest;
            self.debt.interest = Decimal::ZERO;
        }
        if self.accrual_stopped || self.capped || self.standing != Standing::Open {
            return;
        }
        let year = days_in_year(self.contract.day_count);
        let exact_interest =
            self.interest_residue + self.debt.principal_owed() * self.contract.annual_rate / year;
        let interest = kopecks(exact_interest);
        self.interest_residue = exact_interest - interest;
        let booked = self.charge(interest.max(Decimal::ZERO));
        self.debt.interest += booked;
        let exact_penalty =
            self.penalty_residue + self.debt.overdue_principal * self.contract.penalty_rate / year;
        let penalty = kopecks(exact_penalty);
        self.penalty_residue = exact_penalty - penalty;
        let booked = self.charge(penalty.max(Decimal::ZERO));
        self.debt.penalties += booked;
    }

    /// Accrues every day before `date`.
    ///
    /// Errors: [`Error::InThePast`] for a date before the last accrued one.
    pub fn advance_to(&mut self, date: Date) -> Result<(), Error> {
        if date < self.accrued_until {
            return Err(Error::InThePast(date, self.accrued_until));
        }
        while self.accrued_until < date {
            let day = self.accrued_until;
            self.end_of_day(day);
            self.accrued_until = day + Duration::days(1);
        }
        Ok(())
    }

    /// Applies a repayment received on `date` (accrued up to it first) in the documented
    /// order; what exceeds the debt is kept as credit. The loan closes when nothing is owed.
    ///
    /// Errors: [`Error::Amount`], [`Error::NotOpen`], [`Error::InThePast`].
    pub fn repay(&mut self, date: Date, amount: Decimal) -> Result<Allocation, Error> {
        let amount = positive_kopecks(amount)?;
        self.ensure_open()?;
        self.advance_to(date)?;
        let mut left = amount;
        let mut paid = Debt::default();
        for (owed, out) in self.debt.in_order().into_iter().zip(paid.in_order()) {
            let part = left.min(*owed);
            *owed -= part;
            *out = part;
            left -= part;
        }
        let principal = paid.principal + paid.overdue_principal;
        self.principal_repaid += principal;
        self.principal_paid_towards_due += paid.principal;
        self.credit += left;
        self.close_if_repaid();
        Ok(Allocation { paid, credit: left })
    }

    /// A partial early repayment on `date`: the amount first pays everything owed now, the
    /// rest repays principal, and the remaining instalments are recomputed (`recalculate`);
    /// when it covers the whole debt the loan closes (the rest is credit).
    ///
    /// Errors: those of [`Ledger::repay`]; [`Error::EarlyRepaymentTooSmall`] when the amount
    /// does not exceed what is owed besides the current principal.
    pub fn repay_early(
        &mut self,
        date: Date,
        amount: Decimal,
        recalculate: Recalculate,
    ) -> Result<Allocation, Error> {
        let amount = positive_kopecks(amount)?;
        self.ensure_open()?;
        self.advance_to(date)?;
        let owed_now = self.debt.total() - self.debt.principal;
        if amount <= owed_now {
            return Err(Error::EarlyRepaymentTooSmall {
                amount,
                owed: owed_now,
            });
        }
        let allocation = self.repay(date, amount)?;
        // The principal repaid reschedules the rest.
        if self.standing == Standing::Open && !self.schedule.is_empty() {
            self.reschedule(date, recalculate)?;
        }
        Ok(allocation)
    }

    /// The amount that repays the loan in full on `date` (every component, interest of every
    /// day before `date`), without changing the ledger.
    ///
    /// Errors: [`Error::NotOpen`], [`Error::InThePast`].
    pub fn payoff(&self, date: Date) -> Result<Decimal, Error> {
        self.ensure_open()?;
        let mut future = self.clone();
        future.advance_to(date)?;
        Ok(future.debt.total())
    }

    /// Prolongs the loan by `months` from `date`: the current principal is rescheduled over
    /// the remaining dates and `months` more, and `fee` is charged (within the cap).
    ///
    /// Errors: [`Error::NotOpen`], [`Error::InThePast`], [`Error::NothingToReschedule`] for a
    /// loan whose every instalment is due, the schedule's.
    pub fn prolong(&mut self, date: Date, months: u32, fee: Decimal) -> Result<Decimal, Error> {
        self.ensure_open()?;
        self.advance_to(date)?;
        let Some(last) = self.schedule.last().map(|i| i.date) else {
            return Err(Error::NothingToReschedule);
        };
        let mut dates: Vec<Date> = self.schedule.iter().map(|i| i.date).collect();
        // The month of the last instalment counted from the contract date, then `months`
        // more on the same day of the month.
        let anchor = self.contract.contract_date;
        let mut passed = 1;
        while schedule::add_months(anchor, passed).is_some_and(|d| d < last) && passed < 1200 {
            passed += 1;
        }
        for k in 1..=months {
            dates.push(schedule::add_months(anchor, passed + k).ok_or(ScheduleError::Date)?);
        }
        self.contract.periods += months;
        self.rebuild_on(date, &dates)?;
        let booked = self.charge(kopecks(fee.max(Decimal::ZERO)));
        self.debt.fees += booked;
        Ok(booked)
    }

    /// Stops (or resumes) accrual from `date` on: the days before it accrue as they were.
    ///
    /// Errors: [`Error::NotOpen`], [`Error::InThePast`].
    pub fn set_accrual(&mut self, date: Date, stopped: bool) -> Result<(), Error> {
        self.ensure_open()?;
        self.advance_to(date)?;
        self.accrual_stopped = stopped;
        Ok(())
    }

    /// Writes the whole debt off on `date`; returns what was written off.
    ///
    /// Errors: [`Error::NotOpen`], [`Error::InThePast`].
    pub fn write_off(&mut self, date: Date) -> Result<Debt, Error> {
        self.ensure_open()?;
        self.advance_to(date)?;
        let written = std::mem::take(&mut self.debt);
        self.schedule.clear();
        self.standing = Standing::WrittenOff;
        Ok(written)
    }

    fn ensure_open(&self) -> Result<(), Error> {
        match self.standing {
            Standing::Open => Ok(()),
            other => Err(Error::NotOpen(other)),
        }
    }

    fn close_if_repaid(&mut self) {
        if self.debt.total().is_zero() {
            self.standing = Standing::Closed;
            self.schedule.clear();
        }
    }

    /// Recomputes the remaining instalments after an early repayment on `date`.
    fn reschedule(&mut self, date: Date, recalculate: Recalculate) -> Result<(), Error> {
        let dates: Vec<Date> = self.schedule.iter().map(|i| i.date).collect();
        match recalculate {
            Recalculate::Instalment => self.rebuild_on(date, &dates),
            Recalculate::Term => {
                // Keep the instalment the schedule asked for next; the fewest dates whose
                // schedule's first payment does not exceed it.
                let level = self.schedule.first().map_or(Decimal::ZERO, |i| i.payment);
                let mut chosen = dates.len();
                for n in 1..=dates.len() {
                    let terms = schedule_terms(&self.contract, self.debt.principal, date);
                    let trial = schedule::instalments_on(&terms, &dates[..n])?;
                    if trial.first().is_some_and(|i| i.payment <= level) {
                        chosen = n;
                        break;
                    }
                }
                self.rebuild_on(date, &dates[..chosen])
            }
        }
    }

    /// The remaining principal scheduled over `dates`, interest from `from`.
    fn rebuild_on(&mut self, from: Date, dates: &[Date]) -> Result<(), Error> {
        self.principal_paid_towards_due = Decimal::ZERO;
        if self.debt.principal.is_zero() {
            self.schedule.clear();
            return Ok(());
        }
        let terms = schedule_terms(&self.contract, self.debt.principal, from);
        self.schedule = schedule::instalments_on(&terms, dates)?;
        Ok(())
    }
}
