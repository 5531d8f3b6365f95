//! Issued loans (seed 000 §6.8–6.10, servicing §6.13.1 gdp-loan-service): the lifecycle and,
//! for a loan concluded from an offer, its servicing [`Ledger`](crate::servicing::Ledger) —
//! daily accrual, repayments allocated by component, early repayment, prolongation, stopping
//! and resuming accrual, write-off and closing.
//!
//! ```text
//! Active ◀──▶ Overdue ──▶ WrittenOff
//!   │            │
//!   └── the debt reaches zero ──▶ Closed     (Repaid: a loan without a ledger)
//! ```
//!
//! **Business date.** A serviced loan's operations happen on its *open day*: the ledger's
//! `accrued_until`, the first day whose interest has not accrued. The day-close
//! ([`Command::CloseDays`]) accrues every day before a date and so opens the next one; the
//! platform closes each calendar day after it ends, so in service the open day is today.
//! Every event carries its business date, and `evolve` re-runs the same ledger function the
//! decision ran, so the state is exactly what the decision saw.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::Date;
use uuid::Uuid;

use crate::command::{AggregateKind, AggregateRef, Context, State, States};
use crate::error::Error;
use crate::ids::ClientId;
use crate::money::{Currency, Money};
use crate::schedule::{DayCount, Instalment, Repayment};
use crate::servicing::{self, Allocation, Ledger, Recalculate, Standing};
use crate::wallet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Status {
    #[default]
    New,
    Active,
    Overdue,
    /// Repaid in full (a loan without a servicing ledger).
    Repaid,
    /// Nothing is owed any more: repaid in full (a serviced loan).
    Closed,
    WrittenOff,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Active => "active",
            Status::Overdue => "overdue",
            Status::Repaid => "repaid",
            Status::Closed => "closed",
            Status::WrittenOff => "written_off",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Loan {
    pub status: Status,
    pub id: Uuid,
    pub client_id: Option<ClientId>,
    pub application_id: Option<Uuid>,
    pub principal: Option<Money>,
    /// What is owed, roubles with kopecks (the ledger's total debt for a serviced loan).
    #[serde(with = "crate::money::amount_str")]
    pub outstanding: Decimal,
    pub term_days: u32,
    /// The contract's terms, for loans issued by the conveyor.
    #[serde(default)]
    pub terms: Option<Terms>,
    /// The servicing ledger, for a loan whose terms carry its [`Servicing`].
    #[serde(default)]
    pub ledger: Option<Box<Ledger>>,
    /// A repayment from a bound card at the bank (`card_repayment`), until its outcome is
    /// recorded; no other repayment or write-off meanwhile.
    #[serde(default)]
    pub pending_card: Option<PendingCard>,
}

/// A card repayment the bank is asked for: the amount fixed at the request (roubles with
/// kopecks), applied as an early repayment with `early` when set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCard {
    pub repayment_id: Uuid,
    pub card_id: Uuid,
    pub amount: Money,
    pub early: Option<Recalculate>,
}

/// How an issued loan is serviced beyond its schedule: the product's pricing as the
/// contract states it. Rates are annual fractions (0.365 = 36.5 % a year).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Servicing {
    pub annual_rate: Decimal,
    /// Penalty on overdue principal, at most 20 % a year (353-FZ art. 5 part 21).
    pub penalty_rate: Decimal,
    pub day_count: DayCount,
    /// How the remaining principal is rescheduled (annuity or equal principal).
    pub method: Repayment,
    /// Charged per prolongation, roubles with kopecks (zero when the product has none).
    pub prolongation_fee: Decimal,
}

/// The terms of a loan concluded from an offer: its schedule and PSK (353-FZ art. 6) as
/// the client signed them. Amounts in roubles with kopecks; `psk_percent` has 3 decimals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terms {
    pub product_id: String,
    pub term: u32,
    /// `months` or `days`.
    pub term_unit: String,
    #[serde(with = "crate::schedule::iso_date")]
    pub contract_date: time::Date,
    pub schedule: Vec<crate::schedule::Instalment>,
    pub psk_percent: Decimal,
    pub psk_money: Decimal,
    /// The bound card the money was paid out to.
    pub card_id: Option<Uuid>,
    pub payout_reference: String,
    /// Present for loans the platform services (every loan issued from an offer with it).
    #[serde(default)]
    pub servicing: Option<Servicing>,
}

impl Loan {
    /// The product's fee per prolongation, roubles (zero without one or without servicing).
    pub fn prolongation_fee(&self) -> Decimal {
        self.terms
            .as_ref()
            .and_then(|t| t.servicing.as_ref())
            .map_or(Decimal::ZERO, |s| s.prolongation_fee)
    }
}

/// When business day `day` ends: midnight after it, Moscow time. A quote of the day (its
/// payoff) holds until then; the day-close then accrues the day.
pub fn business_day_end(day: Date) -> time::OffsetDateTime {
    day.next_day()
        .unwrap_or(day)
        .midnight()
        .assume_offset(crate::limits::MOSCOW)
}

impl Terms {
    /// The servicing contract these terms describe, if they carry servicing.
    pub fn contract(&self, principal: Decimal) -> Option<servicing::Contract> {
        let s = self.servicing.as_ref()?;
        Some(servicing::Contract {
            principal,
            annual_rate: s.annual_rate,
            penalty_rate: s.penalty_rate,
            day_count: s.day_count,
            method: s.method,
            contract_date: self.contract_date,
            periods: u32::try_from(self.schedule.len()).unwrap_or(u32::MAX),
        })
    }

    fn open_ledger(&self, principal: Decimal) -> Option<Result<Ledger, servicing::Error>> {
        let contract = self.contract(principal)?;
        Some(servicing::open_with_schedule(
            contract,
            self.schedule.clone(),
        ))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    IssueLoan {
        application_id: Uuid,
        principal: Money,
        term_days: u32,
        daily_rate_percent: String,
        terms: Option<Box<Terms>>,
    },
    AcceptRepayment {
        repayment_id: Uuid,
        amount: Money,
    },
    ProlongLoan {
        days: u32,
        fee: Money,
    },
    MarkOverdue,
    /// Closes the business days before `through`: each accrues its interest and penalty and
    /// lets the instalments due that day fall overdue. Closing days already closed changes
    /// nothing.
    CloseDays {
        #[serde(with = "crate::schedule::iso_date")]
        through: Date,
    },
    /// A repayment of `amount` from the client's wallet on the open day, allocated in the
    /// documented order (`servicing`); an excess stays as the client's credit.
    Repay {
        repayment_id: Uuid,
        wallet_id: Uuid,
        amount: Money,
    },
    /// An early repayment from the wallet: partial (`amount`, the remaining instalments
    /// recalculated as the client chose) or full (`amount` absent: the payoff of the open
    /// day, which closes the loan with zero debt).
    RepayEarly {
        repayment_id: Uuid,
        wallet_id: Uuid,
        amount: Option<Money>,
        recalculate: Recalculate,
    },
    /// A repayment from the client's bound card `card_id`: `amount`, or the payoff of the open
    /// day when absent (with `early`), applied once the bank has authorised and captured it;
    /// `early` applies it as an early repayment with that recalculation.
    RequestCardRepayment {
        repayment_id: Uuid,
        card_id: Uuid,
        amount: Option<Money>,
        early: Option<Recalculate>,
    },
    /// The card repayment process records the bank's outcome.
    RecordCardRepayment {
        repayment_id: Uuid,
        outcome: crate::card_repayment::Outcome,
    },
    /// Prolongs the loan by `months` for the product's prolongation fee.
    ExtendTerm {
        months: u32,
    },
    /// Operator: no interest or penalty accrues from the open day until resumed.
    StopAccrual {
        reason: String,
    },
    ResumeAccrual {
        reason: String,
    },
    /// Operator: the whole debt is written off.
    WriteOff {
        reason: String,
    },
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::IssueLoan { .. } => "IssueLoan",
            Command::AcceptRepayment { .. } => "AcceptRepayment",
            Command::ProlongLoan { .. } => "ProlongLoan",
            Command::MarkOverdue => "MarkOverdue",
            Command::CloseDays { .. } => "CloseDays",
            Command::Repay { .. } => "Repay",
            Command::RepayEarly { .. } => "RepayEarly",
            Command::RequestCardRepayment { .. } => "RequestCardRepayment",
            Command::RecordCardRepayment { .. } => "RecordCardRepayment",
            Command::ExtendTerm { .. } => "ExtendTerm",
            Command::StopAccrual { .. } => "StopAccrual",
            Command::ResumeAccrual { .. } => "ResumeAccrual",
            Command::WriteOff { .. } => "WriteOff",
        }
    }

    /// The other aggregates the command touches: the wallet a repayment comes from (and
    /// the client whose bound card a card repayment names: `client` is its id).
    pub fn other_targets(&self) -> Vec<AggregateRef> {
        match self {
            Command::Repay { wallet_id, .. } | Command::RepayEarly { wallet_id, .. } => {
                vec![AggregateRef::wallet(*wallet_id)]
            }
            _ => vec![],
        }
    }

    /// Whether deciding the command needs the client's state (its bound cards).
    pub fn needs_client(&self) -> bool {
        matches!(self, Command::RequestCardRepayment { .. })
    }
}

/// A repayment's components, roubles with kopecks, in the allocation order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paid {
    pub fees: Decimal,
    pub penalties: Decimal,
    pub overdue_interest: Decimal,
    pub interest: Decimal,
    pub overdue_principal: Decimal,
    pub principal: Decimal,
    /// Beyond the debt: kept as the client's credit.
    pub credit: Decimal,
}

impl From<&Allocation> for Paid {
    fn from(a: &Allocation) -> Paid {
        Paid {
            fees: a.paid.fees,
            penalties: a.paid.penalties,
            overdue_interest: a.paid.overdue_interest,
            interest: a.paid.interest,
            overdue_principal: a.paid.overdue_principal,
            principal: a.paid.principal,
            credit: a.credit,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    LoanIssued {
        loan_id: Uuid,
        application_id: Uuid,
        principal: Money,
        term_days: u32,
        daily_rate_percent: String,
        #[serde(default)]
        terms: Option<Box<Terms>>,
    },
    RepaymentAccepted {
        repayment_id: Uuid,
        amount: Money,
    },
    LoanProlonged {
        days: u32,
        fee: Money,
    },
    LoanBecameOverdue,
    LoanRepaid,
    /// The days `from` ..= the day before `through` were closed: `interest` and `penalties`
    /// accrued (roubles with kopecks, within the cap), `fell_overdue` of principal fell
    /// overdue. `debt` is the total owed after.
    InterestAccrued {
        #[serde(with = "crate::schedule::iso_date")]
        from: Date,
        #[serde(with = "crate::schedule::iso_date")]
        through: Date,
        interest: Decimal,
        penalties: Decimal,
        fell_overdue: Decimal,
        debt: Decimal,
    },
    /// A repayment from the client's card was asked of the bank: `amount` fixed now, the card
    /// named by its bank token (never its number).
    CardRepaymentRequested {
        repayment_id: Uuid,
        card_id: Uuid,
        masked_pan: String,
        token: String,
        amount: Money,
        early: Option<Recalculate>,
    },
    /// The bank declined the card repayment: nothing was paid.
    CardRepaymentDeclined {
        repayment_id: Uuid,
        reason: String,
    },
    /// A repayment on business day `date`, allocated; paid from the wallet `wallet_id` or the
    /// bound card `card_id`. `early` names the recalculation of an early repayment, whose new
    /// remaining schedule is `schedule` (empty otherwise).
    RepaymentAllocated {
        repayment_id: Uuid,
        #[serde(with = "crate::schedule::iso_date")]
        date: Date,
        wallet_id: Option<Uuid>,
        card_id: Option<Uuid>,
        amount: Money,
        paid: Paid,
        early: Option<Recalculate>,
        schedule: Vec<Instalment>,
        debt: Decimal,
    },
    /// Prolonged on `date` by `months` for `fee` (as charged, within the cap); the remaining
    /// principal follows `schedule`.
    TermExtended {
        #[serde(with = "crate::schedule::iso_date")]
        date: Date,
        months: u32,
        fee: Decimal,
        schedule: Vec<Instalment>,
    },
    AccrualStopped {
        #[serde(with = "crate::schedule::iso_date")]
        date: Date,
        reason: String,
    },
    AccrualResumed {
        #[serde(with = "crate::schedule::iso_date")]
        date: Date,
        reason: String,
    },
    /// The whole debt, `amount`, was written off on `date`.
    LoanWrittenOff {
        #[serde(with = "crate::schedule::iso_date")]
        date: Date,
        reason: String,
        amount: Decimal,
    },
    /// Nothing is owed since `date`; `credit` is what the client overpaid and keeps.
    LoanClosed {
        #[serde(with = "crate::schedule::iso_date")]
        date: Date,
        credit: Decimal,
    },
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::LoanIssued { .. } => "LoanIssued",
            Event::RepaymentAccepted { .. } => "RepaymentAccepted",
            Event::LoanProlonged { .. } => "LoanProlonged",
            Event::LoanBecameOverdue => "LoanBecameOverdue",
            Event::LoanRepaid => "LoanRepaid",
            Event::InterestAccrued { .. } => "InterestAccrued",
            Event::RepaymentAllocated { .. } => "RepaymentAllocated",
            Event::CardRepaymentRequested { .. } => "CardRepaymentRequested",
            Event::CardRepaymentDeclined { .. } => "CardRepaymentDeclined",
            Event::TermExtended { .. } => "TermExtended",
            Event::AccrualStopped { .. } => "AccrualStopped",
            Event::AccrualResumed { .. } => "AccrualResumed",
            Event::LoanWrittenOff { .. } => "LoanWrittenOff",
            Event::LoanClosed { .. } => "LoanClosed",
        }
    }
}

fn refuse(state: &Loan, action: &'static str) -> Error {
    Error::InvalidTransition {
        aggregate: "loan",
        id: state.id,
        action,
        status: state.status.label().into(),
    }
}

fn loan_ref(id: Uuid) -> AggregateRef {
    AggregateRef {
        kind: AggregateKind::Loan,
        id,
    }
}

/// Decides a command of loan `loan_id` of `client` against the states it targets: the loan
/// and, for a repayment, the wallet it is paid from (debited in the same commit).
///
/// Errors: [`Error::LoanNotFound`] for a loan of another client or none (other than
/// issuing); those of [`decide`]; a wallet's refusals ([`Error::WalletNotFound`],
/// [`Error::InsufficientFunds`], currency).
pub fn decide_in(
    states: &States,
    client: ClientId,
    loan_id: Uuid,
    command: &Command,
    _context: &Context,
) -> Result<Vec<(AggregateRef, crate::Event)>, Error> {
    let state = match states.get(&loan_ref(loan_id)) {
        Some(State::Loan(l)) => l.clone(),
        _ => Loan {
            id: loan_id,
            ..Default::default()
        },
    };
    let issuing = matches!(command, Command::IssueLoan { .. });
    if state.client_id.is_some_and(|c| c != client) || (!issuing && state.client_id.is_none()) {
        return Err(Error::LoanNotFound(loan_id));
    }
    let events = match command {
        Command::RequestCardRepayment {
            repayment_id,
            card_id,
            amount,
            early,
        } => {
            let owner = crate::wallet::client_of(states, client);
            let card = owner
                .cards
                .iter()
                .find(|c| c.card_id == *card_id)
                .ok_or(Error::CardNotFound(*card_id))?;
            request_card_repayment(&state, *repayment_id, card, *amount, *early)?
        }
        other => decide(&state, loan_id, other)?,
    };
    let mut out = Vec::with_capacity(events.len() + 1);
    for event in &events {
        if let Event::RepaymentAllocated {
            repayment_id,
            wallet_id: Some(wallet_id),
            amount,
            ..
        } = event
        {
            let from = wallet::wallet_of(states, *wallet_id);
            out.push((
                AggregateRef::wallet(*wallet_id),
                crate::Event::Wallet(wallet::debit_for_loan(
                    &from,
                    client,
                    loan_id,
                    *repayment_id,
                    *amount,
                )?),
            ));
        }
    }
    out.extend(
        events
            .into_iter()
            .map(|e| (loan_ref(loan_id), crate::Event::Loan(e))),
    );
    Ok(out)
}

fn require_reason(reason: &str) -> Result<(), Error> {
    if reason.trim().is_empty() {
        return Err(Error::Invalid("a reason is required".into()));
    }
    Ok(())
}

fn ledger_of(state: &Loan) -> Result<Ledger, Error> {
    match &state.ledger {
        Some(l) => Ok((**l).clone()),
        None => Err(Error::Invalid(format!(
            "loan {} has no servicing ledger: only a loan concluded from an offer is serviced",
            state.id
        ))),
    }
}

fn rub(amount: Money) -> Result<Decimal, Error> {
    amount.ensure_currency(Currency::Rub)?;
    Ok(amount.amount)
}

/// The events that follow a ledger step: the loan closes when nothing is owed.
fn closing(before: &Ledger, after: &Ledger, date: Date) -> Option<Event> {
    (before.standing == Standing::Open && after.standing == Standing::Closed).then_some(
        Event::LoanClosed {
            date,
            credit: after.credit,
        },
    )
}

fn no_pending_card(state: &Loan) -> Result<(), Error> {
    match &state.pending_card {
        Some(p) => Err(Error::RepaymentInProgress(p.repayment_id)),
        None => Ok(()),
    }
}

/// Decides a card repayment's request: the amount (the payoff of the open day when absent)
/// must be one the ledger would take now.
fn request_card_repayment(
    state: &Loan,
    repayment_id: Uuid,
    card: &crate::client::BoundCard,
    amount: Option<Money>,
    early: Option<Recalculate>,
) -> Result<Vec<Event>, Error> {
    if !matches!(state.status, Status::Active | Status::Overdue) {
        return Err(refuse(state, "accept a repayment"));
    }
    no_pending_card(state)?;
    let ledger = ledger_of(state)?;
    let date = ledger.accrued_until;
    let amount = match (amount, early) {
        (Some(a), _) => rub(a)?,
        (None, Some(_)) => ledger.payoff(date)?,
        (None, None) => {
            return Err(Error::Invalid(
                "an amount is required unless the loan is repaid early in full".into(),
            ))
        }
    };
    // A dry run: what the bank is asked for must be a repayment the ledger takes now.
    let mut trial = ledger.clone();
    match early {
        Some(r) if amount != ledger.payoff(date)? => {
            trial.repay_early(date, amount, r).map(drop)?
        }
        _ => trial.repay(date, amount).map(drop)?,
    }
    Ok(vec![Event::CardRepaymentRequested {
        repayment_id,
        card_id: card.card_id,
        masked_pan: card.masked_pan.clone(),
        token: card.token.clone(),
        amount: Money::new(amount, Currency::Rub),
        early,
    }])
}

/// The repayment of `amount` on the open day, as the early repayment `early` when set (the
/// payoff and an early repayment no longer above what is owed besides principal are plain
/// repayments); its events.
fn allocate(
    state: &Loan,
    repayment_id: Uuid,
    source: (Option<Uuid>, Option<Uuid>),
    amount: Decimal,
    early: Option<Recalculate>,
) -> Result<Vec<Event>, Error> {
    let before = ledger_of(state)?;
    let date = before.accrued_until;
    let mut after = before.clone();
    let owed_now = before.debt.total() - before.debt.principal;
    let early = early.filter(|_| amount > owed_now && amount != before.debt.total());
    let allocation = match early {
        Some(r) => after.repay_early(date, amount, r)?,
        None => after.repay(date, amount)?,
    };
    let mut events = vec![Event::RepaymentAllocated {
        repayment_id,
        date,
        wallet_id: source.0,
        card_id: source.1,
        amount: Money::new(amount, Currency::Rub),
        paid: Paid::from(&allocation),
        early,
        schedule: if early.is_some() {
            after.schedule.clone()
        } else {
            vec![]
        },
        debt: after.debt.total(),
    }];
    events.extend(closing(&before, &after, date));
    Ok(events)
}

fn overdue(ledger: &Ledger) -> bool {
    !(ledger.debt.overdue_principal.is_zero() && ledger.debt.overdue_interest.is_zero())
}

/// Decides a command against the loan alone.
///
/// Errors: [`Error::InvalidTransition`] in the wrong status; for servicing commands
/// [`Error::Invalid`] on a loan without a ledger and the ledger's refusals
/// ([`Error::Servicing`]: amount, loan not open, early repayment too small, nothing to
/// reschedule, schedule errors); a currency other than roubles.
pub fn decide(state: &Loan, id: Uuid, command: &Command) -> Result<Vec<Event>, Error> {
    use Status as S;
    match (state.status, command) {
        (
            S::New,
            Command::IssueLoan {
                application_id,
                principal,
                term_days,
                daily_rate_percent,
                terms,
            },
        ) => {
            if let Some(opened) = terms.as_ref().and_then(|t| t.open_ledger(principal.amount)) {
                opened?;
            }
            Ok(vec![Event::LoanIssued {
                loan_id: id,
                application_id: *application_id,
                principal: *principal,
                term_days: *term_days,
                daily_rate_percent: daily_rate_percent.clone(),
                terms: terms.clone(),
            }])
        }
        (
            S::Active | S::Overdue,
            Command::AcceptRepayment {
                repayment_id,
                amount,
            },
        ) if state.ledger.is_none() => {
            if let Some(p) = state.principal {
                amount.ensure_currency(p.currency)?;
            }
            if amount.amount > state.outstanding {
                return Err(Error::Invalid(format!(
                    "repayment {} exceeds the outstanding {}",
                    amount.amount, state.outstanding
                )));
            }
            let mut events = vec![Event::RepaymentAccepted {
                repayment_id: *repayment_id,
                amount: *amount,
            }];
            if amount.amount == state.outstanding {
                events.push(Event::LoanRepaid);
            }
            Ok(events)
        }
        (S::Active, Command::ProlongLoan { days, fee }) if state.ledger.is_none() => {
            Ok(vec![Event::LoanProlonged {
                days: *days,
                fee: *fee,
            }])
        }
        (S::Active, Command::MarkOverdue) if state.ledger.is_none() => {
            Ok(vec![Event::LoanBecameOverdue])
        }
        (S::Active | S::Overdue, Command::CloseDays { through }) => {
            let before = ledger_of(state)?;
            if *through <= before.accrued_until {
                return Ok(vec![]);
            }
            let mut after = before.clone();
            after.advance_to(*through)?;
            let accrued = |l: &Ledger| l.debt.interest + l.debt.overdue_interest;
            let mut events = vec![Event::InterestAccrued {
                from: before.accrued_until,
                through: *through,
                interest: accrued(&after) - accrued(&before),
                penalties: after.debt.penalties - before.debt.penalties,
                fell_overdue: after.debt.overdue_principal - before.debt.overdue_principal,
                debt: after.debt.total(),
            }];
            if !overdue(&before) && overdue(&after) {
                events.push(Event::LoanBecameOverdue);
            }
            Ok(events)
        }
        (
            S::Active | S::Overdue,
            Command::Repay {
                repayment_id,
                wallet_id,
                amount,
            },
        ) => {
            no_pending_card(state)?;
            let before = ledger_of(state)?;
            let date = before.accrued_until;
            let mut after = before.clone();
            let allocation = after.repay(date, rub(*amount)?)?;
            let mut events = vec![Event::RepaymentAllocated {
                repayment_id: *repayment_id,
                date,
                wallet_id: Some(*wallet_id),
                card_id: None,
                amount: *amount,
                paid: Paid::from(&allocation),
                early: None,
                schedule: vec![],
                debt: after.debt.total(),
            }];
            events.extend(closing(&before, &after, date));
            Ok(events)
        }
        (
            S::Active | S::Overdue,
            Command::RepayEarly {
                repayment_id,
                wallet_id,
                amount,
                recalculate,
            },
        ) => {
            no_pending_card(state)?;
            let before = ledger_of(state)?;
            let date = before.accrued_until;
            let mut after = before.clone();
            let (paid, allocation) = match amount {
                None => {
                    let payoff = before.payoff(date)?;
                    (payoff, after.repay(date, payoff)?)
                }
                Some(a) => {
                    let a = rub(*a)?;
                    (a, after.repay_early(date, a, *recalculate)?)
                }
            };
            let mut events = vec![Event::RepaymentAllocated {
                repayment_id: *repayment_id,
                date,
                wallet_id: Some(*wallet_id),
                card_id: None,
                amount: Money::new(paid, Currency::Rub),
                paid: Paid::from(&allocation),
                early: Some(*recalculate),
                schedule: after.schedule.clone(),
                debt: after.debt.total(),
            }];
            events.extend(closing(&before, &after, date));
            Ok(events)
        }
        (
            S::Active | S::Overdue,
            Command::RecordCardRepayment {
                repayment_id,
                outcome,
            },
        ) => {
            let Some(pending) = state
                .pending_card
                .as_ref()
                .filter(|p| p.repayment_id == *repayment_id)
            else {
                return Err(Error::Invalid(format!(
                    "loan {} awaits no card repayment {repayment_id}",
                    state.id
                )));
            };
            match outcome {
                crate::card_repayment::Outcome::Paid { .. } => allocate(
                    state,
                    *repayment_id,
                    (None, Some(pending.card_id)),
                    pending.amount.amount,
                    pending.early,
                ),
                crate::card_repayment::Outcome::Declined { reason } => {
                    Ok(vec![Event::CardRepaymentDeclined {
                        repayment_id: *repayment_id,
                        reason: reason.clone(),
                    }])
                }
            }
        }
        (S::Active | S::Overdue, Command::ExtendTerm { months }) => {
            let before = ledger_of(state)?;
            if *months == 0 || *months > 12 {
                return Err(Error::Invalid(format!(
                    "a prolongation is 1 to 12 months, got {months}"
                )));
            }
            let fee = state.prolongation_fee();
            let date = before.accrued_until;
            let mut after = before;
            let charged = after.prolong(date, *months, fee)?;
            Ok(vec![Event::TermExtended {
                date,
                months: *months,
                fee: charged,
                schedule: after.schedule,
            }])
        }
        (S::Active | S::Overdue, Command::StopAccrual { reason }) => {
            let ledger = ledger_of(state)?;
            require_reason(reason)?;
            if ledger.accrual_stopped {
                return Err(refuse(state, "stop accrual that is stopped"));
            }
            Ok(vec![Event::AccrualStopped {
                date: ledger.accrued_until,
                reason: reason.trim().to_owned(),
            }])
        }
        (S::Active | S::Overdue, Command::ResumeAccrual { reason }) => {
            let ledger = ledger_of(state)?;
            require_reason(reason)?;
            if !ledger.accrual_stopped {
                return Err(refuse(state, "resume accrual that runs"));
            }
            Ok(vec![Event::AccrualResumed {
                date: ledger.accrued_until,
                reason: reason.trim().to_owned(),
            }])
        }
        (S::Active | S::Overdue, Command::WriteOff { reason }) => {
            no_pending_card(state)?;
            let ledger = ledger_of(state)?;
            require_reason(reason)?;
            Ok(vec![Event::LoanWrittenOff {
                date: ledger.accrued_until,
                reason: reason.trim().to_owned(),
                amount: ledger.debt.total(),
            }])
        }
        (_, Command::IssueLoan { .. }) => Err(refuse(state, "be issued")),
        (_, Command::AcceptRepayment { .. } | Command::Repay { .. }) => {
            Err(refuse(state, "accept a repayment"))
        }
        (_, Command::RepayEarly { .. }) => Err(refuse(state, "be repaid early")),
        (_, Command::RequestCardRepayment { .. } | Command::RecordCardRepayment { .. }) => {
            Err(refuse(state, "accept a card repayment"))
        }
        (_, Command::ProlongLoan { .. } | Command::ExtendTerm { .. }) => {
            Err(refuse(state, "be prolonged"))
        }
        (_, Command::MarkOverdue) => Err(refuse(state, "become overdue")),
        (_, Command::CloseDays { .. }) => Err(refuse(state, "accrue")),
        (_, Command::StopAccrual { .. } | Command::ResumeAccrual { .. }) => {
            Err(refuse(state, "change accrual"))
        }
        (_, Command::WriteOff { .. }) => Err(refuse(state, "be written off")),
    }
}

/// Applies a ledger step recorded by an event; a step the decision ran cannot fail here,
/// and the state is left as it was if it ever did (the event stays in the log for review).
fn step(state: &mut Loan, f: impl FnOnce(&mut Ledger) -> Result<(), servicing::Error>) {
    if let Some(ledger) = state.ledger.as_mut() {
        let mut next = (**ledger).clone();
        if f(&mut next).is_ok() {
            **ledger = next;
        }
    }
    if let Some(ledger) = &state.ledger {
        state.outstanding = ledger.debt.total();
        state.status = match ledger.standing {
            Standing::Closed => Status::Closed,
            Standing::WrittenOff => Status::WrittenOff,
            Standing::Open if overdue(ledger) => Status::Overdue,
            Standing::Open => Status::Active,
        };
    }
}

pub fn evolve(mut state: Loan, client: ClientId, event: &Event) -> Loan {
    match event {
        Event::LoanIssued {
            loan_id,
            application_id,
            principal,
            term_days,
            terms,
            ..
        } => {
            state.terms = terms.as_deref().cloned();
            state.ledger = terms
                .as_ref()
                .and_then(|t| t.open_ledger(principal.amount))
                .and_then(Result::ok)
                .map(Box::new);
            state.id = *loan_id;
            state.client_id = Some(client);
            state.application_id = Some(*application_id);
            state.principal = Some(*principal);
            state.outstanding = principal.amount;
            state.term_days = *term_days;
            state.status = Status::Active;
        }
        Event::RepaymentAccepted { amount, .. } => state.outstanding -= amount.amount,
        Event::LoanProlonged { days, fee } => {
            state.term_days += days;
            state.outstanding += fee.amount;
        }
        Event::LoanBecameOverdue => state.status = Status::Overdue,
        Event::LoanRepaid => state.status = Status::Repaid,
        Event::InterestAccrued { through, .. } => step(&mut state, |l| l.advance_to(*through)),
        Event::RepaymentAllocated {
            repayment_id,
            date,
            amount,
            early,
            ..
        } => {
            if state
                .pending_card
                .as_ref()
                .is_some_and(|p| p.repayment_id == *repayment_id)
            {
                state.pending_card = None;
            }
            let amount = amount.amount;
            step(&mut state, |l| match early {
                None => l.repay(*date, amount).map(drop),
                Some(recalculate) => {
                    if l.payoff(*date)? == amount {
                        l.repay(*date, amount).map(drop)
                    } else {
                        l.repay_early(*date, amount, *recalculate).map(drop)
                    }
                }
            });
        }
        Event::TermExtended {
            date, months, fee, ..
        } => step(&mut state, |l| l.prolong(*date, *months, *fee).map(drop)),
        Event::AccrualStopped { date, .. } => step(&mut state, |l| l.set_accrual(*date, true)),
        Event::AccrualResumed { date, .. } => step(&mut state, |l| l.set_accrual(*date, false)),
        Event::LoanWrittenOff { date, .. } => step(&mut state, |l| l.write_off(*date).map(drop)),
        Event::LoanClosed { .. } => step(&mut state, |_| Ok(())),
        Event::CardRepaymentRequested {
            repayment_id,
            card_id,
            amount,
            early,
            ..
        } => {
            state.pending_card = Some(PendingCard {
                repayment_id: *repayment_id,
                card_id: *card_id,
                amount: *amount,
                early: *early,
            });
        }
        Event::CardRepaymentDeclined { repayment_id, .. } => {
            if state
                .pending_card
                .as_ref()
                .is_some_and(|p| p.repayment_id == *repayment_id)
            {
                state.pending_card = None;
            }
        }
    }
    state
}
