//! Issued loans (seed §6.8–6.10): outstanding principal and interest, repayments,
//! prolongation and overdue. Schedules, PSK and caps arrive with the loan flows; this module
//! fixes the lifecycle and keeps the outstanding amounts exact.
//!
//! ```text
//! Active ◀──▶ Overdue
//!   │  prolong (Active only)
//!   └──── repayments until nothing is owed ──▶ Repaid
//! ```

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Error;
use crate::ids::ClientId;
use crate::money::Money;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Status {
    #[default]
    New,
    Active,
    Overdue,
    Repaid,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Active => "active",
            Status::Overdue => "overdue",
            Status::Repaid => "repaid",
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
    #[serde(with = "crate::money::amount_str")]
    pub outstanding: Decimal,
    pub term_days: u32,
    /// The contract's terms, for loans issued by the conveyor.
    #[serde(default)]
    pub terms: Option<Terms>,
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
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::LoanIssued { .. } => "LoanIssued",
            Event::RepaymentAccepted { .. } => "RepaymentAccepted",
            Event::LoanProlonged { .. } => "LoanProlonged",
            Event::LoanBecameOverdue => "LoanBecameOverdue",
            Event::LoanRepaid => "LoanRepaid",
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
        ) => Ok(vec![Event::LoanIssued {
            loan_id: id,
            application_id: *application_id,
            principal: *principal,
            term_days: *term_days,
            daily_rate_percent: daily_rate_percent.clone(),
            terms: terms.clone(),
        }]),
        (
            S::Active | S::Overdue,
            Command::AcceptRepayment {
                repayment_id,
                amount,
            },
        ) => {
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
        (S::Active, Command::ProlongLoan { days, fee }) => Ok(vec![Event::LoanProlonged {
            days: *days,
            fee: *fee,
        }]),
        (S::Active, Command::MarkOverdue) => Ok(vec![Event::LoanBecameOverdue]),
        (_, Command::IssueLoan { .. }) => Err(refuse(state, "be issued")),
        (_, Command::AcceptRepayment { .. }) => Err(refuse(state, "accept a repayment")),
        (_, Command::ProlongLoan { .. }) => Err(refuse(state, "be prolonged")),
        (_, Command::MarkOverdue) => Err(refuse(state, "become overdue")),
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
    }
    state
}
